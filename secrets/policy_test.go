package secrets_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/secrets"
)

func TestPolicyInputs(t *testing.T) {
	cases := []struct {
		name            string
		region, account string
		names           []string
		opts            secrets.PolicyOptions
		says            string // "" = accepted; else the error names the input
	}{
		{"names", "eu-west-1", "111122223333", []string{"a/b", "c"}, secrets.PolicyOptions{}, ""},
		{"prefix", "us-east-1", "111122223333", []string{"app/*"}, secrets.PolicyOptions{}, ""},
		{"arn", "us-east-1", "111122223333", []string{"arn:aws:secretsmanager:us-east-1:444455556666:secret:x-AbCdEf"}, secrets.PolicyOptions{}, ""},
		{"china", "cn-north-1", "111122223333", []string{"a"}, secrets.PolicyOptions{}, ""},
		{"iso-f", "us-isof-south-1", "111122223333", []string{"a"}, secrets.PolicyOptions{Partition: "aws-iso-f"}, ""},
		{"kms", "eusc-de-east-1", "111122223333", []string{"a"}, secrets.PolicyOptions{KMSKeyARNs: []string{"arn:aws-eusc:kms:eusc-de-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"}}, ""},
		{"bad region", "Europe", "111122223333", []string{"a"}, secrets.PolicyOptions{}, `"Europe"`},
		{"bad account", "eu-west-1", "1234", []string{"a"}, secrets.PolicyOptions{}, `"1234"`},
		{"no names", "eu-west-1", "111122223333", nil, secrets.PolicyOptions{}, "no secret names"},
		{"bad name", "eu-west-1", "111122223333", []string{"has space"}, secrets.PolicyOptions{}, `"has space"`},
		{"bare star", "eu-west-1", "111122223333", []string{"*"}, secrets.PolicyOptions{}, `"*"`},
		{"not a secret ARN", "eu-west-1", "111122223333", []string{"arn:aws:s3:::bucket"}, secrets.PolicyOptions{}, `"arn:aws:s3:::bucket"`},
		{"ARN of another partition", "eu-west-1", "111122223333", []string{"arn:aws-cn:secretsmanager:cn-north-1:111122223333:secret:x-AbCdEf"}, secrets.PolicyOptions{}, `partition "aws-cn"`},
		{"partition disagrees", "eu-west-1", "111122223333", []string{"a"}, secrets.PolicyOptions{Partition: "aws-us-gov"}, "eu-west-1 is in partition aws, not aws-us-gov"},
		{"not a KMS key", "eu-west-1", "111122223333", []string{"a"}, secrets.PolicyOptions{KMSKeyARNs: []string{"arn:aws:kms:eu-west-1:111122223333:alias/x"}}, `"arn:aws:kms:eu-west-1:111122223333:alias/x"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc, err := secrets.Policy(tc.region, tc.account, tc.names, func(o *secrets.PolicyOptions) { *o = tc.opts })
			if tc.says != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.says)
				return
			}
			require.NoError(t, err)
			_, err = iam.ParseDocument(doc)
			require.NoError(t, err)
		})
	}
}

// The generated policy, evaluated by the stand-ins' IAM, grants exactly the
// named secrets in the region's partition, and kms:Decrypt only through
// Secrets Manager.
func TestPolicyGrants(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/app"
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)
	for _, c := range []struct{ region, partition, suffix string }{
		{"us-east-1", "aws", "amazonaws.com"}, {"cn-north-1", "aws-cn", "amazonaws.com.cn"},
		{"us-gov-west-1", "aws-us-gov", "amazonaws.com"}, {"us-iso-east-1", "aws-iso", "c2s.ic.gov"},
		{"us-isob-east-1", "aws-iso-b", "sc2s.sgov.gov"}, {"eu-isoe-west-1", "aws-iso-e", "cloud.adc-e.uk"},
		{"us-isof-south-1", "aws-iso-f", "csp.hci.ic.gov"}, {"eusc-de-east-1", "aws-eusc", "amazonaws.eu"},
	} {
		t.Run(c.partition, func(t *testing.T) {
			key := "arn:" + c.partition + ":kms:" + c.region + ":111122223333:key/k1"
			doc, err := secrets.Policy(c.region, "111122223333", []string{"app/db", "team/*"},
				func(o *secrets.PolicyOptions) { o.KMSKeyARNs = []string{key} })
			require.NoError(t, err)
			m := iam.New("111122223333")
			require.NoError(t, m.PutRole(role, trust, doc))
			arn := "arn:" + c.partition + ":secretsmanager:" + c.region + ":111122223333:secret:"
			assert.True(t, m.Authorize(role, "secretsmanager:GetSecretValue", arn+"app/db-AbCdEf"))
			assert.True(t, m.Authorize(role, "secretsmanager:GetSecretValue", arn+"team/x-AbCdEf"))
			assert.False(t, m.Authorize(role, "secretsmanager:GetSecretValue", arn+"app/db-old-AbCdEf"))
			assert.False(t, m.Authorize(role, "secretsmanager:PutSecretValue", arn+"app/db-AbCdEf"))
			assert.Contains(t, string(doc), `"kms:ViaService": "secretsmanager.`+c.region+`.`+c.suffix+`"`)
		})
	}
}

func FuzzPolicy(f *testing.F) {
	f.Add("eu-west-1", "111122223333", "app/db")
	f.Add("us-gov-west-1", "000000000000", "a*")
	f.Add("x", "1", "arn:aws:secretsmanager:x")
	f.Fuzz(func(t *testing.T, region, account, name string) {
		doc, err := secrets.Policy(region, account, []string{name})
		if err != nil {
			return
		}
		d, err := iam.ParseDocument(doc)
		if err != nil {
			t.Fatalf("Policy produced an invalid document: %v\n%s", err, doc)
		}
		if len(d.Statement) != 1 || len(d.Statement[0].Action) != 1 || d.Statement[0].Action[0] != "secretsmanager:GetSecretValue" {
			t.Fatalf("unexpected grant: %s", doc)
		}
	})
}
