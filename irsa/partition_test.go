package irsa_test

import (
	"context"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/irsa"
)

// A pod in any partition the SDK knows loads its IRSA session: the role
// ARN's partition and the region's are accepted wherever they appear.
func TestLoadEveryPartition(t *testing.T) {
	env := awstest.Start(t)
	cases := []struct{ partition, region string }{
		{"aws", "eu-central-2"},
		{"aws-cn", "cn-northwest-1"},
		{"aws-us-gov", "us-gov-east-1"},
		{"aws-iso", "us-iso-east-1"},
		{"aws-iso-b", "us-isob-east-1"},
		{"aws-iso-e", "eu-isoe-west-1"},
		{"aws-iso-f", "us-isof-south-1"},
		{"aws-eusc", "eusc-de-east-1"},
	}
	for _, c := range cases {
		t.Run(c.partition, func(t *testing.T) {
			env.Setenv(t)
			t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
			role := "arn:" + c.partition + ":iam::" + env.Account + ":role/mcp-server-role"
			t.Setenv("AWS_ROLE_ARN", role)
			t.Setenv("AWS_REGION", c.region)

			d := irsa.Detect(os.Getenv)
			for _, p := range d.Problems {
				assert.NotEqual(t, "AWS_ROLE_ARN", p.Var, "problem reported: %s", p)
			}
			l, _ := logger()
			sess, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Logger = l })
			require.NoError(t, err)
			assert.Equal(t, irsa.WebIdentity, sess.Mode())
			assert.Equal(t, role, sess.RoleARN())
			assert.Equal(t, c.region, sess.Region())
		})
	}
}
