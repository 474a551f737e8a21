package examples_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

// object is one decoded Kubernetes manifest document.
type object map[string]any

func (o object) get(path ...string) any {
	var cur any = map[string]any(o)
	for _, p := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = m[p]
	}
	return cur
}

func (o object) str(path ...string) string { s, _ := o.get(path...).(string); return s }

func loadManifests(t *testing.T) map[string][]object {
	t.Helper()
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no manifests: %v", err)
	}
	byKind := map[string][]object{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(b))
		for {
			var raw map[string]any // a named map type would be used for nested maps too
			err := dec.Decode(&raw)
			o := object(raw)
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			if o.str("apiVersion") == "" || o.str("kind") == "" || o.str("metadata", "name") == "" {
				t.Fatalf("%s: document without apiVersion/kind/metadata.name", f)
			}
			byKind[o.str("kind")] = append(byKind[o.str("kind")], o)
		}
	}
	return byKind
}

func TestManifestsParseAndAgree(t *testing.T) {
	m := loadManifests(t)
	for _, kind := range []string{"Namespace", "ServiceAccount", "Deployment", "Service", "Job", "Pod"} {
		if len(m[kind]) == 0 {
			t.Errorf("no %s manifest", kind)
		}
	}
	ns := m["Namespace"][0].str("metadata", "name")
	for kind, objs := range m {
		for _, o := range objs {
			if kind != "Namespace" && o.str("metadata", "namespace") != ns {
				t.Errorf("%s %s is in namespace %q, not %q", kind, o.str("metadata", "name"), o.str("metadata", "namespace"), ns)
			}
		}
	}
}

func TestServiceAccountAnnotations(t *testing.T) {
	sa := loadManifests(t)["ServiceAccount"][0]
	arn := sa.str("metadata", "annotations", "eks.amazonaws.com/role-arn")
	if _, _, err := irsa.ParseRoleARN(arn); err != nil {
		t.Errorf("eks.amazonaws.com/role-arn: %v", err)
	}
	// aws-sdk-go-v2 always calls the regional STS endpoint: the annotation
	// that only sets AWS_STS_REGIONAL_ENDPOINTS would be noise.
	if v := sa.get("metadata", "annotations", "eks.amazonaws.com/sts-regional-endpoints"); v != nil {
		t.Errorf("eks.amazonaws.com/sts-regional-endpoints = %#v: aws-sdk-go-v2 ignores the variable it sets", v)
	}
}

// podSpecs returns the pod templates of every workload.
func podSpecs(t *testing.T, m map[string][]object) map[string]object {
	specs := map[string]object{}
	for _, d := range m["Deployment"] {
		specs["Deployment/"+d.str("metadata", "name")] = object(d.get("spec", "template", "spec").(map[string]any))
	}
	for _, j := range m["Job"] {
		specs["Job/"+j.str("metadata", "name")] = object(j.get("spec", "template", "spec").(map[string]any))
	}
	for _, p := range m["Pod"] {
		specs["Pod/"+p.str("metadata", "name")] = object(p.get("spec").(map[string]any))
	}
	return specs
}

func TestPodsAreHardenedAndUseTheServiceAccount(t *testing.T) {
	m := loadManifests(t)
	saName := m["ServiceAccount"][0].str("metadata", "name")
	for name, spec := range podSpecs(t, m) {
		t.Run(name, func(t *testing.T) {
			if spec.str("serviceAccountName") != saName {
				t.Errorf("serviceAccountName = %q, want %q", spec.str("serviceAccountName"), saName)
			}
			if spec.get("securityContext", "runAsNonRoot") != true {
				t.Error("securityContext.runAsNonRoot is not true")
			}
			if uid, _ := spec.get("securityContext", "runAsUser").(int); uid == 0 {
				t.Error("securityContext.runAsUser is missing or 0")
			}
			if g, _ := spec.get("securityContext", "fsGroup").(int); g == 0 {
				t.Error("securityContext.fsGroup missing: a non-root user cannot read the projected IRSA token")
			}
			containers, _ := spec.get("containers").([]any)
			if len(containers) == 0 {
				t.Fatal("no containers")
			}
			for _, c := range containers {
				c := object(c.(map[string]any))
				if c.get("securityContext", "readOnlyRootFilesystem") != true {
					t.Errorf("%s: readOnlyRootFilesystem is not true", c.str("name"))
				}
				if c.get("securityContext", "allowPrivilegeEscalation") != false {
					t.Errorf("%s: allowPrivilegeEscalation is not false", c.str("name"))
				}
				if drop, _ := c.get("securityContext", "capabilities", "drop").([]any); len(drop) != 1 || drop[0] != "ALL" {
					t.Errorf("%s: capabilities.drop = %v, want [ALL]", c.str("name"), drop)
				}
				env, _ := c.get("env").([]any)
				for _, e := range env {
					e := object(e.(map[string]any))
					switch e.str("name") {
					case "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE":
						t.Errorf("%s sets %s: static credentials override IRSA", c.str("name"), e.str("name"))
					case "DATABASE_ENDPOINT":
						if _, _, err := rdsauth.SplitEndpoint(e.str("value")); err != nil {
							t.Errorf("DATABASE_ENDPOINT: %v", err)
						}
					case "REDIS_ENDPOINT":
						if _, err := elasticacheauth.ParseEndpoint(e.str("value")); err != nil {
							t.Errorf("REDIS_ENDPOINT: %v", err)
						}
					case "REDIS_CACHE_NAME":
						if strings.Contains(e.str("value"), ".") {
							t.Errorf("REDIS_CACHE_NAME %q is a host name, not the replication group id", e.str("value"))
						}
					}
				}
			}
		})
	}
}

func TestDeploymentProbesAndService(t *testing.T) {
	m := loadManifests(t)
	dep := m["Deployment"][0]
	c := object(dep.get("spec", "template", "spec", "containers").([]any)[0].(map[string]any))
	ports := map[string]bool{}
	for _, p := range c.get("ports").([]any) {
		ports[object(p.(map[string]any)).str("name")] = true
	}
	for probe, path := range map[string]string{"livenessProbe": "/healthz", "readinessProbe": "/readyz"} {
		if got := c.str(probe, "httpGet", "path"); got != path {
			t.Errorf("%s path = %q, want %q", probe, got, path)
		}
		if port := c.str(probe, "httpGet", "port"); !ports[port] {
			t.Errorf("%s port %q is not a named container port", probe, port)
		}
	}
	svc := m["Service"][0]
	for k, v := range svc.get("spec", "selector").(map[string]any) {
		if dep.get("spec", "template", "metadata", "labels", k) != v {
			t.Errorf("Service selector %s=%v does not select the Deployment's pods", k, v)
		}
	}
	for _, p := range svc.get("spec", "ports").([]any) {
		if tp := object(p.(map[string]any)).str("targetPort"); !ports[tp] {
			t.Errorf("Service targetPort %q is not a container port", tp)
		}
	}
}

// TestPoliciesRegenerateEqual runs the irsactl commands of
// iam/regenerate.sh and compares their output with the templates.
func TestPoliciesRegenerateEqual(t *testing.T) {
	bin, err := sandboxtest.BuildIrsactl(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	script, err := os.ReadFile("iam/regenerate.sh")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, line := range strings.Split(string(script), "\n") {
		rest, ok := strings.CutPrefix(line, `"$IRSACTL" policy `)
		if !ok {
			continue
		}
		cmdline, file, ok := strings.Cut(rest, " > ")
		if !ok {
			t.Fatalf("regenerate.sh line without output file: %s", line)
		}
		n++
		t.Run(file, func(t *testing.T) {
			out, err := exec.Command(bin, append([]string{"policy"}, strings.Fields(cmdline)...)...).Output()
			if err != nil {
				t.Fatalf("irsactl policy %s: %v", cmdline, err)
			}
			want, err := os.ReadFile(filepath.Join("iam", file))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, want) {
				t.Errorf("iam/%s differs from `irsactl policy %s`; run IRSACTL=irsactl iam/regenerate.sh\n--- generated\n%s", file, cmdline, out)
			}
			doc, err := iam.ParseDocument(want)
			if err != nil {
				t.Fatalf("iam/%s: %v", file, err)
			}
			for _, st := range doc.Statement {
				for _, r := range st.Resource {
					if r == "*" {
						t.Errorf("iam/%s grants on Resource \"*\"", file)
					}
				}
			}
		})
	}
	if n != 6 {
		t.Fatalf("regenerate.sh has %d policy commands, want 6", n)
	}
}

// TestTrustPolicyMatchesServiceAccount: the trust template admits exactly
// the service account the manifests deploy.
func TestTrustPolicyMatchesServiceAccount(t *testing.T) {
	sa := loadManifests(t)["ServiceAccount"][0]
	b, err := os.ReadFile("iam/trust-policy.json")
	if err != nil {
		t.Fatal(err)
	}
	doc, err := iam.ParseDocument(b)
	if err != nil {
		t.Fatal(err)
	}
	want := "system:serviceaccount:" + sa.str("metadata", "namespace") + ":" + sa.str("metadata", "name")
	found := false
	for _, st := range doc.Statement {
		for k, v := range st.Condition["StringEquals"] {
			if strings.HasSuffix(k, ":sub") && len(v) == 1 && v[0] == want {
				found = true
			}
		}
	}
	if !found {
		t.Errorf("trust-policy.json does not admit %s", want)
	}
}
