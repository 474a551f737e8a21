package irsa_test

import (
	"strings"
	"testing"

	"github.com/irsakit/irsakit/irsa"
)

func envOf(kv ...string) func(string) string {
	m := map[string]string{}
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
		{"explicit profile first", envOf("AWS_PROFILE", "dev", "AWS_ACCESS_KEY_ID", "AKIA", "AWS_SECRET_ACCESS_KEY", "x"), irsa.Profile},
		{"pod without irsa", envOf("KUBERNETES_SERVICE_HOST", "10.0.0.1"), irsa.InstanceRole},
		{"nothing", envOf(), irsa.None},
		{"half irsa", envOf("AWS_ROLE_ARN", goodRole), irsa.None},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := irsa.Detect(c.env).Mode; got != c.mode {
				t.Fatalf("mode = %s, want %s", got, c.mode)
			}
		})
	}
}

func TestDetectRegionAndFields(t *testing.T) {
	e := irsa.Detect(envOf("AWS_DEFAULT_REGION", "eu-west-1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "AWS_ENDPOINT_URL_STS", "http://127.0.0.1:1"))
	if e.Region != "eu-west-1" || e.RegionSource != "AWS_DEFAULT_REGION" {
		t.Fatalf("region %q from %q", e.Region, e.RegionSource)
	}
	if e.RoleARN != goodRole || e.TokenFile != tokenPath || e.STSEndpoint != "http://127.0.0.1:1" || e.InPod {
		t.Fatalf("fields: %+v", e)
	}
	e = irsa.Detect(envOf("AWS_DEFAULT_REGION", "eu-west-1", "AWS_REGION", "us-east-2"))
	if e.Region != "us-east-2" || e.RegionSource != "AWS_REGION" {
		t.Fatalf("AWS_REGION must win: %q", e.Region)
	}
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
	if len(clean.Problems) != 0 {
		t.Fatalf("correct IRSA pod reported problems: %v", clean.Problems)
	}
}

func TestDetectNeverHoldsSecrets(t *testing.T) {
	e := irsa.Detect(envOf("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEKEY", "AWS_SECRET_ACCESS_KEY", "verysecretvalue", "AWS_SESSION_TOKEN", "sessiontokenvalue", "KUBERNETES_SERVICE_HOST", "x"))
	s := strings.Join([]string{e.RoleARN, e.TokenFile, e.Profile}, " ")
	for _, p := range e.Problems {
		s += p.String()
	}
	for _, secret := range []string{"AKIAEXAMPLEKEY", "verysecretvalue", "sessiontokenvalue"} {
		if strings.Contains(s, secret) {
			t.Fatalf("Environment exposes %q", secret)
		}
	}
	if !e.HasEnvKeys {
		t.Fatal("HasEnvKeys not set")
	}
}
