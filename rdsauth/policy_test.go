package rdsauth_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/rdsauth"
)

func TestPolicyAllowsExactlyTheUser(t *testing.T) {
	const role = "arn:aws:iam::111122223333:role/app"
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)
	tests := []struct {
		name, region, resource string
		users                  []string
		allowed, denied        []string // ARNs
	}{
		{
			name: "instance", region: "us-east-1", resource: "db-ABCDEFGHIJKLMNOPQRSTUVWXY0", users: []string{"app"},
			allowed: []string{"arn:aws:rds-db:us-east-1:111122223333:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app"},
			denied: []string{
				"arn:aws:rds-db:us-east-1:111122223333:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app2",
				"arn:aws:rds-db:us-east-1:111122223333:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/admin",
				"arn:aws:rds-db:us-east-1:111122223333:dbuser:db-OTHER/app",
				"arn:aws:rds-db:us-west-2:111122223333:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app",
				"arn:aws:rds-db:us-east-1:444455556666:dbuser:db-ABCDEFGHIJKLMNOPQRSTUVWXY0/app",
			},
		},
		{
			name: "cluster, two users", region: "eu-west-1", resource: "cluster-ABCDEFGHIJKL", users: []string{"app", "reporting", "app"},
			allowed: []string{
				"arn:aws:rds-db:eu-west-1:111122223333:dbuser:cluster-ABCDEFGHIJKL/app",
				"arn:aws:rds-db:eu-west-1:111122223333:dbuser:cluster-ABCDEFGHIJKL/reporting",
			},
			denied: []string{"arn:aws:rds-db:eu-west-1:111122223333:dbuser:cluster-ABCDEFGHIJKL/postgres"},
		},
		{
			name: "china", region: "cn-north-1", resource: "db-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-cn:rds-db:cn-north-1:111122223333:dbuser:db-ABC/app"},
			denied:  []string{"arn:aws:rds-db:cn-north-1:111122223333:dbuser:db-ABC/app"},
		},
		{
			name: "govcloud proxy", region: "us-gov-west-1", resource: "prx-0123456789abcdef", users: []string{"app"},
			allowed: []string{"arn:aws-us-gov:rds-db:us-gov-west-1:111122223333:dbuser:prx-0123456789abcdef/app"},
			denied:  []string{"arn:aws:rds-db:us-gov-west-1:111122223333:dbuser:prx-0123456789abcdef/app"},
		},
		{
			name: "iso", region: "us-iso-east-1", resource: "cluster-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-iso:rds-db:us-iso-east-1:111122223333:dbuser:cluster-ABC/app"},
		},
		{
			name: "iso-b", region: "us-isob-east-1", resource: "cluster-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-iso-b:rds-db:us-isob-east-1:111122223333:dbuser:cluster-ABC/app"},
		},
		{
			name: "iso-e", region: "eu-isoe-west-1", resource: "cluster-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-iso-e:rds-db:eu-isoe-west-1:111122223333:dbuser:cluster-ABC/app"},
		},
		{
			name: "iso-f", region: "us-isof-south-1", resource: "cluster-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-iso-f:rds-db:us-isof-south-1:111122223333:dbuser:cluster-ABC/app"},
		},
		{
			name: "eusc", region: "eusc-de-east-1", resource: "cluster-ABC", users: []string{"app"},
			allowed: []string{"arn:aws-eusc:rds-db:eusc-de-east-1:111122223333:dbuser:cluster-ABC/app"},
			denied:  []string{"arn:aws:rds-db:eusc-de-east-1:111122223333:dbuser:cluster-ABC/app"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := rdsauth.Policy(tt.region, "111122223333", tt.resource, tt.users)
			require.NoError(t, err)
			m := iam.New("111122223333")
			require.NoError(t, m.PutRole(role, trust, doc), "mini-IAM refuses the policy:\n%s", doc)
			for _, arn := range tt.allowed {
				assert.True(t, m.Authorize(role, "rds-db:connect", arn), "denies %s", arn)
			}
			for _, arn := range tt.denied {
				assert.False(t, m.Authorize(role, "rds-db:connect", arn), "allows %s", arn)
			}
			for _, action := range []string{"rds-db:*", "rds:DescribeDBInstances", "rds:GenerateDBAuthToken"} {
				assert.False(t, m.Authorize(role, action, tt.allowed[0]), "allows %s", action)
			}
		})
	}
}

func TestPolicyRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, region, account, resource string
		users                           []string
		partition                       string
		says                            string // the error names the input
	}{
		{"instance name instead of resource id", "us-east-1", "111122223333", "mydb", []string{"app"}, "", `"mydb"`},
		{"bare prefix", "us-east-1", "111122223333", "db-", []string{"app"}, "", `"db-"`},
		{"wildcard resource", "us-east-1", "111122223333", "db-*", []string{"app"}, "", `"db-*"`},
		{"wildcard user", "us-east-1", "111122223333", "db-ABC", []string{"*"}, "", `"*"`},
		{"user with slash", "us-east-1", "111122223333", "db-ABC", []string{"a/b"}, "", `"a/b"`},
		{"no user", "us-east-1", "111122223333", "db-ABC", nil, "", "no database user"},
		{"empty user", "us-east-1", "111122223333", "db-ABC", []string{""}, "", `database user ""`},
		{"short account", "us-east-1", "1111", "db-ABC", []string{"app"}, "", `"1111"`},
		{"account with letters", "us-east-1", "11112222333a", "db-ABC", []string{"app"}, "", `"11112222333a"`},
		{"bad region", "US-EAST-1", "111122223333", "db-ABC", []string{"app"}, "", `"US-EAST-1"`},
		{"empty region", "", "111122223333", "db-ABC", []string{"app"}, "", `region ""`},
		{"unknown region", "xx-east-1", "111122223333", "db-ABC", []string{"app"}, "", `"xx-east-1"`},
		{"partition disagrees with region", "us-east-1", "111122223333", "db-ABC", []string{"app"}, "aws-cn", "us-east-1 is in partition aws, not aws-cn"},
		{"unknown partition", "us-east-1", "111122223333", "db-ABC", []string{"app"}, "aws-moon", `"aws-moon"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rdsauth.Policy(tt.region, tt.account, tt.resource, tt.users,
				func(o *rdsauth.PolicyOptions) { o.Partition = tt.partition })
			require.ErrorIs(t, err, rdsauth.ErrInvalidPolicyInput)
			assert.Contains(t, err.Error(), tt.says)
		})
	}
}
