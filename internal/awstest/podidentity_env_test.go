package awstest_test

import (
	"context"
	"os"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
)

// SetenvPodIdentity makes the SDK's default chain take EKS Pod Identity,
// and the credentials it gets are the role's, accepted by the STS
// stand-in.
func TestSetenvPodIdentity(t *testing.T) {
	env := awstest.Start(t)
	env.SetenvPodIdentity(t)
	assert.Empty(t, os.Getenv("AWS_ROLE_ARN"))
	assert.Empty(t, os.Getenv("AWS_WEB_IDENTITY_TOKEN_FILE"))
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	cc, ok := cfg.Credentials.(*aws.CredentialsCache)
	require.True(t, ok)
	assert.Equal(t, []aws.CredentialSource{aws.CredentialSourceHTTP}, cc.ProviderSources())
	id, err := awssts.NewFromConfig(cfg).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Contains(t, aws.ToString(id.Arn), ":assumed-role/mcp-server-role/")
	assert.EqualValues(t, 1, env.PodIdentity.Calls())
	assert.EqualValues(t, 0, env.STS.Calls("AssumeRoleWithWebIdentity"))

	require.NoError(t, env.RotatePodIdentityToken())
	cc.Invalidate()
	_, err = cc.Retrieve(ctx)
	require.NoError(t, err, "the rotated token must be accepted")
}
