package policy_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
)

func TestInputsAreValidated(t *testing.T) {
	s := policy.Scope{Region: "us-east-1", Account: "111122223333"}
	cases := []struct {
		name string
		err  error
	}{
		{"rds name instead of resource id", func() error { _, err := policy.RDS(s, "my-aurora", "app"); return err }()},
		{"rds wildcard user", func() error { _, err := policy.RDS(s, "cluster-ABC", "*"); return err }()},
		{"elasticache endpoint as name", func() error {
			_, err := policy.ElastiCache(s, "master.mcp.abc.use1.cache.amazonaws.com", "app", false)
			return err
		}()},
		{"bad account", func() error {
			_, err := policy.Secrets(policy.Scope{Region: "us-east-1", Account: "12"}, "", "x")
			return err
		}()},
		{"bad region", func() error {
			_, err := policy.Secrets(policy.Scope{Region: "useast1", Account: "111122223333"}, "", "x")
			return err
		}()},
		{"s3 wildcard prefix", func() error { _, err := policy.S3(policy.Scope{}, "bucket", "a*", false); return err }()},
		{"kms not a key", func() error { _, err := policy.Secrets(s, "arn:aws:s3:::x", "x"); return err }()},
	}
	for _, tc := range cases {
		if tc.err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

func TestMarshalIsStable(t *testing.T) {
	s := policy.Scope{Region: "cn-north-1", Account: "111122223333"}
	ec, err := policy.ElastiCache(s, "mcp-cache", "app", true)
	if err != nil {
		t.Fatal(err)
	}
	b1, _ := policy.Marshal(policy.Identity(ec))
	b2, _ := policy.Marshal(policy.Identity(ec))
	if string(b1) != string(b2) || !strings.HasSuffix(string(b1), "}\n") {
		t.Fatalf("unstable output:\n%s", b1)
	}
	if !strings.Contains(string(b1), "arn:aws-cn:elasticache:cn-north-1:111122223333:serverlesscache:mcp-cache") {
		t.Errorf("partition/serverless ARN wrong:\n%s", b1)
	}
	var d policy.Document
	if err := json.Unmarshal(b1, &d); err != nil || len(d.Statement[0].Resource) != 2 {
		t.Fatalf("round trip: %v %+v", err, d)
	}
}

func FuzzListUnmarshal(f *testing.F) {
	f.Add(`"a"`)
	f.Add(`["a","b"]`)
	f.Add(`{}`)
	f.Fuzz(func(t *testing.T, s string) {
		var l policy.List
		if err := json.Unmarshal([]byte(s), &l); err != nil {
			return
		}
		b, err := json.Marshal(l)
		if err != nil {
			t.Fatal(err)
		}
		var again policy.List
		if err := json.Unmarshal(b, &again); err != nil || len(again) != len(l) {
			t.Fatalf("round trip of %q: %v", s, err)
		}
	})
}
