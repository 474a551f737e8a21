package irsa_test

import (
	"strings"
	"testing"

	"github.com/irsakit/irsakit/irsa"
)

func TestParseRoleARN(t *testing.T) {
	good := map[string]string{
		"arn:aws:iam::111122223333:role/app":                  "app",
		"arn:aws-cn:iam::111122223333:role/path/to/app":       "app",
		"arn:aws-us-gov:iam::111122223333:role/a.b+c=d,e@f-g": "a.b+c=d,e@f-g",
	}
	for in, name := range good {
		a, n, err := irsa.ParseRoleARN(in)
		if err != nil || n != name || a.String() != in {
			t.Errorf("ParseRoleARN(%q) = %v %q %v", in, a, n, err)
		}
	}
	bad := map[string]string{
		"":                                          "not an ARN",
		"arn:aws:iam::111122223333":                 "not an ARN",
		"arn:aws-iso:iam::111122223333:role/x":      "unknown partition",
		"arn:aws:iam::11112222333:role/x":           "12 digits",
		"arn:aws:iam::111122223333:user/x":          "not an IAM role ARN",
		"arn:aws:sts::111122223333:role/x":          "not an IAM role ARN",
		"arn:aws:iam:us-east-1:111122223333:role/x": "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/":           "role name",
		"arn:aws:iam::111122223333:role/has space":  "role name",
	}
	for in, says := range bad {
		if _, _, err := irsa.ParseRoleARN(in); err == nil || !strings.Contains(err.Error(), says) {
			t.Errorf("ParseRoleARN(%q) = %v, want error saying %q", in, err, says)
		}
	}
}

func FuzzParseARN(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::111122223333:role/app", "arn:aws:s3:::bucket/key", "arn:aws-cn:rds-db:cn-north-1:111122223333:dbuser:db-ABC/u", "arn::::::", "arn:aws:iam::x:role/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := irsa.ParseARN(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("round trip %q -> %q", s, a.String())
		}
		if a.Partition != "aws" && a.Partition != "aws-cn" && a.Partition != "aws-us-gov" {
			t.Fatalf("accepted partition %q", a.Partition)
		}
		if _, name, err := irsa.ParseRoleARN(s); err == nil && (name == "" || strings.Contains(name, "/")) {
			t.Fatalf("role name %q from %q", name, s)
		}
	})
}

func TestSanitizeSessionName(t *testing.T) {
	cases := map[string]string{
		"mcp-server-7d9f8c-abcde":  "mcp-server-7d9f8c-abcde",
		"host name/with:bad*chars": "host-name-with-bad-chars",
		strings.Repeat("a", 100):   strings.Repeat("a", 64),
	}
	for in, want := range cases {
		if got := irsa.SanitizeSessionName(in); got != want {
			t.Errorf("SanitizeSessionName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := irsa.SanitizeSessionName(""); len(got) < 2 {
		t.Errorf("empty name gave %q", got)
	}
}
