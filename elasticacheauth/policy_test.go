package elasticacheauth_test

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
)

const policyTrust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`

// The generated policy, loaded into the stand-ins' IAM, allows exactly the
// named users on the named cache — the two resources the front checks.
func TestPolicyAllowsExactlyTheUser(t *testing.T) {
	for _, serverless := range []bool{false, true} {
		doc, err := elasticacheauth.Policy("us-east-1", "111122223333", "Orders", []string{"app"}, func(o *elasticacheauth.PolicyOptions) { o.Serverless = serverless })
		if err != nil {
			t.Fatal(err)
		}
		i := iam.New("111122223333")
		role := "arn:aws:iam::111122223333:role/app"
		if err := i.PutRole(role, []byte(policyTrust), doc); err != nil {
			t.Fatalf("IAM rejects the policy: %v\n%s", err, doc)
		}
		chk := redisfront.Check{Region: "us-east-1", Account: "111122223333", CacheName: "orders", Serverless: serverless}
		allowed := func(c redisfront.Check, user string) bool {
			return i.Authorize(role, c.Action(), c.CacheARN()) && i.Authorize(role, c.Action(), c.UserARN(user))
		}
		if !allowed(chk, "app") {
			t.Fatalf("serverless=%v: policy does not allow user app:\n%s", serverless, doc)
		}
		if allowed(chk, "admin") {
			t.Fatal("policy allows another user")
		}
		other := chk
		other.CacheName = "payments"
		if allowed(other, "app") {
			t.Fatal("policy allows another cache")
		}
		flipped := chk
		flipped.Serverless = !serverless
		if allowed(flipped, "app") {
			t.Fatal("policy allows the other cache kind")
		}
	}
}

// Every partition the SDK knows, derived from the region or given.
func TestPolicyPartitions(t *testing.T) {
	for _, c := range []struct{ region, partition string }{
		{"us-east-1", "aws"}, {"cn-north-1", "aws-cn"}, {"us-gov-west-1", "aws-us-gov"},
		{"us-iso-east-1", "aws-iso"}, {"us-isob-east-1", "aws-iso-b"}, {"eu-isoe-west-1", "aws-iso-e"},
		{"us-isof-south-1", "aws-iso-f"}, {"eusc-de-east-1", "aws-eusc"},
	} {
		t.Run(c.partition, func(t *testing.T) {
			for _, explicit := range []string{"", c.partition} {
				doc, err := elasticacheauth.Policy(c.region, "111122223333", "orders", []string{"app"},
					func(o *elasticacheauth.PolicyOptions) { o.Partition = explicit })
				require.NoError(t, err)
				i := iam.New("111122223333")
				role := "arn:aws:iam::111122223333:role/app"
				require.NoError(t, i.PutRole(role, []byte(policyTrust), doc))
				prefix := "arn:" + c.partition + ":elasticache:" + c.region + ":111122223333:"
				assert.True(t, i.Authorize(role, "elasticache:Connect", prefix+"replicationgroup:orders"), "%s", doc)
				assert.True(t, i.Authorize(role, "elasticache:Connect", prefix+"user:app"), "%s", doc)
			}
		})
	}
	_, err := elasticacheauth.Policy("us-east-1", "111122223333", "orders", []string{"app"},
		func(o *elasticacheauth.PolicyOptions) { o.Partition = "aws-us-gov" })
	require.ErrorIs(t, err, elasticacheauth.ErrInvalidOptions)
	assert.Contains(t, err.Error(), "us-east-1 is in partition aws, not aws-us-gov")
}

func TestPolicyRejectsBadInput(t *testing.T) {
	cases := []struct {
		region, account, cache string
		users                  []string
		want                   error
	}{
		{"us-east-1", "111122223333", "master.orders.abc.use1.cache.amazonaws.com", []string{"app"}, elasticacheauth.ErrInvalidCacheName},
		{"us-east-1", "111122223333", "orders", nil, elasticacheauth.ErrInvalidUser},
		{"us-east-1", "111122223333", "orders", []string{"app*"}, elasticacheauth.ErrInvalidUser},
		{"useast1", "111122223333", "orders", []string{"app"}, elasticacheauth.ErrNoRegion},
	}
	for _, c := range cases {
		if _, err := elasticacheauth.Policy(c.region, c.account, c.cache, c.users); !errors.Is(err, c.want) {
			t.Errorf("Policy(%q, %q, %q, %v) = %v, want %v", c.region, c.account, c.cache, c.users, err, c.want)
		}
	}
	if _, err := elasticacheauth.Policy("us-east-1", "1111", "orders", []string{"app"}); err == nil {
		t.Error("short account accepted")
	}
}

func TestPolicyMemoryDBARNs(t *testing.T) {
	doc, err := elasticacheauth.Policy("eu-west-1", "111122223333", "Ledger", []string{"app"}, func(o *elasticacheauth.PolicyOptions) { o.MemoryDB = true })
	if err != nil {
		t.Fatal(err)
	}
	i := iam.New("111122223333")
	role := "arn:aws:iam::111122223333:role/app"
	if err := i.PutRole(role, []byte(policyTrust), doc); err != nil {
		t.Fatal(err)
	}
	for _, res := range []string{"arn:aws:memorydb:eu-west-1:111122223333:cluster/ledger", "arn:aws:memorydb:eu-west-1:111122223333:user/app"} {
		if !i.Authorize(role, "memorydb:Connect", res) {
			t.Errorf("memorydb:Connect on %s not allowed:\n%s", res, doc)
		}
	}
	if i.Authorize(role, "elasticache:Connect", "arn:aws:memorydb:eu-west-1:111122223333:cluster/ledger") {
		t.Error("elasticache:Connect allowed on a MemoryDB cluster")
	}
	if _, err := elasticacheauth.Policy("eu-west-1", "111122223333", "ledger", []string{"app"}, func(o *elasticacheauth.PolicyOptions) { o.MemoryDB, o.Serverless = true, true }); err == nil {
		t.Error("serverless MemoryDB accepted")
	}
}
