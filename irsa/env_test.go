package irsa_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/irsa"
)

// envOf is a getenv over kv; the shared config files are empty so a
// developer's ~/.aws never leaks in.
func envOf(kv ...string) func(string) string {
	m := map[string]string{"AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull}
	for i := 0; i < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return func(k string) string { return m[k] }
}

const (
	goodRole  = "arn:aws:iam::111122223333:role/mcp-server-role"
	tokenPath = "/var/run/secrets/eks.amazonaws.com/serviceaccount/token"
)

func TestDetectModes(t *testing.T) {
	cases := []struct {
		name string
		env  func(string) string
		mode irsa.Mode
	}{
		{"irsa", envOf("AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "KUBERNETES_SERVICE_HOST", "10.0.0.1"), irsa.WebIdentity},
		{"pod identity", envOf("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"), irsa.PodIdentity},
		{"env keys win over irsa", envOf("AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "x", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath), irsa.EnvKeys},
		{"missing AWS_PROFILE: the SDK fails", envOf("AWS_PROFILE", "dev", "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "x"), irsa.None},
		{"pod without irsa", envOf("KUBERNETES_SERVICE_HOST", "10.0.0.1"), irsa.InstanceRole},
		{"nothing: instance metadata", envOf(), irsa.InstanceRole},
		{"half irsa: instance metadata", envOf("AWS_ROLE_ARN", goodRole), irsa.InstanceRole},
		{"ecs task role", envOf("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/x"), irsa.Container},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.mode.String(), irsa.Detect(c.env).Mode.String())
		})
	}
}

func TestDetectRegionAndFields(t *testing.T) {
	e := irsa.Detect(envOf("AWS_DEFAULT_REGION", "eu-west-1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"))
	assert.Equal(t, "eu-west-1", e.Region)
	assert.Equal(t, "AWS_DEFAULT_REGION", e.RegionSource)
	assert.Equal(t, goodRole, e.RoleARN)
	assert.Equal(t, tokenPath, e.TokenFile)
	assert.Equal(t, "http://127.0.0.1:1", e.STSEndpoint)
	assert.False(t, e.InPod)
	e = irsa.Detect(envOf("AWS_DEFAULT_REGION", "eu-west-1", "AWS_REGION", "us-east-2"))
	assert.Equal(t, "us-east-2", e.Region, "AWS_REGION must win")
	assert.Equal(t, "AWS_REGION", e.RegionSource)

	// The selected profile's region comes last, as in the SDK.
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	require.NoError(t, os.WriteFile(cfg, []byte("[profile dev]\nregion = ap-southeast-2\n"), 0o600))
	e = irsa.Detect(envOf("AWS_CONFIG_FILE", cfg, "AWS_PROFILE", "dev"))
	assert.Equal(t, "ap-southeast-2", e.Region)
	assert.Equal(t, "profile dev", e.RegionSource)
	assert.Equal(t, "dev", e.Profile)
	assert.Equal(t, "AWS_PROFILE", e.ProfileSource)
	assert.True(t, e.ProfileExists)
}

func TestDetectProblems(t *testing.T) {
	cases := []struct {
		name    string
		env     func(string) string
		varName string
		says    string
	}{
		{"arn without token", envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", goodRole), "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN is set but"},
		{"token without arn", envOf("AWS_REGION", "us-east-1", "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath), "AWS_ROLE_ARN", "AWS_ROLE_ARN is not"},
		{"malformed arn", envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", "arn:aws:iam::1111:role/x", "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath), "AWS_ROLE_ARN", "not a valid IAM role ARN"},
		{"user arn", envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", "arn:aws:iam::111122223333:user/bob", "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath), "AWS_ROLE_ARN", "not a valid IAM role ARN"},
		{"relative token", envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "token"), "AWS_WEB_IDENTITY_TOKEN_FILE", "relative"},
		{"keys shadow irsa", envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "s"), "AWS_ACCESS_KEY_ID", "precedence"},
		{"node role", envOf("AWS_REGION", "us-east-1", "KUBERNETES_SERVICE_HOST", "10.0.0.1"), "AWS_ROLE_ARN", "node's instance role"},
		{"missing profile", envOf("AWS_REGION", "us-east-1", "AWS_PROFILE", "dev"), "AWS_PROFILE", "fails to load"},
		{"missing default profile ignored", envOf("AWS_REGION", "us-east-1", "AWS_DEFAULT_PROFILE", "dev"), "AWS_DEFAULT_PROFILE", "ignores AWS_DEFAULT_PROFILE"},
		{"refused container host", envOf("AWS_REGION", "us-east-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.1.2.3/creds"), "AWS_CONTAINER_CREDENTIALS_FULL_URI", "refuses"},
		{"no region", envOf(), "AWS_REGION", "no region"},
		{"pod identity without token", envOf("AWS_REGION", "us-east-1", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials"), "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "without its token file"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			e := irsa.Detect(c.env)
			for _, p := range e.Problems {
				if p.Var == c.varName && strings.Contains(p.Message, c.says) && p.Fix != "" {
					return
				}
			}
			t.Fatalf("no problem on %s saying %q; got %v", c.varName, c.says, e.Problems)
		})
	}
	clean := irsa.Detect(envOf("AWS_REGION", "us-east-1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "KUBERNETES_SERVICE_HOST", "10.0.0.1"))
	assert.Empty(t, clean.Problems, "correct IRSA pod reported problems")
	cleanPI := irsa.Detect(envOf("AWS_REGION", "us-east-1", "KUBERNETES_SERVICE_HOST", "10.0.0.1",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://169.254.170.23/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"))
	assert.Equal(t, irsa.PodIdentity, cleanPI.Mode)
	assert.Empty(t, cleanPI.Problems, "correct Pod Identity pod reported problems")
}

func TestDetectNeverHoldsSecrets(t *testing.T) {
	e := irsa.Detect(envOf("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY", "verysecretvalue", "AWS_SESSION_TOKEN", "sessiontokenvalue", "KUBERNETES_SERVICE_HOST", "x"))
	s := strings.Join([]string{e.RoleARN, e.TokenFile, e.Profile}, " ")
	for _, p := range e.Problems {
		s += p.String()
	}
	for _, secret := range []string{"AKIAEXAMPLEKEY", "verysecretvalue", "sessiontokenvalue"} {
		assert.NotContains(t, s, secret)
	}
	assert.True(t, e.HasEnvKeys)
}
