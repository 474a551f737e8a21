package rdsauth_test

import (
	"errors"
	"testing"

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
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc, err := rdsauth.Policy(tt.region, "111122223333", tt.resource, tt.users...)
			if err != nil {
				t.Fatal(err)
			}
			m := iam.New("111122223333")
			if err := m.PutRole(role, trust, doc); err != nil {
				t.Fatalf("mini-IAM refuses the policy: %v\n%s", err, doc)
			}
			for _, arn := range tt.allowed {
				if !m.Authorize(role, "rds-db:connect", arn) {
					t.Errorf("denies %s", arn)
				}
			}
			for _, arn := range tt.denied {
				if m.Authorize(role, "rds-db:connect", arn) {
					t.Errorf("allows %s", arn)
				}
			}
			for _, action := range []string{"rds-db:*", "rds:DescribeDBInstances", "rds:GenerateDBAuthToken"} {
				if m.Authorize(role, action, tt.allowed[0]) {
					t.Errorf("allows %s", action)
				}
			}
		})
	}
}

func TestPolicyRejectsBadInput(t *testing.T) {
	tests := []struct {
		name, region, account, resource string
		users                           []string
	}{
		{"instance name instead of resource id", "us-east-1", "111122223333", "mydb", []string{"app"}},
		{"bare prefix", "us-east-1", "111122223333", "db-", []string{"app"}},
		{"wildcard resource", "us-east-1", "111122223333", "db-*", []string{"app"}},
		{"wildcard user", "us-east-1", "111122223333", "db-ABC", []string{"*"}},
		{"user with slash", "us-east-1", "111122223333", "db-ABC", []string{"a/b"}},
		{"no user", "us-east-1", "111122223333", "db-ABC", nil},
		{"empty user", "us-east-1", "111122223333", "db-ABC", []string{""}},
		{"short account", "us-east-1", "1111", "db-ABC", []string{"app"}},
		{"account with letters", "us-east-1", "11112222333a", "db-ABC", []string{"app"}},
		{"bad region", "US-EAST-1", "111122223333", "db-ABC", []string{"app"}},
		{"empty region", "", "111122223333", "db-ABC", []string{"app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := rdsauth.Policy(tt.region, tt.account, tt.resource, tt.users...); !errors.Is(err, rdsauth.ErrInvalidPolicyInput) {
				t.Fatalf("err = %v, want ErrInvalidPolicyInput", err)
			}
		})
	}
}
