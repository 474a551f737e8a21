package irsa_test

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/irsa"
)

// The trust policy RoleTrustPolicy writes admits exactly the trusted role
// with the ExternalId, tags and source identity it names, in every
// partition, as the stand-ins' IAM evaluates it.
func TestRoleTrustPolicyAdmitsOnlyTheTrustedRole(t *testing.T) {
	for _, partition := range []string{"aws", "aws-cn", "aws-us-gov", "aws-iso", "aws-iso-b", "aws-iso-e", "aws-iso-f", "aws-eusc"} {
		t.Run(partition, func(t *testing.T) {
			trusted := "arn:" + partition + ":iam::111122223333:role/orders"
			target := "arn:" + partition + ":iam::444455556666:role/ledger-reader"
			doc, err := irsa.RoleTrustPolicy(trusted, func(o *irsa.RoleTrustPolicyOptions) {
				o.ExternalID = "ledger-7f3a"
				o.SessionTags = map[string]string{"team": "payments", "env": "prod"}
				o.SourceIdentity = "svc-*"
			})
			require.NoError(t, err)
			i := iam.New("444455556666")
			require.NoError(t, i.PutRole(target, doc), "IAM refuses the generated policy:\n%s", doc)
			req := func(f func(*iam.AssumeRequest)) iam.AssumeRequest {
				r := iam.AssumeRequest{CallerRoleARN: trusted, CallerARN: "arn:" + partition + ":sts::111122223333:assumed-role/orders/pod", CallerAccount: "111122223333",
					RoleSessionName: "pod", ExternalID: "ledger-7f3a"}
				if f != nil {
					f(&r)
				}
				return r
			}
			cases := []struct {
				name, action string
				req          iam.AssumeRequest
				want         bool
			}{
				{"trusted role", "sts:AssumeRole", req(nil), true},
				{"without the external id", "sts:AssumeRole", req(func(r *iam.AssumeRequest) { r.ExternalID = "" }), false},
				{"another external id", "sts:AssumeRole", req(func(r *iam.AssumeRequest) { r.ExternalID = "x-0000" }), false},
				{"another role", "sts:AssumeRole", req(func(r *iam.AssumeRequest) {
					r.CallerRoleARN = strings.Replace(trusted, "orders", "intruder", 1)
					r.CallerARN = "arn:" + partition + ":sts::111122223333:assumed-role/intruder/pod"
				}), false},
				{"the named tags", "sts:TagSession", req(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "payments", "env": "prod"} }), true},
				{"only some of them", "sts:TagSession", req(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "payments"} }), false},
				{"another value", "sts:TagSession", req(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "ads", "env": "prod"} }), false},
				{"another key", "sts:TagSession", req(func(r *iam.AssumeRequest) {
					r.Tags = map[string]string{"team": "payments", "env": "prod", "admin": "true"}
				}), false},
				{"matching source identity", "sts:SetSourceIdentity", req(func(r *iam.AssumeRequest) { r.SourceIdentity = "svc-orders" }), true},
				{"other source identity", "sts:SetSourceIdentity", req(func(r *iam.AssumeRequest) { r.SourceIdentity = "alice" }), false},
			}
			for _, c := range cases {
				_, ok := i.AssumeRoleTrust(target, c.action, c.req)
				assert.Equal(t, c.want, ok, c.name)
			}
		})
	}
}

// Without options: sts:AssumeRole for the role, nothing else.
func TestRoleTrustPolicyPlain(t *testing.T) {
	doc, err := irsa.RoleTrustPolicy("arn:aws:iam::111122223333:role/orders")
	require.NoError(t, err)
	assert.JSONEq(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"arn:aws:iam::111122223333:role/orders"},"Action":"sts:AssumeRole"}]}`, string(doc))
	i := iam.New("444455556666")
	require.NoError(t, i.PutRole("arn:aws:iam::444455556666:role/t", doc))
	r := iam.AssumeRequest{CallerRoleARN: "arn:aws:iam::111122223333:role/orders", CallerAccount: "111122223333", RoleSessionName: "p"}
	_, ok := i.AssumeRoleTrust("arn:aws:iam::444455556666:role/t", "sts:AssumeRole", r)
	assert.True(t, ok)
	r.Tags = map[string]string{"team": "x"}
	_, ok = i.AssumeRoleTrust("arn:aws:iam::444455556666:role/t", "sts:TagSession", r)
	assert.False(t, ok, "session tags allowed without SessionTags")
}

func TestRoleTrustPolicyRejects(t *testing.T) {
	cases := []struct {
		name string
		arn  string
		opts func(*irsa.RoleTrustPolicyOptions)
		says string
	}{
		{"not an ARN", "orders", nil, "not an ARN"},
		{"a user", "arn:aws:iam::111122223333:user/orders", nil, "not an IAM role ARN"},
		{"an OIDC provider", "arn:aws:iam::111122223333:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/X", nil, "not an IAM role ARN"},
		{"external id", "arn:aws:iam::111122223333:role/orders", func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = "a b" }, "RoleTrustPolicyOptions.ExternalID"},
		{"tag key", "arn:aws:iam::111122223333:role/orders", func(o *irsa.RoleTrustPolicyOptions) { o.SessionTags = map[string]string{"aws:x": "y"} }, `session tag key "aws:x"`},
		{"tag value", "arn:aws:iam::111122223333:role/orders", func(o *irsa.RoleTrustPolicyOptions) { o.SessionTags = map[string]string{"x": "a\"b"} }, `session tag "x"`},
		{"source identity", "arn:aws:iam::111122223333:role/orders", func(o *irsa.RoleTrustPolicyOptions) { o.SourceIdentity = "a b" }, "RoleTrustPolicyOptions.SourceIdentity"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fns []func(*irsa.RoleTrustPolicyOptions)
			if c.opts != nil {
				fns = append(fns, c.opts)
			}
			_, err := irsa.RoleTrustPolicy(c.arn, fns...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.says)
			assert.True(t, strings.HasPrefix(err.Error(), "irsa: "), "%q", err)
		})
	}
}
