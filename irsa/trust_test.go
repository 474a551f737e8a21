package irsa_test

import (
	"strings"
	"testing"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/irsa"
)

const provider = "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"

// The generated policy admits exactly the named service account with the
// STS audience, as evaluated by the stand-ins' IAM.
func TestTrustPolicyAdmitsOnlyTheServiceAccount(t *testing.T) {
	doc, err := irsa.TrustPolicy(provider, "mcp", "mcp-server")
	if err != nil {
		t.Fatal(err)
	}
	i := iam.New("111122223333")
	role := "arn:aws:iam::111122223333:role/mcp-server-role"
	if err := i.PutRole(role, doc); err != nil {
		t.Fatalf("IAM rejects the generated policy: %v\n%s", err, doc)
	}
	host := "oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
	cases := []struct {
		prov, sub, aud string
		want           bool
	}{
		{provider, "system:serviceaccount:mcp:mcp-server", "sts.amazonaws.com", true},
		{provider, "system:serviceaccount:mcp:other", "sts.amazonaws.com", false},
		{provider, "system:serviceaccount:default:mcp-server", "sts.amazonaws.com", false},
		{provider, "system:serviceaccount:mcp:mcp-server", "other", false},
		{strings.Replace(provider, "EXAMPLED", "OTHERCLU", 1), "system:serviceaccount:mcp:mcp-server", "sts.amazonaws.com", false},
	}
	for _, c := range cases {
		if _, ok := i.AssumeWithWebIdentity(role, c.prov, host, c.sub, c.aud); ok != c.want {
			t.Errorf("%s %s %s: allowed=%v want %v", c.prov, c.sub, c.aud, ok, c.want)
		}
	}
	for _, must := range []string{`"Federated": "` + provider, `"sts:AssumeRoleWithWebIdentity"`, host + `:sub`, host + `:aud`, `"StringEquals"`} {
		if !strings.Contains(string(doc), must) {
			t.Errorf("policy lacks %s:\n%s", must, doc)
		}
	}
}

func TestTrustPolicyValidation(t *testing.T) {
	cases := []struct{ prov, ns, sa, says string }{
		{"arn:aws:iam::111122223333:role/x", "mcp", "sa", "not an OIDC provider ARN"},
		{"arn:aws:iam::111122223333:oidc-provider/https://x", "mcp", "sa", "without https://"},
		{"not-an-arn", "mcp", "sa", "not an ARN"},
		{provider, "", "sa", "namespace"},
		{provider, "MCP", "sa", "namespace"},
		{provider, "mcp", "-sa", "service account"},
		{provider, "mcp", "sa_x", "service account"},
	}
	for _, c := range cases {
		if _, err := irsa.TrustPolicy(c.prov, c.ns, c.sa); err == nil || !strings.Contains(err.Error(), c.says) {
			t.Errorf("TrustPolicy(%q,%q,%q) = %v, want error about %s", c.prov, c.ns, c.sa, err, c.says)
		}
	}
	if _, err := irsa.TrustPolicy(provider, "mcp", "sa", func(o *irsa.TrustPolicyOptions) { o.Audience = "" }); err == nil {
		t.Error("empty audience accepted")
	}
}

func TestOIDCProviderARN(t *testing.T) {
	got, err := irsa.OIDCProviderARN("aws", "111122223333", "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE")
	if err != nil || got != provider {
		t.Fatalf("got %q %v", got, err)
	}
	for _, bad := range []string{"http://x", "oidc.eks", "https://", "https://x?y=1"} {
		if _, err := irsa.OIDCProviderARN("aws", "111122223333", bad); err == nil {
			t.Errorf("accepted issuer %q", bad)
		}
	}
	if _, err := irsa.OIDCProviderARN("aws-moon", "111122223333", "https://x"); err == nil {
		t.Error("accepted partition aws-moon")
	}
	for _, p := range []string{"aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"} {
		got, err := irsa.OIDCProviderARN(p, "111122223333", "https://oidc.eks.example/id/X")
		if err != nil || got != "arn:"+p+":iam::111122223333:oidc-provider/oidc.eks.example/id/X" {
			t.Errorf("%s: got %q %v", p, got, err)
		}
		doc, err := irsa.TrustPolicy(got, "mcp", "app")
		if err != nil || !strings.Contains(string(doc), got) {
			t.Errorf("%s: TrustPolicy: %v\n%s", p, err, doc)
		}
	}
}
