package policydoc_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/policydoc"
)

func TestMarshalShape(t *testing.T) {
	b, err := policydoc.Marshal(policydoc.New(
		policydoc.Statement{Sid: "One", Effect: "Allow", Action: policydoc.List{"s3:GetObject"}, Resource: policydoc.List{"arn:aws:s3:::b/<x>&*"}},
		policydoc.Statement{Effect: "Allow", Principal: &policydoc.Principal{Federated: "arn:aws:iam::111122223333:oidc-provider/x"},
			Action: policydoc.List{"sts:AssumeRoleWithWebIdentity"}, Condition: map[string]map[string]policydoc.List{"StringEquals": {"x:sub": {"a"}}}},
	))
	require.NoError(t, err)
	assert.Equal(t, `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "One",
      "Effect": "Allow",
      "Action": "s3:GetObject",
      "Resource": "arn:aws:s3:::b/<x>&*"
    },
    {
      "Effect": "Allow",
      "Principal": {
        "Federated": "arn:aws:iam::111122223333:oidc-provider/x"
      },
      "Action": "sts:AssumeRoleWithWebIdentity",
      "Condition": {
        "StringEquals": {
          "x:sub": "a"
        }
      }
    }
  ]
}
`, string(b))
	_, err = iam.ParseDocument(b)
	require.NoError(t, err)
}

func TestCombine(t *testing.T) {
	a, err := policydoc.Marshal(policydoc.New(policydoc.Statement{Sid: "S", Effect: "Allow", Action: policydoc.List{"a:x"}, Resource: policydoc.List{"r1", "r2"}}))
	require.NoError(t, err)
	b, err := policydoc.Marshal(policydoc.New(policydoc.Statement{Sid: "S", Effect: "Allow", Action: policydoc.List{"b:y"}, Resource: policydoc.List{"r3"}}))
	require.NoError(t, err)
	d, err := policydoc.Combine(a, b)
	require.NoError(t, err)
	require.Len(t, d.Statement, 2)
	assert.Equal(t, "S", d.Statement[0].Sid)
	assert.Equal(t, "S2", d.Statement[1].Sid, "IAM refuses duplicate statement ids")
	assert.Equal(t, policydoc.List{"r1", "r2"}, d.Statement[0].Resource)

	_, err = policydoc.Combine(a, []byte("{"))
	require.Error(t, err)
	_, err = policydoc.Parse([]byte(`{"Statement":[{"Action":7}]}`))
	require.Error(t, err)
}
