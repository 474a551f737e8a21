package irsa_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/irsa"
)

func TestParseRoleARN(t *testing.T) {
	good := map[string]string{
		"arn:aws:iam::111122223333:role/app":                  "app",
		"arn:aws-cn:iam::111122223333:role/path/to/app":       "app",
		"arn:aws-us-gov:iam::111122223333:role/a.b+c=d,e@f-g": "a.b+c=d,e@f-g",
		"arn:aws-iso:iam::111122223333:role/app":              "app",
		"arn:aws-iso-b:iam::111122223333:role/app":            "app",
		"arn:aws-iso-e:iam::111122223333:role/app":            "app",
		"arn:aws-iso-f:iam::111122223333:role/app":            "app",
		"arn:aws-eusc:iam::111122223333:role/eks/app":         "app",
	}
	for in, name := range good {
		t.Run(in, func(t *testing.T) {
			a, n, err := irsa.ParseRoleARN(in)
			require.NoError(t, err)
			assert.Equal(t, name, n)
			assert.Equal(t, in, a.String())
		})
	}
	bad := map[string]string{
		"":                                          "not an ARN",
		"arn:aws:iam::111122223333":                 "not an ARN",
		"arn:aws-moon:iam::111122223333:role/x":     "unknown partition",
		"arn:aws:iam::11112222333:role/x":           "12 digits",
		"arn:aws:iam:::role/x":                      "12 digits",
		"arn:aws:iam::111122223333:user/x":          "not an IAM role ARN",
		"arn:aws:sts::111122223333:role/x":          "not an IAM role ARN",
		"arn:aws:iam:us-east-1:111122223333:role/x": "not an IAM role ARN",
		"arn:aws:iam::111122223333:role/":           "role name",
		"arn:aws:iam::111122223333:role/has space":  "role name",
	}
	for in, says := range bad {
		t.Run("bad/"+in, func(t *testing.T) {
			_, _, err := irsa.ParseRoleARN(in)
			require.Error(t, err)
			assert.Contains(t, err.Error(), says)
			assert.Contains(t, err.Error(), in, "the error names the input")
		})
	}
}

func FuzzParseRoleARN(f *testing.F) {
	for _, s := range []string{"arn:aws:iam::111122223333:role/app", "arn:aws-eusc:iam::111122223333:role/a/b", "arn:aws-cn:rds-db:cn-north-1:111122223333:dbuser:db-ABC/u", "arn::::::", "arn:aws:iam::x:role/y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, name, err := irsa.ParseRoleARN(s)
		if err != nil {
			return
		}
		if a.String() != s {
			t.Fatalf("round trip %q -> %q", s, a.String())
		}
		if name == "" || strings.Contains(name, "/") || a.Service != "iam" || len(a.AccountID) != 12 {
			t.Fatalf("accepted %q as role %q", s, name)
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
