package main_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
)

func TestPolicyDocumentsAuthorizeExactly(t *testing.T) {
	type probe struct {
		action, resource string
		allow            bool
	}
	cases := []struct {
		args   []string
		probes []probe
	}{
		{[]string{"rds", "--region", "us-east-1", "--account", "111122223333", "--resource-id", "cluster-ABCDEFGHIJKL0123456789ABCD", "--db-user", "app"}, []probe{
			{"rds-db:connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABCDEFGHIJKL0123456789ABCD/app", true},
			{"rds-db:connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABCDEFGHIJKL0123456789ABCD/admin", false},
		}},
		{[]string{"elasticache", "--region", "us-east-1", "--account", "111122223333", "--cache", "mcp-cache", "--cache-user", "app"}, []probe{
			{"elasticache:Connect", "arn:aws:elasticache:us-east-1:111122223333:replicationgroup:mcp-cache", true},
			{"elasticache:Connect", "arn:aws:elasticache:us-east-1:111122223333:user:app", true},
			{"elasticache:Connect", "arn:aws:elasticache:us-east-1:111122223333:user:default", false},
		}},
		{[]string{"s3", "--bucket", "mcp-data/uploads/"}, []probe{
			{"s3:GetObject", "arn:aws:s3:::mcp-data/uploads/a.json", true},
			{"s3:PutObject", "arn:aws:s3:::mcp-data/uploads/a.json", true},
			{"s3:AbortMultipartUpload", "arn:aws:s3:::mcp-data/uploads/a.json", false},
			{"s3:GetObject", "arn:aws:s3:::mcp-data/private/a.json", false},
			{"s3:GetObject", "arn:aws:s3:::other/uploads/a.json", false},
		}},
		// A prefix is a directory: bucket/notes does not reach notes-private/.
		{[]string{"s3", "--bucket", "mcp-data/notes", "--abort-multipart"}, []probe{
			{"s3:GetObject", "arn:aws:s3:::mcp-data/notes/a.json", true},
			{"s3:AbortMultipartUpload", "arn:aws:s3:::mcp-data/notes/a.json", true},
			{"s3:GetObject", "arn:aws:s3:::mcp-data/notes-private/a.json", false},
			{"s3:PutObject", "arn:aws:s3:::mcp-data/notes2/a.json", false},
		}},
		{[]string{"s3", "--bucket", "mcp-data/notes", "--read-only", "--region", "eusc-de-east-1"}, []probe{
			{"s3:GetObject", "arn:aws-eusc:s3:::mcp-data/notes/a.json", true},
			{"s3:PutObject", "arn:aws-eusc:s3:::mcp-data/notes/a.json", false},
			{"s3:GetObject", "arn:aws:s3:::mcp-data/notes/a.json", false},
		}},
		{[]string{"rds", "--region", "us-isob-east-1", "--account", "111122223333", "--resource-id", "cluster-ABC", "--db-user", "app,reporting"}, []probe{
			{"rds-db:connect", "arn:aws-iso-b:rds-db:us-isob-east-1:111122223333:dbuser:cluster-ABC/app", true},
			{"rds-db:connect", "arn:aws-iso-b:rds-db:us-isob-east-1:111122223333:dbuser:cluster-ABC/reporting", true},
			{"rds-db:connect", "arn:aws:rds-db:us-isob-east-1:111122223333:dbuser:cluster-ABC/app", false},
		}},
		{[]string{"dsql", "--region", "us-east-1", "--account", "111122223333", "--cluster", "abcdefghijklmnopqrstuvwxyz", "--db-user", "app,reporting"}, []probe{
			{"dsql:DbConnect", "arn:aws:dsql:us-east-1:111122223333:cluster/abcdefghijklmnopqrstuvwxyz", true},
			{"dsql:DbConnectAdmin", "arn:aws:dsql:us-east-1:111122223333:cluster/abcdefghijklmnopqrstuvwxyz", false},
			{"dsql:DbConnect", "arn:aws:dsql:us-east-1:111122223333:cluster/otherclusterxxxxxxxxxxxxxx", false},
			{"dsql:DbConnect", "arn:aws:dsql:us-east-2:111122223333:cluster/abcdefghijklmnopqrstuvwxyz", false},
		}},
		// The endpoint names the cluster and the region.
		{[]string{"dsql", "--account", "111122223333", "--db-endpoint", "peccy.dsql.eu-west-2.on.aws:5432", "--admin"}, []probe{
			{"dsql:DbConnectAdmin", "arn:aws:dsql:eu-west-2:111122223333:cluster/peccy", true},
			{"dsql:DbConnect", "arn:aws:dsql:eu-west-2:111122223333:cluster/peccy", false},
		}},
		{[]string{"dsql", "--region", "us-gov-west-1", "--account", "111122223333", "--cluster", "abc", "--db-user", "app", "--admin"}, []probe{
			{"dsql:DbConnectAdmin", "arn:aws-us-gov:dsql:us-gov-west-1:111122223333:cluster/abc", true},
			{"dsql:DbConnect", "arn:aws-us-gov:dsql:us-gov-west-1:111122223333:cluster/abc", true},
			{"dsql:DbConnect", "arn:aws:dsql:us-gov-west-1:111122223333:cluster/abc", false},
		}},
		{[]string{"combined", "--region", "us-east-1", "--account", "111122223333", "--cluster", "abc", "--admin", "--secret", "mcp/api-key"}, []probe{
			{"dsql:DbConnectAdmin", "arn:aws:dsql:us-east-1:111122223333:cluster/abc", true},
			{"dsql:DbConnect", "arn:aws:dsql:us-east-1:111122223333:cluster/abc", false},
			{"secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbC123", true},
		}},
		{[]string{"secrets", "--region", "us-east-1", "--account", "111122223333", "--secret", "mcp/api-key"}, []probe{
			{"secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbC123", true},
			{"secretsmanager:GetSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-old-AbC123", false},
			{"secretsmanager:PutSecretValue", "arn:aws:secretsmanager:us-east-1:111122223333:secret:mcp/api-key-AbC123", false},
		}},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := irsactl(t, envOf(), append([]string{"policy"}, tc.args...)...)
			require.Equal(t, 0, r.code, r.stderr)
			doc, err := iam.ParseDocument([]byte(r.stdout))
			require.NoError(t, err)
			for _, p := range tc.probes {
				assert.Equal(t, p.allow, iam.Evaluate([]iam.Document{doc}, p.action, p.resource, nil), "%s on %s", p.action, p.resource)
			}
		})
	}
}

func TestPolicyTrustAdmitsOnlyTheServiceAccount(t *testing.T) {
	iss := sb.Env.Issuer
	r := irsactl(t, envOf(), "policy", "trust", "--account", sb.Env.Account, "--issuer", iss.URL(), "--namespace", "mcp", "--service-account", "mcp-server")
	require.Equal(t, 0, r.code, r.stderr)
	mini := iam.New(sb.Env.Account)
	provider := mini.AddOIDCProvider(iss.URL(), "sts.amazonaws.com")
	role := "arn:aws:iam::" + sb.Env.Account + ":role/trust-test"
	require.NoError(t, mini.PutRole(role, []byte(r.stdout)))
	for _, tc := range []struct {
		sub, aud string
		ok       bool
	}{
		{oidc.ServiceAccountSubject("mcp", "mcp-server"), "sts.amazonaws.com", true},
		{oidc.ServiceAccountSubject("mcp", "default"), "sts.amazonaws.com", false},
		{oidc.ServiceAccountSubject("other", "mcp-server"), "sts.amazonaws.com", false},
		{oidc.ServiceAccountSubject("mcp", "mcp-server"), "vault", false},
	} {
		_, ok := mini.AssumeWithWebIdentity(role, provider, iss.HostPath(), tc.sub, tc.aud)
		assert.Equal(t, tc.ok, ok, "sub %s aud %s", tc.sub, tc.aud)
	}
}

// irsactl policy prints what the library's generators write, byte for byte.
func TestPolicyIsTheLibrarys(t *testing.T) {
	r := irsactl(t, envOf(), "policy", "elasticache", "--region", "cn-north-1", "--account", "111122223333", "--cache", "mcp-cache", "--cache-user", "app", "--serverless")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "arn:aws-cn:elasticache:cn-north-1:111122223333:serverlesscache:mcp-cache")
	// The RBAC half of least privilege is named where the IAM half is printed.
	assert.Contains(t, r.stderr, `built-in passwordless "default" user`)
	assert.NotContains(t, r.stdout, "note:")
}

func TestPolicyErrorsNameTheInput(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"rds", "--region", "us-east-1", "--account", "111122223333", "--resource-id", "my-aurora", "--db-user", "app"}, `"my-aurora"`},
		{[]string{"rds", "--region", "useast1", "--account", "111122223333", "--resource-id", "cluster-ABC", "--db-user", "app"}, `"useast1"`},
		{[]string{"secrets", "--region", "us-east-1", "--account", "12", "--secret", "x"}, `"12"`},
		{[]string{"secrets", "--region", "us-east-1", "--account", "111122223333", "--secret", "x", "--kms-key-arn", "arn:aws:s3:::x"}, `"arn:aws:s3:::x"`},
		{[]string{"elasticache", "--region", "us-east-1", "--account", "111122223333", "--cache", "master.mcp.abc.use1.cache.amazonaws.com", "--cache-user", "app"}, "endpoint host"},
		{[]string{"s3", "--bucket", "data/a*"}, "wildcard"},
		{[]string{"rds", "--region", "us-east-1", "--partition", "aws-cn", "--account", "111122223333", "--resource-id", "cluster-ABC", "--db-user", "app"}, "not aws-cn"},
		{[]string{"combined", "--region", "us-east-1", "--account", "111122223333"}, "at least one of"},
		{[]string{"dsql", "--region", "us-east-1", "--account", "111122223333", "--db-user", "app"}, "need --cluster ID"},
		{[]string{"dsql", "--region", "us-east-1", "--account", "111122223333", "--cluster", "abc"}, "--db-user ROLE[,ROLE...] or --admin"},
		{[]string{"dsql", "--account", "111122223333", "--db-endpoint", "mydb.cluster-abc.us-east-1.rds.amazonaws.com:5432", "--admin"}, `"mydb.cluster-abc.us-east-1.rds.amazonaws.com:5432" is not an Aurora DSQL cluster endpoint`},
		{[]string{"dsql", "--region", "eu-west-1", "--account", "111122223333", "--db-endpoint", "abc.dsql.us-east-1.on.aws", "--admin"}, "abc.dsql.us-east-1.on.aws is in us-east-1"},
		{[]string{"dsql", "--region", "us-east-1", "--account", "111122223333", "--cluster", "abc.dsql.us-east-1.on.aws", "--admin"}, `"abc.dsql.us-east-1.on.aws"`},
		{[]string{"dsql", "--region", "us-east-1", "--account", "111122223333", "--cluster", "abc", "--db-endpoint", "abc.dsql.us-east-1.on.aws", "--admin"}, "not both"},
		{[]string{"combined", "--region", "us-east-1", "--account", "111122223333", "--resource-id", "cluster-ABC", "--cluster", "abc", "--db-user", "app"}, "run irsactl policy rds and irsactl policy dsql apart"},
		{[]string{"trust", "--assumed-by", "arn:aws:iam::111122223333:role/app", "--namespace", "mcp"}, "--namespace is for a service account's role"},
		{[]string{"trust", "--external-id", "abc", "--namespace", "mcp", "--service-account", "app", "--oidc-provider-arn", "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X"}, "--external-id needs --assumed-by"},
		{[]string{"trust", "--assumed-by", "arn:aws:iam::111122223333:user/dev"}, `"arn:aws:iam::111122223333:user/dev"`},
		{[]string{"trust", "--assumed-by", "arn:aws:iam::111122223333:role/app", "--external-id", "x"}, "--external-id must be 2-1224 characters"},
		{[]string{"trust", "--assumed-by", "arn:aws:iam::111122223333:role/app", "--session-tag", "team"}, `"team": want KEY=VALUE`},
		{[]string{"trust", "--assumed-by", "arn:aws:iam::111122223333:role/app", "--session-tag", "aws:x=y"}, `"aws:x"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := irsactl(t, envOf(), append([]string{"policy"}, tc.args...)...)
			assert.NotEqual(t, 0, r.code)
			assert.Contains(t, r.stderr, tc.says)
			assert.Empty(t, r.stdout)
			assert.NotRegexp(t, `\w+Options\.[A-Z]`, r.stderr, "a Go option named to a person at a shell")
		})
	}
}

// A role of a second account trusts the pod's role with the policy
// irsactl policy trust --assumed-by prints (the STS stand-in evaluates
// it); irsactl doctor --assume reaches the role with the external id, and
// without it prints the trust policy that would admit the call.
func TestPolicyTrustAssumedByWithDoctorAssume(t *testing.T) {
	const (
		account = "444455556666"
		role    = "arn:aws:iam::" + account + ":role/ledger-reader"
	)
	env := awstest.Start(t)
	pod := podEnv(env)
	im2, err := env.AddAccount(account)
	require.NoError(t, err)
	r := irsactl(t, pod, "policy", "trust", "--assumed-by", env.RoleARN, "--external-id", "ledger-7f3a")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stderr, env.RoleARN+" also needs an identity policy that allows sts:AssumeRole")
	require.NoError(t, im2.PutRole(role, []byte(r.stdout)), "IAM refuses the trust policy:\n%s", r.stdout)
	require.NoError(t, env.AttachPolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"`+role+`"}]}`)))

	r = irsactl(t, pod, "doctor", "--json", "--assume", role, "--external-id", "ledger-7f3a")
	rep := parseReport(t, r)
	require.Equal(t, 0, r.code, "%v\n%s", rep.Causes(), r.stdout)
	c, _ := rep.Check("assume-role")
	assert.Equal(t, doctor.Pass, c.Status, "%+v", c)
	assert.Contains(t, c.Detail, "arn:aws:sts::"+account+":assumed-role/ledger-reader/irsactl-doctor")

	h := irsactl(t, pod, "doctor", "--assume", role)
	assert.Equal(t, 1, h.code)
	assert.Contains(t, h.stdout, "[FAIL] assume-role: ")
	assert.Contains(t, h.stdout, "cause: assume-role-denied")
	assert.Contains(t, h.stdout, "pass --external-id")
	_, policy, ok := strings.Cut(h.stdout, "       policy:\n")
	require.True(t, ok, "no trust policy printed:\n%s", h.stdout)
	policy, _, _ = strings.Cut(policy, "\n\n") // the policy ends the check
	want := irsactl(t, pod, "policy", "trust", "--assumed-by", env.RoleARN).stdout
	assert.JSONEq(t, want, policy, "the printed trust policy is irsactl policy trust --assumed-by's")
	t.Logf("irsactl doctor --assume without the external id:\n%s", h.stdout)
}
