package s3store_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/s3store"
)

// TestPolicySeed: with no prefix and no actions, Policy is the identity
// form of the seed bucket policy: ListBucket on the bucket, Get/Put/Delete
// on its objects.
func TestPolicySeed(t *testing.T) {
	got, err := s3store.Policy("your-bucket-name")
	require.NoError(t, err)
	want := `{
  "Version": "2012-10-17",
  "Statement": [
    {
      "Sid": "ListBucket",
      "Effect": "Allow",
      "Action": "s3:ListBucket",
      "Resource": "arn:aws:s3:::your-bucket-name"
    },
    {
      "Sid": "Objects",
      "Effect": "Allow",
      "Action": [
        "s3:GetObject",
        "s3:PutObject",
        "s3:DeleteObject"
      ],
      "Resource": "arn:aws:s3:::your-bucket-name/*"
    }
  ]
}
`
	assert.Equal(t, want, string(got))
}

func TestPolicyInvalid(t *testing.T) {
	for _, tc := range []struct {
		name, bucket, prefix string
		actions              []s3store.Action
		want                 string
	}{
		{"empty bucket", "", "", nil, "bucket name"},
		{"bucket ARN", "arn:aws:s3:::b", "", nil, "bucket name"},
		{"bucket with slash", "b/c", "", nil, "bucket name"},
		{"bucket wildcard", "b*b", "", nil, "bucket name"},
		{"bucket dots", "a..b", "", nil, `".."`},
		{"bucket leading dash", "-abc", "", nil, "begin and end"},
		{"wildcard prefix", "bucket", "logs/*", nil, "wildcard"},
		{"question prefix", "bucket", "logs/?", nil, "wildcard"},
		{"policy variable", "bucket", "home/${aws:username}/", nil, "policy variable"},
		{"leading slash", "bucket", "/logs/", nil, "leading slash"},
		{"control char", "bucket", "a\nb", nil, "control"},
		{"bad utf8", "bucket", "\xff", nil, "UTF-8"},
		{"long prefix", "bucket", strings.Repeat("a", 1025), nil, "1024"},
		{"unknown action", "bucket", "", []s3store.Action{"s3:*"}, "unknown action"},
		{"other service", "bucket", "", []s3store.Action{"iam:PassRole"}, "unknown action"},
		{"unknown partition", "bucket", "", nil, `"aws-moon"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s3store.Policy(tc.bucket, func(o *s3store.PolicyOptions) {
				o.Prefix, o.Actions = tc.prefix, tc.actions
				if tc.name == "unknown partition" {
					o.Partition = "aws-moon"
				}
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
			assert.True(t, strings.HasPrefix(err.Error(), "s3store: "), err.Error())
		})
	}
}

// TestPolicyMiniIAM evaluates generated policies with the stand-ins'
// mini-IAM: each allows exactly the requests it should.
func TestPolicyMiniIAM(t *testing.T) {
	type req struct {
		action, resource, prefix string
		allow                    bool
	}
	for _, tc := range []struct {
		name    string
		prefix  string
		actions []s3store.Action
		reqs    []req
	}{
		{"whole bucket", "", nil, []req{
			{"s3:ListBucket", "arn:aws:s3:::data", "", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "any/", true},
			{"s3:GetObject", "arn:aws:s3:::data/x", "", true},
			{"s3:PutObject", "arn:aws:s3:::data/a/b/c", "", true},
			{"s3:DeleteObject", "arn:aws:s3:::data/x", "", true},
			{"s3:AbortMultipartUpload", "arn:aws:s3:::data/x", "", false},
			{"s3:GetObject", "arn:aws:s3:::data2/x", "", false},
			{"s3:GetObject", "arn:aws:s3:::dat/x", "", false},
			{"s3:ListBucket", "arn:aws:s3:::other", "", false},
			{"s3:DeleteBucket", "arn:aws:s3:::data", "", false},
			{"s3:PutBucketPolicy", "arn:aws:s3:::data", "", false},
			{"s3:GetObject", "arn:aws:s3:::data", "", false},
		}},
		{"prefix", "tenant-1/", nil, []req{
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-1/", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-1/sub/", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "", false},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-10/", false},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-", false},
			{"s3:GetObject", "arn:aws:s3:::data/tenant-1/x", "", true},
			{"s3:PutObject", "arn:aws:s3:::data/tenant-1/a/b", "", true},
			{"s3:DeleteObject", "arn:aws:s3:::data/tenant-1/x", "", true},
			{"s3:GetObject", "arn:aws:s3:::data/tenant-10/x", "", false},
			{"s3:GetObject", "arn:aws:s3:::data/tenant-1", "", false},
			{"s3:GetObject", "arn:aws:s3:::data/x/tenant-1/x", "", false},
		}},
		{"read only", "r/", []s3store.Action{s3store.ActionGetObject, s3store.ActionListBucket}, []req{
			{"s3:GetObject", "arn:aws:s3:::data/r/x", "", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "r/", true},
			{"s3:PutObject", "arn:aws:s3:::data/r/x", "", false},
			{"s3:DeleteObject", "arn:aws:s3:::data/r/x", "", false},
		}},
		// A prefix is a directory: "tenant-2" grants tenant-2/ only,
		// never tenant-2-private/ or tenant-20/.
		{"prefix without slash", "tenant-2", nil, []req{
			{"s3:GetObject", "arn:aws:s3:::data/tenant-2/x", "", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-2/", true},
			{"s3:GetObject", "arn:aws:s3:::data/tenant-2-private/x", "", false},
			{"s3:GetObject", "arn:aws:s3:::data/tenant-20/x", "", false},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-2-private/", false},
			{"s3:ListBucket", "arn:aws:s3:::data", "tenant-20", false},
		}},
		{"write with abort, no list", "w/", []s3store.Action{s3store.ActionPutObject, s3store.ActionAbortMultipartUpload, s3store.ActionPutObject}, []req{
			{"s3:PutObject", "arn:aws:s3:::data/w/x", "", true},
			{"s3:AbortMultipartUpload", "arn:aws:s3:::data/w/x", "", true},
			{"s3:ListBucket", "arn:aws:s3:::data", "w/", false},
			{"s3:GetObject", "arn:aws:s3:::data/w/x", "", false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := s3store.Policy("data", func(o *s3store.PolicyOptions) { o.Prefix, o.Actions = tc.prefix, tc.actions })
			require.NoError(t, err)
			doc, err := iam.ParseDocument(p)
			if err != nil {
				t.Fatalf("mini-IAM rejects the policy: %v\n%s", err, p)
			}
			for _, r := range tc.reqs {
				ctx := map[string]string{}
				if r.prefix != "" {
					ctx["s3:prefix"] = r.prefix
				}
				if got := iam.Evaluate([]iam.Document{doc}, r.action, r.resource, ctx); got != r.allow {
					t.Errorf("%s on %s (prefix %q): allowed = %v, want %v", r.action, r.resource, r.prefix, got, r.allow)
				}
			}
		})
	}
}

// FuzzPolicy: any accepted input yields a valid policy that grants the
// object actions under the prefix and nothing in another bucket.
func FuzzPolicy(f *testing.F) {
	for _, s := range [][2]string{{"bucket", ""}, {"my.bucket-1", "a/b/"}, {"Legacy_Bucket", "x"}, {"b", "*"}, {"bucket", "ü/ñ"}, {"bu", "${x}"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, bucket, prefix string) {
		p, err := s3store.Policy(bucket, func(o *s3store.PolicyOptions) { o.Prefix = prefix })
		if err != nil {
			if !strings.HasPrefix(err.Error(), "s3store: ") {
				t.Fatalf("unprefixed error %v", err)
			}
			return
		}
		if !json.Valid(p) {
			t.Fatalf("invalid JSON: %s", p)
		}
		doc, err := iam.ParseDocument(p)
		if err != nil {
			t.Fatal(err)
		}
		if prefix != "" && !strings.HasSuffix(prefix, "/") {
			prefix += "/"
		}
		obj := "arn:aws:s3:::" + bucket + "/" + prefix + "k"
		if !iam.Evaluate([]iam.Document{doc}, "s3:GetObject", obj, nil) {
			t.Errorf("GetObject on %s denied by\n%s", obj, p)
		}
		if iam.Evaluate([]iam.Document{doc}, "s3:GetObject", "arn:aws:s3:::"+bucket+"x/"+prefix+"k", nil) {
			t.Errorf("another bucket allowed by\n%s", p)
		}
		if prefix != "" && iam.Evaluate([]iam.Document{doc}, "s3:ListBucket", "arn:aws:s3:::"+bucket, nil) {
			t.Errorf("listing without the prefix allowed by\n%s", p)
		}
	})
}

// Every partition the SDK knows.
func TestPolicyPartitions(t *testing.T) {
	for _, p := range []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"} {
		doc, err := s3store.Policy("data", func(o *s3store.PolicyOptions) { o.Prefix, o.Partition = "t/", p })
		require.NoError(t, err)
		d, err := iam.ParseDocument(doc)
		require.NoError(t, err)
		assert.True(t, iam.Evaluate([]iam.Document{d}, "s3:GetObject", "arn:"+p+":s3:::data/t/x", nil), p)
		if p != "aws" {
			assert.False(t, iam.Evaluate([]iam.Document{d}, "s3:GetObject", "arn:aws:s3:::data/t/x", nil), p)
		}
	}
}

// TestPolicyInVersitygw loads generated policies into versitygw's IAM as
// role policies and checks every Store call against them: each allows
// exactly what it should.
func TestPolicyInVersitygw(t *testing.T) {
	ctx := context.Background()
	type call struct {
		name  string
		run   func(st *s3store.Store) error
		allow bool
	}
	put := func(key string) func(*s3store.Store) error {
		return func(st *s3store.Store) error { _, err := st.Put(ctx, key, strings.NewReader("x")); return err }
	}
	get := func(key string) func(*s3store.Store) error {
		return func(st *s3store.Store) error {
			r, err := st.Get(ctx, key)
			if err == nil {
				r.Close()
			}
			return err
		}
	}
	del := func(key string) func(*s3store.Store) error {
		return func(st *s3store.Store) error { return st.Delete(ctx, key) }
	}
	list := func(prefix string) func(*s3store.Store) error {
		return func(st *s3store.Store) error {
			for _, err := range st.List(ctx, prefix) {
				return err
			}
			return nil
		}
	}
	for _, tc := range []struct {
		name    string
		prefix  string
		actions []s3store.Action
		calls   []call
	}{
		{"default actions on a prefix", "pv/t1/", nil, []call{
			{"put inside", put("pv/t1/a"), true},
			{"get inside", get("pv/t1/a"), true},
			{"list prefix", list("pv/t1/"), true},
			{"list deeper", list("pv/t1/sub/"), true},
			{"delete inside", del("pv/t1/a"), true},
			{"put sibling prefix", put("pv/t10/a"), false},
			{"put prefix without slash", put("pv/t1"), false},
			{"get outside", get("pv/t2/a"), false},
			{"delete outside", del("pv/t2/a"), false},
			{"list whole bucket", list(""), false},
			{"list sibling", list("pv/t2/"), false},
			{"list shorter prefix", list("pv/"), false},
		}},
		{"read only", "pv/ro/", []s3store.Action{s3store.ActionListBucket, s3store.ActionGetObject}, []call{
			{"list", list("pv/ro/"), true},
			{"put", put("pv/ro/a"), false},
			{"delete", del("pv/ro/a"), false},
		}},
		{"write only", "pv/wo/", []s3store.Action{s3store.ActionPutObject}, []call{
			{"put", put("pv/wo/a"), true},
			{"get", get("pv/wo/a"), false},
			{"list", list("pv/wo/"), false},
			{"delete", del("pv/wo/a"), false},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStore(t, testBucket, mustPolicy(t, testBucket, tc.prefix, tc.actions...))
			for _, c := range tc.calls {
				err := c.run(st)
				switch {
				case c.allow && err != nil:
					t.Errorf("%s: %v, want allowed", c.name, err)
				case !c.allow && !errors.Is(err, s3store.ErrAccessDenied):
					t.Errorf("%s: %v, want ErrAccessDenied", c.name, err)
				}
			}
		})
	}
}
