package iam_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
)

const (
	baseRole   = "arn:aws:iam::111122223333:role/app"
	baseCaller = "arn:aws:sts::111122223333:assumed-role/app/pod-1"
	targetRole = "arn:aws:iam::444455556666:role/ledger"
)

func caller() iam.AssumeRequest {
	return iam.AssumeRequest{CallerRoleARN: baseRole, CallerARN: baseCaller, CallerAccount: "111122223333", RoleSessionName: "pod-1"}
}

func putTarget(t *testing.T, trust string) *iam.IAM {
	t.Helper()
	i := iam.New("444455556666")
	require.NoError(t, i.PutRole(targetRole, []byte(trust)))
	return i
}

// Principal.AWS names the caller by role ARN, session ARN or account, and
// nothing else admits it.
func TestAssumeRoleTrustPrincipals(t *testing.T) {
	cases := []struct {
		principal string
		want      bool
	}{
		{`"` + baseRole + `"`, true},
		{`"` + baseCaller + `"`, true},
		{`"111122223333"`, true},
		{`"arn:aws:iam::111122223333:root"`, true},
		{`"*"`, true},
		{`["arn:aws:iam::999999999999:role/x", "` + baseRole + `"]`, true},
		{`"arn:aws:iam::111122223333:role/other"`, false},
		{`"arn:aws:iam::999999999999:root"`, false},
		{`"arn:aws-cn:iam::111122223333:root"`, false},
		{`"999999999999"`, false},
	}
	for _, c := range cases {
		t.Run(c.principal, func(t *testing.T) {
			i := putTarget(t, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":`+c.principal+`},"Action":"sts:AssumeRole"}]}`)
			exists, ok := i.AssumeRoleTrust(targetRole, "sts:AssumeRole", caller())
			assert.True(t, exists)
			assert.Equal(t, c.want, ok)
		})
	}
}

func TestAssumeRoleTrustActionsAndDeny(t *testing.T) {
	i := putTarget(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"`+baseRole+`"},"Action":"sts:AssumeRole"},
	 {"Effect":"Deny","Principal":{"AWS":"*"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:RoleSessionName":"blocked"}}}]}`)
	_, ok := i.AssumeRoleTrust(targetRole, "sts:AssumeRole", caller())
	assert.True(t, ok)
	_, ok = i.AssumeRoleTrust(targetRole, "sts:TagSession", caller())
	assert.False(t, ok, "sts:TagSession allowed by a statement for sts:AssumeRole")
	_, ok = i.AssumeRoleTrust(targetRole, "sts:AssumeRoleWithWebIdentity", caller())
	assert.False(t, ok)
	blocked := caller()
	blocked.RoleSessionName = "blocked"
	_, ok = i.AssumeRoleTrust(targetRole, "sts:AssumeRole", blocked)
	assert.False(t, ok, "explicit Deny did not win")
	exists, ok := i.AssumeRoleTrust(targetRole+"x", "sts:AssumeRole", caller())
	assert.False(t, exists)
	assert.False(t, ok)
}

// The conditions trust policies put on sts:AssumeRole: ExternalId, source
// identity, request tags and the tag keys allowed.
func TestAssumeRoleTrustConditions(t *testing.T) {
	i := putTarget(t, `{"Version":"2012-10-17","Statement":[
	 {"Effect":"Allow","Principal":{"AWS":"`+baseRole+`"},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"ledger-7f3a"}}},
	 {"Effect":"Allow","Principal":{"AWS":"`+baseRole+`"},"Action":"sts:SetSourceIdentity","Condition":{"StringLike":{"sts:SourceIdentity":"svc-*"}}},
	 {"Effect":"Allow","Principal":{"AWS":"`+baseRole+`"},"Action":"sts:TagSession",
	  "Condition":{"StringEquals":{"aws:RequestTag/team":"payments"},"ForAllValues:StringEquals":{"aws:TagKeys":["team","env"]}}}]}`)
	with := func(f func(*iam.AssumeRequest)) iam.AssumeRequest {
		r := caller()
		f(&r)
		return r
	}
	cases := []struct {
		name   string
		action string
		req    iam.AssumeRequest
		want   bool
	}{
		{"external id", "sts:AssumeRole", with(func(r *iam.AssumeRequest) { r.ExternalID = "ledger-7f3a" }), true},
		{"no external id", "sts:AssumeRole", caller(), false},
		{"wrong external id", "sts:AssumeRole", with(func(r *iam.AssumeRequest) { r.ExternalID = "ledger-0000" }), false},
		{"source identity", "sts:SetSourceIdentity", with(func(r *iam.AssumeRequest) { r.SourceIdentity = "svc-orders" }), true},
		{"other source identity", "sts:SetSourceIdentity", with(func(r *iam.AssumeRequest) { r.SourceIdentity = "alice" }), false},
		{"no source identity", "sts:SetSourceIdentity", caller(), false},
		{"tags", "sts:TagSession", with(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "payments", "env": "prod"} }), true},
		{"wrong tag value", "sts:TagSession", with(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "ads"} }), false},
		{"tag key not allowed", "sts:TagSession", with(func(r *iam.AssumeRequest) { r.Tags = map[string]string{"team": "payments", "admin": "true"} }), false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, ok := i.AssumeRoleTrust(targetRole, c.action, c.req)
			assert.Equal(t, c.want, ok)
		})
	}
}

func TestConditionOperators(t *testing.T) {
	cases := []struct {
		cond string
		ctx  map[string]string
		want bool
	}{
		{`{"StringNotEquals":{"k":"a"}}`, map[string]string{"k": "b"}, true},
		{`{"StringNotEquals":{"k":"a"}}`, map[string]string{"k": "a"}, false},
		{`{"StringEqualsIgnoreCase":{"k":"ABC"}}`, map[string]string{"k": "abc"}, true},
		{`{"StringNotLike":{"k":"a*"}}`, map[string]string{"k": "abc"}, false},
		{`{"StringEqualsIfExists":{"k":"a"}}`, nil, true},
		{`{"StringEqualsIfExists":{"k":"a"}}`, map[string]string{"k": "b"}, false},
		{`{"Null":{"k":"true"}}`, nil, true},
		{`{"Null":{"k":"false"}}`, nil, false},
		{`{"StringEquals":{"K":"a"}}`, map[string]string{"k": "a"}, true},
		{`{"ForAnyValue:StringEquals":{"k":"a"}}`, nil, false},
		{`{"NumericLessThan":{"k":"5"}}`, map[string]string{"k": "1"}, false},
		{`{"Maybe:StringEquals":{"k":"a"}}`, map[string]string{"k": "a"}, false},
	}
	for _, c := range cases {
		t.Run(c.cond, func(t *testing.T) {
			doc, err := iam.ParseDocument([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*","Condition":` + c.cond + `}]}`))
			require.NoError(t, err)
			assert.Equal(t, c.want, iam.Evaluate([]iam.Document{doc}, "s3:GetObject", "arn:aws:s3:::b/k", c.ctx))
		})
	}
}
