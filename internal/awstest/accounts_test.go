package awstest_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
)

// A second account's role, trusting the pod's role, is assumed through the
// SDK's AssumeRole provider chained on the pod's web-identity credentials;
// without the pod role's identity policy STS refuses.
func TestAddAccountCrossAccountRole(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	im2, err := env.AddAccount("444455556666")
	require.NoError(t, err)
	target := "arn:aws:iam::444455556666:role/ledger"
	require.NoError(t, im2.PutRole(target, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"`+env.RoleARN+`"},"Action":"sts:AssumeRole"}]}`)))
	cfg, err := env.Config(ctx)
	require.NoError(t, err)
	chained := stscreds.NewAssumeRoleProvider(awssts.NewFromConfig(cfg), target)

	_, err = chained.Retrieve(ctx)
	require.Error(t, err, "assumed without the pod role's identity policy")
	assert.Contains(t, err.Error(), "is not authorized to perform: sts:AssumeRole on resource: "+target)

	require.NoError(t, env.AttachPolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"`+target+`"}]}`)))
	c, err := chained.Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, "444455556666", c.AccountID)
	issued, ok := env.Registry.Lookup(c.AccessKeyID)
	require.True(t, ok)
	assert.Equal(t, target, issued.RoleARN)

	cfg2 := cfg.Copy()
	cfg2.Credentials = aws.NewCredentialsCache(chained)
	id, err := awssts.NewFromConfig(cfg2).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "444455556666", aws.ToString(id.Account))

	for _, bad := range []string{"4444", env.Account, "44445555666x"} {
		_, err := env.AddAccount(bad)
		assert.Error(t, err, "AddAccount(%q)", bad)
	}
}
