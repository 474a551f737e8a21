package iam_test

import (
	"testing"

	"github.com/irsakit/irsakit/internal/awstest/iam"
)

const roleARN = "arn:aws:iam::111122223333:role/app"

const trust = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
 "Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/oidc.example/id/ABC"},
 "Action":"sts:AssumeRoleWithWebIdentity",
 "Condition":{"StringEquals":{"oidc.example/id/ABC:sub":"system:serviceaccount:mcp:mcp-server","oidc.example/id/ABC:aud":"sts.amazonaws.com"}}}]}`

const policy = `{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":"rds-db:connect","Resource":"arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABC/app_*"},
 {"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::bucket/data/*"},
 {"Effect":"Deny","Action":"s3:*","Resource":"arn:aws:s3:::bucket/data/secret/*"}]}`

func TestAuthorize(t *testing.T) {
	i := iam.New("111122223333")
	if err := i.PutRole(roleARN, []byte(trust), []byte(policy)); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		action, resource string
		want             bool
	}{
		{"rds-db:connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABC/app_rw", true},
		{"RDS-DB:Connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABC/app_rw", true},
		{"rds-db:connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-ABC/admin", false},
		{"rds-db:connect", "arn:aws:rds-db:us-east-1:111122223333:dbuser:cluster-XYZ/app_rw", false},
		{"s3:GetObject", "arn:aws:s3:::bucket/data/a/b/c", true},
		{"s3:GetObject", "arn:aws:s3:::bucket/data/secret/x", false},
		{"s3:DeleteObject", "arn:aws:s3:::bucket/data/a", false},
		{"s3:GetObject", "arn:aws:s3:::bucket/other", false},
	}
	for _, c := range cases {
		if got := i.Authorize(roleARN, c.action, c.resource); got != c.want {
			t.Errorf("Authorize(%s, %s) = %v, want %v", c.action, c.resource, got, c.want)
		}
	}
	if i.Authorize("arn:aws:iam::111122223333:role/other", "s3:GetObject", "arn:aws:s3:::bucket/data/a") {
		t.Error("unknown role allowed")
	}
}

func TestTrust(t *testing.T) {
	i := iam.New("111122223333")
	if err := i.PutRole(roleARN, []byte(trust)); err != nil {
		t.Fatal(err)
	}
	prov := "arn:aws:iam::111122223333:oidc-provider/oidc.example/id/ABC"
	cases := []struct {
		name, prov, sub, aud string
		want                 bool
	}{
		{"match", prov, "system:serviceaccount:mcp:mcp-server", "sts.amazonaws.com", true},
		{"other sa", prov, "system:serviceaccount:mcp:other", "sts.amazonaws.com", false},
		{"other aud", prov, "system:serviceaccount:mcp:mcp-server", "vault", false},
		{"other provider", "arn:aws:iam::111122223333:oidc-provider/evil/id/ABC", "system:serviceaccount:mcp:mcp-server", "sts.amazonaws.com", false},
	}
	for _, c := range cases {
		exists, ok := i.AssumeWithWebIdentity(roleARN, c.prov, "oidc.example/id/ABC", c.sub, c.aud)
		if !exists || ok != c.want {
			t.Errorf("%s: got exists=%v allowed=%v, want allowed=%v", c.name, exists, ok, c.want)
		}
	}
	if exists, _ := i.AssumeWithWebIdentity(roleARN+"x", prov, "oidc.example/id/ABC", "s", "a"); exists {
		t.Error("missing role reported as existing")
	}
}

func TestUnknownConditionFailsClosed(t *testing.T) {
	i := iam.New("111122223333")
	p := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":{"IpAddress":{"aws:SourceIp":"10.0.0.0/8"}}}]}`
	if err := i.PutRole(roleARN, []byte(trust), []byte(p)); err != nil {
		t.Fatal(err)
	}
	if i.Authorize(roleARN, "s3:GetObject", "arn:aws:s3:::b/k") {
		t.Fatal("statement with an unevaluated condition allowed the request")
	}
}

func TestParseDocumentRejects(t *testing.T) {
	for _, bad := range []string{`{}`, `{"Version":"2008-10-17","Statement":[{"Effect":"Allow","Action":"x"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Maybe","Action":"x"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow"}]}`,
		`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"x","Bogus":1}]}`} {
		if _, err := iam.ParseDocument([]byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
