package examples_test

import (
	"bytes"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/kustomize/api/krusty"
	kusttypes "sigs.k8s.io/kustomize/api/types"
	"sigs.k8s.io/kustomize/kyaml/filesys"
	"sigs.k8s.io/yaml"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

const roleARNAnnotation = "eks.amazonaws.com/role-arn"

// objects are the decoded manifests, by kind.
type objects struct {
	namespaces      []corev1.Namespace
	serviceAccounts []corev1.ServiceAccount
	deployments     []appsv1.Deployment
	services        []corev1.Service
	jobs            []batchv1.Job
	pods            []corev1.Pod
	configMaps      []corev1.ConfigMap
}

// splitDocuments splits a multi-document YAML stream.
func splitDocuments(b []byte) [][]byte {
	var docs [][]byte
	for _, d := range regexp.MustCompile(`(?m)^---\s*$`).Split(string(b), -1) {
		if strings.TrimSpace(regexp.MustCompile(`(?m)^#.*$`).ReplaceAllString(d, "")) != "" {
			docs = append(docs, []byte(d))
		}
	}
	return docs
}

// decode decodes every document of stream with the Kubernetes API types,
// rejecting unknown and duplicate fields as the API server's strict field
// validation does.
func decode(t *testing.T, name string, stream []byte, into *objects) {
	t.Helper()
	for i, doc := range splitDocuments(stream) {
		var tm metav1.TypeMeta
		require.NoError(t, yaml.Unmarshal(doc, &tm), "%s #%d", name, i)
		var err error
		switch tm.APIVersion + " " + tm.Kind {
		case "v1 Namespace":
			into.namespaces = append(into.namespaces, corev1.Namespace{})
			err = yaml.UnmarshalStrict(doc, &into.namespaces[len(into.namespaces)-1])
		case "v1 ServiceAccount":
			into.serviceAccounts = append(into.serviceAccounts, corev1.ServiceAccount{})
			err = yaml.UnmarshalStrict(doc, &into.serviceAccounts[len(into.serviceAccounts)-1])
		case "apps/v1 Deployment":
			into.deployments = append(into.deployments, appsv1.Deployment{})
			err = yaml.UnmarshalStrict(doc, &into.deployments[len(into.deployments)-1])
		case "v1 Service":
			into.services = append(into.services, corev1.Service{})
			err = yaml.UnmarshalStrict(doc, &into.services[len(into.services)-1])
		case "batch/v1 Job":
			into.jobs = append(into.jobs, batchv1.Job{})
			err = yaml.UnmarshalStrict(doc, &into.jobs[len(into.jobs)-1])
		case "v1 Pod":
			into.pods = append(into.pods, corev1.Pod{})
			err = yaml.UnmarshalStrict(doc, &into.pods[len(into.pods)-1])
		case "v1 ConfigMap":
			into.configMaps = append(into.configMaps, corev1.ConfigMap{})
			err = yaml.UnmarshalStrict(doc, &into.configMaps[len(into.configMaps)-1])
		default:
			t.Fatalf("%s #%d: %s %s is not a kind these tests know", name, i, tm.APIVersion, tm.Kind)
		}
		require.NoError(t, err, "%s #%d (%s)", name, i, tm.Kind)
	}
}

// loadManifests decodes every YAML file in kubernetes/: the objects, and
// kustomization.yaml with kustomize's own type.
func loadManifests(t *testing.T) (objects, kusttypes.Kustomization) {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	var objs objects
	var k kusttypes.Kustomization
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		if filepath.Base(f) == "kustomization.yaml" {
			require.NoError(t, yaml.UnmarshalStrict(b, &k), f)
			continue
		}
		decode(t, f, b, &objs)
	}
	require.Equal(t, "Kustomization", k.Kind, "kubernetes/kustomization.yaml")
	return objs, k
}

// podSpec is a workload's pod template.
type podSpec struct {
	name string
	spec corev1.PodSpec
}

func (o objects) podSpecs() []podSpec {
	var out []podSpec
	for _, d := range o.deployments {
		out = append(out, podSpec{"Deployment/" + d.Name, d.Spec.Template.Spec})
	}
	for _, j := range o.jobs {
		out = append(out, podSpec{"Job/" + j.Name, j.Spec.Template.Spec})
	}
	for _, p := range o.pods {
		out = append(out, podSpec{"Pod/" + p.Name, p.Spec})
	}
	return out
}

func TestManifestsDecodeStrictly(t *testing.T) {
	objs, k := loadManifests(t)
	require.Len(t, objs.namespaces, 1)
	require.Len(t, objs.serviceAccounts, 1)
	require.Len(t, objs.deployments, 1)
	require.Len(t, objs.services, 1)
	require.Len(t, objs.jobs, 1)
	require.Len(t, objs.pods, 1)
	ns := objs.namespaces[0].Name
	assert.Equal(t, ns, k.Namespace, "kustomization.yaml sets the namespace the manifests use")
	assert.Equal(t, "restricted", objs.namespaces[0].Labels["pod-security.kubernetes.io/enforce"])
	for _, m := range []metav1.ObjectMeta{objs.serviceAccounts[0].ObjectMeta, objs.deployments[0].ObjectMeta, objs.services[0].ObjectMeta, objs.jobs[0].ObjectMeta, objs.pods[0].ObjectMeta} {
		assert.Equal(t, ns, m.Namespace, m.Name)
	}
	// Every manifest is in the kustomization, and nothing else.
	files, _ := filepath.Glob("kubernetes/*.yaml")
	var want []string
	for _, f := range files {
		if b := filepath.Base(f); b != "kustomization.yaml" {
			want = append(want, b)
		}
	}
	assert.ElementsMatch(t, want, k.Resources)

	// The strict decoder does reject what the API server would.
	var d appsv1.Deployment
	assert.Error(t, yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nspec:\n  replica: 2\n"), &d), "unknown field accepted")
	assert.Error(t, yaml.UnmarshalStrict([]byte("apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: a\n  name: b\n"), &d), "duplicate field accepted")
}

func TestServiceAccountAnnotations(t *testing.T) {
	objs, _ := loadManifests(t)
	sa := objs.serviceAccounts[0]
	_, _, err := irsa.ParseRoleARN(sa.Annotations[roleARNAnnotation])
	assert.NoError(t, err, roleARNAnnotation)
	// aws-sdk-go-v2 always calls the regional STS endpoint: the annotation
	// that only sets AWS_STS_REGIONAL_ENDPOINTS would be noise.
	assert.NotContains(t, sa.Annotations, "eks.amazonaws.com/sts-regional-endpoints", "aws-sdk-go-v2 ignores the variable it sets")
}

func TestPodsAreHardenedAndUseTheServiceAccount(t *testing.T) {
	objs, _ := loadManifests(t)
	sa := objs.serviceAccounts[0].Name
	images := readDockerfile(t).targets
	for _, ps := range objs.podSpecs() {
		t.Run(ps.name, func(t *testing.T) {
			spec := ps.spec
			assert.Equal(t, sa, spec.ServiceAccountName)
			sc := spec.SecurityContext
			require.NotNil(t, sc)
			assert.Equal(t, ptrTrue, sc.RunAsNonRoot)
			require.NotNil(t, sc.RunAsUser)
			assert.Equal(t, int64(65532), *sc.RunAsUser, "the image's USER")
			require.NotNil(t, sc.FSGroup, "without fsGroup a non-root user cannot read the projected IRSA token")
			require.NotNil(t, sc.SeccompProfile)
			assert.Equal(t, corev1.SeccompProfileTypeRuntimeDefault, sc.SeccompProfile.Type)
			require.Len(t, spec.Containers, 1)
			for _, c := range spec.Containers {
				csc := c.SecurityContext
				require.NotNil(t, csc)
				assert.Equal(t, ptrTrue, csc.ReadOnlyRootFilesystem)
				assert.Equal(t, ptrFalse, csc.AllowPrivilegeEscalation)
				require.NotNil(t, csc.Capabilities)
				assert.Equal(t, []corev1.Capability{"ALL"}, csc.Capabilities.Drop)
				// An image the Dockerfile builds, running this program.
				repo, _, _ := strings.Cut(c.Image, ":")
				target, ok := strings.CutPrefix(repo, "ghcr.io/irsakit/")
				assert.True(t, ok, "image %s", c.Image)
				assert.Equal(t, c.Name, images[target], "image %s runs %q, container is %q", c.Image, images[target], c.Name)
				// Requests for scheduling, a memory limit against leaks.
				assert.False(t, c.Resources.Requests.Cpu().IsZero(), "%s: no cpu request", c.Name)
				assert.False(t, c.Resources.Requests.Memory().IsZero(), "%s: no memory request", c.Name)
				assert.False(t, c.Resources.Limits.Memory().IsZero(), "%s: no memory limit", c.Name)
				for _, e := range c.Env {
					switch e.Name {
					case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE":
						t.Errorf("%s sets %s: static credentials override IRSA", c.Name, e.Name)
					case "DATABASE_ENDPOINT":
						_, _, err := rdsauth.SplitEndpoint(e.Value)
						assert.NoError(t, err, "DATABASE_ENDPOINT")
					case "REDIS_ENDPOINT":
						_, err := elasticacheauth.ParseEndpoint(e.Value)
						assert.NoError(t, err, "REDIS_ENDPOINT")
					case "REDIS_CACHE_NAME":
						assert.NotContains(t, e.Value, ".", "REDIS_CACHE_NAME is a host name, not the replication group id")
					case "DATABASE_CA_FILE":
						assert.True(t, mountedFrom(spec, c, e.Value, "rds-ca"), "%s is not in the rds-ca ConfigMap's mount", e.Value)
					}
				}
			}
		})
	}
}

var (
	ptrTrue  = func() *bool { b := true; return &b }()
	ptrFalse = func() *bool { b := false; return &b }()
)

// mountedFrom reports whether path lies in a mount of a volume backed by
// the ConfigMap named cm.
func mountedFrom(spec corev1.PodSpec, c corev1.Container, path, cm string) bool {
	for _, m := range c.VolumeMounts {
		if !strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			continue
		}
		for _, v := range spec.Volumes {
			if v.Name == m.Name && v.ConfigMap != nil && v.ConfigMap.Name == cm {
				return true
			}
		}
	}
	return false
}

func TestDeploymentProbesAndService(t *testing.T) {
	objs, _ := loadManifests(t)
	dep := objs.deployments[0]
	c := dep.Spec.Template.Spec.Containers[0]
	ports := map[string]bool{}
	for _, p := range c.Ports {
		ports[p.Name] = true
	}
	for _, tc := range []struct {
		name  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		require.NotNil(t, tc.probe, tc.name)
		require.NotNil(t, tc.probe.HTTPGet, tc.name)
		assert.Equal(t, tc.path, tc.probe.HTTPGet.Path, tc.name)
		assert.True(t, ports[tc.probe.HTTPGet.Port.StrVal], "%s port %q is not a named container port", tc.name, tc.probe.HTTPGet.Port.String())
	}
	assert.NotEqual(t, c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path, "liveness must not share readiness's dependency checks")
	svc := objs.services[0]
	for k, v := range svc.Spec.Selector {
		assert.Equal(t, v, dep.Spec.Template.Labels[k], "Service selector %s=%s does not select the Deployment's pods", k, v)
	}
	assert.Equal(t, dep.Spec.Selector.MatchLabels, dep.Spec.Template.Labels)
	for _, p := range svc.Spec.Ports {
		assert.True(t, ports[p.TargetPort.StrVal], "Service targetPort %q is not a container port", p.TargetPort.String())
	}
}

// TestKustomizationSetsNamespaceImageAndRole builds the kustomization with
// kustomize itself, after changing only kustomization.yaml the way the
// walk-through says: namespace, image registry and tag, role ARN. Every
// object follows.
func TestKustomizationSetsNamespaceImageAndRole(t *testing.T) {
	fs := filesys.MakeFsInMemory()
	files, err := filepath.Glob("kubernetes/*.yaml")
	require.NoError(t, err)
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		require.NoError(t, fs.WriteFile("/app/"+filepath.Base(f), b))
	}
	// What the walk-through downloads next to it.
	require.NoError(t, fs.WriteFile("/app/global-bundle.pem", []byte("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n")))

	b, err := os.ReadFile("kubernetes/kustomization.yaml")
	require.NoError(t, err)
	const (
		ns       = "team-a"
		registry = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/irsakit"
		roleARN  = "arn:aws:iam::123456789012:role/team-a-mcp"
	)
	edited := strings.NewReplacer(
		"namespace: mcp", "namespace: "+ns,
		"value: arn:aws:iam::111122223333:role/mcp-server-role", "value: "+roleARN,
		"  - name: ghcr.io/irsakit/mcp-backend\n    newTag: latest", "  - name: ghcr.io/irsakit/mcp-backend\n    newName: "+registry+"/mcp-backend\n    newTag: v1.0.0",
		"  - name: ghcr.io/irsakit/secret-reader\n    newTag: latest", "  - name: ghcr.io/irsakit/secret-reader\n    newName: "+registry+"/secret-reader\n    newTag: v1.0.0",
		"  - name: ghcr.io/irsakit/s3-list\n    newTag: latest", "  - name: ghcr.io/irsakit/s3-list\n    newName: "+registry+"/s3-list\n    newTag: v1.0.0",
	).Replace(string(b))
	require.Contains(t, edited, "namespace: "+ns+"\n", "the kustomization's settings moved")
	require.Contains(t, edited, "value: "+roleARN+"\n", "the kustomization's settings moved")
	require.Equal(t, 3, strings.Count(edited, "newTag: v1.0.0"), "the kustomization's settings moved:\n%s", edited)
	require.NoError(t, fs.WriteFile("/app/kustomization.yaml", []byte(edited)))

	res, err := krusty.MakeKustomizer(krusty.MakeDefaultOptions()).Run(fs, "/app")
	require.NoError(t, err)
	out, err := res.AsYaml()
	require.NoError(t, err)
	var objs objects
	decode(t, "kustomize build", out, &objs)

	require.Len(t, objs.namespaces, 1)
	assert.Equal(t, ns, objs.namespaces[0].Name)
	require.Len(t, objs.serviceAccounts, 1)
	assert.Equal(t, roleARN, objs.serviceAccounts[0].Annotations[roleARNAnnotation])
	assert.Equal(t, ns, objs.serviceAccounts[0].Namespace)
	require.Len(t, objs.configMaps, 1)
	cm := objs.configMaps[0]
	assert.True(t, strings.HasPrefix(cm.Name, "rds-ca-"), "the generated ConfigMap has a content hash: %s", cm.Name)
	assert.Contains(t, cm.Data, "global-bundle.pem")
	for _, ps := range objs.podSpecs() {
		for _, c := range ps.spec.Containers {
			assert.True(t, strings.HasPrefix(c.Image, registry+"/") && strings.HasSuffix(c.Image, ":v1.0.0"), "%s: image %s", ps.name, c.Image)
		}
		for _, v := range ps.spec.Volumes {
			if v.ConfigMap != nil {
				assert.Equal(t, cm.Name, v.ConfigMap.Name, "%s mounts a ConfigMap kustomize did not rename", ps.name)
			}
		}
	}
	for _, m := range []metav1.ObjectMeta{objs.deployments[0].ObjectMeta, objs.services[0].ObjectMeta, objs.jobs[0].ObjectMeta, objs.pods[0].ObjectMeta, cm.ObjectMeta} {
		assert.Equal(t, ns, m.Namespace, m.Name)
	}
	assert.False(t, bytes.Contains(out, []byte("111122223333")), "the example account is left somewhere:\n%s", out)
	assert.True(t, slices.ContainsFunc(objs.deployments[0].Spec.Template.Spec.Containers, func(c corev1.Container) bool { return c.Name == "mcp-backend" }))
}
