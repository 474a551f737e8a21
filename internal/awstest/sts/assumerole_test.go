package sts_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

const (
	account2  = "444455556666"
	chainRole = "arn:aws:iam::" + account + ":role/chain-base"
	otherRole = "arn:aws:iam::" + account + ":role/chain-other"
	// unpermittedRole is trusted by targetRole but has no identity policy.
	unpermittedRole = "arn:aws:iam::" + account + ":role/chain-unpermitted"
	targetRole      = "arn:aws:iam::" + account2 + ":role/ledger"
	externalID      = "ledger-7f3a"
)

var (
	im2Once sync.Once
	im2     *iam.IAM
)

// secondAccount sets up, once, a role in a second account that trusts
// chainRole and the web-identity role (with an ExternalId, tags only with
// team=payments, source identities svc-*), and their identity policies
// allowing it.
func secondAccount(t *testing.T) {
	t.Helper()
	im2Once.Do(func() {
		im2 = iam.New(account2)
		trust := `{"Version":"2012-10-17","Statement":[
		 {"Effect":"Allow","Principal":{"AWS":["` + chainRole + `","` + roleARN + `","` + unpermittedRole + `"]},"Action":"sts:AssumeRole","Condition":{"StringEquals":{"sts:ExternalId":"` + externalID + `"}}},
		 {"Effect":"Allow","Principal":{"AWS":"` + chainRole + `"},"Action":"sts:TagSession","Condition":{"StringEquals":{"aws:RequestTag/team":"payments"}}},
		 {"Effect":"Allow","Principal":{"AWS":"` + chainRole + `"},"Action":"sts:SetSourceIdentity","Condition":{"StringLike":{"sts:SourceIdentity":"svc-*"}}}]}`
		if err := im2.PutRole(targetRole, []byte(trust)); err != nil {
			panic(err)
		}
		allow := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["sts:AssumeRole","sts:TagSession","sts:SetSourceIdentity"],"Resource":"arn:aws:iam::*:role/*"}]}`
		for _, r := range []string{chainRole, otherRole} {
			if err := im.PutRole(r, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`), []byte(allow)); err != nil {
				panic(err)
			}
		}
		if err := im.PutRole(unpermittedRole, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)); err != nil {
			panic(err)
		}
		if err := im.AttachPolicy(roleARN, []byte(allow)); err != nil {
			panic(err)
		}
		srv.AddAccount(im2)
	})
}

func signer(c sigv4.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func issue(t *testing.T, role string, ttl time.Duration) sigv4.Credentials {
	t.Helper()
	c, err := reg.IssueSession(role, "pod-1", ttl)
	require.NoError(t, err)
	return c
}

func assumeRole(ctx context.Context, creds aws.CredentialsProvider, in *awssts.AssumeRoleInput, optFns ...func(*awssts.Options)) (*awssts.AssumeRoleOutput, error) {
	return client(append([]func(*awssts.Options){func(o *awssts.Options) { o.Credentials = creds }}, optFns...)...).AssumeRole(ctx, in)
}

func input(f ...func(*awssts.AssumeRoleInput)) *awssts.AssumeRoleInput {
	in := &awssts.AssumeRoleInput{RoleArn: aws.String(targetRole), RoleSessionName: aws.String("chained"), ExternalId: aws.String(externalID)}
	for _, fn := range f {
		fn(in)
	}
	return in
}

// A role session of one account assumes a role of another: the
// credentials are the target role's, in the target account, and sign
// GetCallerIdentity as it.
func TestAssumeRoleCrossAccount(t *testing.T) {
	secondAccount(t)
	ctx := context.Background()
	base := issue(t, chainRole, time.Hour)
	srv.ResetCalls()
	before := time.Now().Truncate(time.Second)
	out, err := assumeRole(ctx, signer(base), input(func(in *awssts.AssumeRoleInput) {
		in.DurationSeconds = aws.Int32(3600)
		in.SourceIdentity = aws.String("svc-orders")
		in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}, {Key: aws.String("env"), Value: aws.String("prod")}}
		in.TransitiveTagKeys = []string{"team"}
	}))
	require.NoError(t, err)
	c := out.Credentials
	require.NotNil(t, c)
	exp := aws.ToTime(c.Expiration)
	assert.False(t, exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)), "expiration %v", exp)
	wantArn := "arn:aws:sts::" + account2 + ":assumed-role/ledger/chained"
	assert.Equal(t, wantArn, aws.ToString(out.AssumedRoleUser.Arn))
	assert.Equal(t, "svc-orders", aws.ToString(out.SourceIdentity))
	issued, ok := reg.Lookup(aws.ToString(c.AccessKeyId))
	require.True(t, ok, "credentials not recorded in the registry")
	assert.Equal(t, targetRole, issued.RoleARN)
	assert.Equal(t, account2, issued.Account)

	id, err := client(func(o *awssts.Options) {
		o.Credentials = credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	}).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, wantArn, aws.ToString(id.Arn))
	assert.Equal(t, account2, aws.ToString(id.Account))

	log := srv.CallLog()
	require.NotEmpty(t, log)
	got := log[0]
	assert.Equal(t, "AssumeRole", got.Action)
	assert.Empty(t, got.Code)
	assert.Equal(t, base.Arn, got.Caller)
	assert.Equal(t, externalID, got.ExternalID)
	assert.Equal(t, "svc-orders", got.SourceIdentity)
	assert.Equal(t, map[string]string{"team": "payments", "env": "prod"}, got.Tags)
	assert.Equal(t, []string{"team"}, got.TransitiveTagKeys)
	assert.Equal(t, 3600, got.DurationSeconds)
	assert.Equal(t, aws.ToString(c.AccessKeyId), got.AccessKeyID)
	assert.Equal(t, int64(1), srv.Calls("AssumeRole"))
}

// Each thing AWS refuses in an AssumeRole, refused with AWS's code and
// status.
func TestAssumeRoleRejects(t *testing.T) {
	secondAccount(t)
	ctx := context.Background()
	base := issue(t, chainRole, time.Hour)
	other := issue(t, otherRole, time.Hour)
	expired := issue(t, chainRole, -time.Minute)
	bare := issue(t, unpermittedRole, time.Hour)
	user := reg.AddUser(account, "dev")
	denied := func(c sigv4.Credentials, action string) string {
		return fmt.Sprintf("User: %s is not authorized to perform: %s on resource: %s", c.Arn, action, targetRole)
	}
	cases := []struct {
		name   string
		creds  aws.CredentialsProvider
		in     *awssts.AssumeRoleInput
		region string
		code   string
		status int
		msg    string
	}{
		{"unsigned", aws.AnonymousCredentials{}, input(), "", "MissingAuthenticationToken", 403, ""},
		{"unknown key", credentials.NewStaticCredentialsProvider("ASIAUNKNOWNUNKNOWN00", base.SecretAccessKey, base.SessionToken), input(), "", "InvalidClientTokenId", 403, ""},
		{"wrong secret", credentials.NewStaticCredentialsProvider(base.AccessKeyID, strings.Repeat("x", 40), base.SessionToken), input(), "", "SignatureDoesNotMatch", 403, ""},
		{"expired caller", signer(expired), input(), "", "ExpiredToken", 403, ""},
		{"other region", signer(base), input(), "eu-west-1", "SignatureDoesNotMatch", 403, ""},
		{"no external id", signer(base), input(func(in *awssts.AssumeRoleInput) { in.ExternalId = nil }), "", "AccessDenied", 403, denied(base, "sts:AssumeRole")},
		{"wrong external id", signer(base), input(func(in *awssts.AssumeRoleInput) { in.ExternalId = aws.String("ledger-0000") }), "", "AccessDenied", 403, denied(base, "sts:AssumeRole")},
		{"caller not in the trust policy", signer(other), input(), "", "AccessDenied", 403, denied(other, "sts:AssumeRole")},
		{"trusted but no identity policy", signer(bare), input(), "", "AccessDenied", 403, denied(bare, "sts:AssumeRole")},
		{"user without policies", signer(user), input(), "", "AccessDenied", 403, ""},
		{"unknown role", signer(base), input(func(in *awssts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::" + account2 + ":role/nope") }), "", "AccessDenied", 403, ""},
		{"unknown account", signer(base), input(func(in *awssts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::999988887777:role/ledger") }), "", "AccessDenied", 403, ""},
		{"tag the trust policy refuses", signer(base), input(func(in *awssts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("ads")}}
		}), "", "AccessDenied", 403, denied(base, "sts:TagSession")},
		{"source identity the trust policy refuses", signer(base), input(func(in *awssts.AssumeRoleInput) { in.SourceIdentity = aws.String("alice") }),
			"", "AccessDenied", 403, denied(base, "sts:SetSourceIdentity")},
		{"chained session over one hour", signer(base), input(func(in *awssts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(7200) }),
			"", "ValidationError", 400, "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."},
		{"duration too short", signer(base), input(func(in *awssts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(600) }), "", "ValidationError", 400, ""},
		{"bad session name", signer(base), input(func(in *awssts.AssumeRoleInput) { in.RoleSessionName = aws.String("bad name!") }), "", "ValidationError", 400, ""},
		{"not a role ARN", signer(base), input(func(in *awssts.AssumeRoleInput) { in.RoleArn = aws.String("arn:aws:iam::" + account2 + ":user/ledger") }), "", "ValidationError", 400, ""},
		{"external id too short", signer(base), input(func(in *awssts.AssumeRoleInput) { in.ExternalId = aws.String("x") }), "", "ValidationError", 400, ""},
		{"duplicate tag keys", signer(base), input(func(in *awssts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}, {Key: aws.String("Team"), Value: aws.String("payments")}}
		}), "", "ValidationError", 400, "Duplicate tag keys found. Please note that Tag keys are case insensitive."},
		{"transitive key not a tag", signer(base), input(func(in *awssts.AssumeRoleInput) {
			in.Tags = []types.Tag{{Key: aws.String("team"), Value: aws.String("payments")}}
			in.TransitiveTagKeys = []string{"env"}
		}), "", "InvalidParameterValue", 400, ""},
		{"session policy", signer(base), input(func(in *awssts.AssumeRoleInput) { in.Policy = aws.String(`{"Version":"2012-10-17"}`) }), "", "ValidationError", 400, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := assumeRole(ctx, c.creds, c.in, func(o *awssts.Options) {
				if c.region != "" {
					o.Region = c.region
				}
			})
			ae := wantAPIError(t, err, c.code, c.status)
			if c.msg != "" {
				assert.Equal(t, c.msg, ae.ErrorMessage())
			}
		})
	}
	// A user's keys are not role credentials: no chaining limit, so the
	// answer is the missing permission, not the one-hour limit.
	_, err := assumeRole(ctx, signer(user), input(func(in *awssts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(7200) }))
	wantAPIError(t, err, "AccessDenied", 403)
}

// The SDK's AssumeRole credential provider, chained on the SDK's
// web-identity provider, gets the target role's credentials; the one-hour
// limit of role chaining holds for it.
func TestAssumeRoleProviderChainedOnWebIdentity(t *testing.T) {
	secondAccount(t)
	ctx := context.Background()
	web := aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(client(), roleARN, staticToken(mint(t, issuer, sub))))
	chained := func(d time.Duration) aws.CredentialsProvider {
		return stscreds.NewAssumeRoleProvider(client(func(o *awssts.Options) { o.Credentials = web }), targetRole, func(o *stscreds.AssumeRoleOptions) {
			o.ExternalID = aws.String(externalID)
			o.RoleSessionName = "chained"
			o.Duration = d
		})
	}
	c, err := chained(time.Hour).Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, account2, c.AccountID)
	issued, ok := reg.Lookup(c.AccessKeyID)
	require.True(t, ok)
	assert.Equal(t, targetRole, issued.RoleARN)

	_, err = chained(2 * time.Hour).Retrieve(ctx)
	ae := wantAPIError(t, err, "ValidationError", 400)
	assert.Contains(t, ae.ErrorMessage(), "1 hour session limit for roles assumed by role chaining")

	// The target's session is a role session too: chaining from it is
	// limited the same way.
	next := credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	_, err = assumeRole(ctx, next, input(func(in *awssts.AssumeRoleInput) { in.DurationSeconds = aws.Int32(3601) }))
	wantAPIError(t, err, "ValidationError", 400)
}
