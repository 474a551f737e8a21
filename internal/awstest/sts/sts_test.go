package sts_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/awstest/sts"
)

const (
	account = sigv4.DefaultAccount
	roleARN = "arn:aws:iam::" + account + ":role/app"
	region  = "us-east-1"
)

var (
	sub = oidc.ServiceAccountSubject("mcp", "mcp-server")

	reg         *sigv4.Registry
	im          *iam.IAM
	issuer      *oidc.Issuer // registered, trusted by the role
	stranger    *oidc.Issuer // https, not registered
	gone        *oidc.Issuer // registered, then closed
	failing     *oidc.Issuer // registered, answers 503
	plain       *oidc.Issuer // registered, but http://
	srv         *sts.Server
	providerARN string
)

func trustPolicy(providerARN, hostPath, sub, aud string) []byte {
	return []byte(fmt.Sprintf(`{
  "Version": "2012-10-17",
  "Statement": [{
    "Effect": "Allow",
    "Principal": {"Federated": %q},
    "Action": "sts:AssumeRoleWithWebIdentity",
    "Condition": {"StringEquals": {%q: %q, %q: %q}}
  }]
}`, providerARN, hostPath+":sub", sub, hostPath+":aud", aud))
}

func TestMain(m *testing.M) {
	code, err := run(m)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(code)
}

func run(m *testing.M) (int, error) {
	reg = sigv4.NewRegistry(nil)
	im = iam.New(account)
	pool := x509.NewCertPool()
	for _, p := range []**oidc.Issuer{&issuer, &stranger, &gone, &failing} {
		iss, err := oidc.New(func(o *oidc.Options) { o.TLS = true })
		if err != nil {
			return 0, err
		}
		defer iss.Close()
		pool.AddCert(iss.Certificate())
		*p = iss
	}
	var err error
	if plain, err = oidc.New(); err != nil {
		return 0, err
	}
	defer plain.Close()
	providerARN = im.AddOIDCProvider(issuer.URL(), "sts.amazonaws.com", "other-client")
	for _, iss := range []*oidc.Issuer{gone, failing, plain} {
		arn := im.AddOIDCProvider(iss.URL(), "sts.amazonaws.com")
		_, hostPath, _ := strings.Cut(iss.URL(), "://")
		if err := im.PutRole("arn:aws:iam::"+account+":role/via-"+strings.ReplaceAll(hostPath, "/", "-")[:20],
			trustPolicy(arn, hostPath, sub, "sts.amazonaws.com")); err != nil {
			return 0, err
		}
	}
	gone.Close()
	failing.SetFailing(true)
	if err := im.PutRole(roleARN, trustPolicy(providerARN, issuer.HostPath(), sub, "sts.amazonaws.com")); err != nil {
		return 0, err
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	srv, err = sts.New(reg, im, func(o *sts.Options) {
		o.HTTPClient = &http.Client{Transport: tr, Timeout: 5 * time.Second}
	})
	if err != nil {
		return 0, err
	}
	defer srv.Close()
	return m.Run(), nil
}

// client is the real SDK client pointed at the stand-in, without retries
// unless optFns add them.
func client(optFns ...func(*awssts.Options)) *awssts.Client {
	return awssts.New(awssts.Options{
		Region:       region,
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      aws.NopRetryer{},
	}, optFns...)
}

func mint(t *testing.T, iss *oidc.Issuer, sub string, opts ...func(*oidc.Claims)) string {
	t.Helper()
	tok, err := iss.Mint(sub, opts...)
	require.NoError(t, err)
	return tok
}

func assume(ctx context.Context, role, token string, optFns ...func(*awssts.AssumeRoleWithWebIdentityInput)) (*awssts.AssumeRoleWithWebIdentityOutput, error) {
	in := &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(role),
		RoleSessionName:  aws.String("test-session"),
		WebIdentityToken: aws.String(token),
	}
	for _, fn := range optFns {
		fn(in)
	}
	return client().AssumeRoleWithWebIdentity(ctx, in)
}

func wantAPIError(t *testing.T, err error, code string, status int) smithy.APIError {
	t.Helper()
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae, "not a smithy.APIError")
	require.Equal(t, code, ae.ErrorCode(), "error code of %v", err)
	var re *awshttp.ResponseError
	require.ErrorAs(t, err, &re, "the error carries no HTTP response")
	require.Equal(t, status, re.HTTPStatusCode(), "HTTP status")
	require.NotEmpty(t, re.ServiceRequestID(), "no request id in the error")
	return ae
}

func TestAssumeRoleWithWebIdentity(t *testing.T) {
	ctx := context.Background()
	before := time.Now().Truncate(time.Second)
	out, err := assume(ctx, roleARN, mint(t, issuer, sub))
	require.NoError(t, err)
	c := out.Credentials
	require.NotNil(t, c)
	require.NotEmpty(t, aws.ToString(c.AccessKeyId))
	require.NotEmpty(t, aws.ToString(c.SecretAccessKey))
	require.NotEmpty(t, aws.ToString(c.SessionToken))
	exp := aws.ToTime(c.Expiration)
	assert.False(t, exp.Before(before.Add(time.Hour-time.Second)) || exp.After(time.Now().Add(time.Hour)),
		"expiration %v, want about an hour from %v", exp, before)
	wantArn := "arn:aws:sts::" + account + ":assumed-role/app/test-session"
	assert.Equal(t, wantArn, aws.ToString(out.AssumedRoleUser.Arn))
	assert.True(t, strings.HasSuffix(aws.ToString(out.AssumedRoleUser.AssumedRoleId), ":test-session"), "assumed role id %s", aws.ToString(out.AssumedRoleUser.AssumedRoleId))
	assert.Equal(t, sub, aws.ToString(out.SubjectFromWebIdentityToken))
	assert.Equal(t, "sts.amazonaws.com", aws.ToString(out.Audience))
	assert.Equal(t, providerARN, aws.ToString(out.Provider))
	issued, ok := reg.Lookup(aws.ToString(c.AccessKeyId))
	require.True(t, ok, "credentials not recorded in the registry")
	assert.Equal(t, roleARN, issued.RoleARN)
	assert.Equal(t, aws.ToString(c.SecretAccessKey), issued.SecretAccessKey, "registry holds another secret")

	// The issued credentials sign GetCallerIdentity, which names the role.
	creds := credentials.NewStaticCredentialsProvider(aws.ToString(c.AccessKeyId), aws.ToString(c.SecretAccessKey), aws.ToString(c.SessionToken))
	id, err := client(func(o *awssts.Options) { o.Credentials = creds }).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, wantArn, aws.ToString(id.Arn))
	assert.Equal(t, account, aws.ToString(id.Account))
	assert.Equal(t, aws.ToString(out.AssumedRoleUser.AssumedRoleId), aws.ToString(id.UserId))
}

// The web-identity provider of the SDK, reading a projected token file,
// gets credentials; rotating the file makes the next retrieval present the
// new token.
func TestWebIdentityProviderAndTokenRotation(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "token")
	first, err := issuer.WriteTokenFile(path, sub)
	require.NoError(t, err)
	p := stscreds.NewWebIdentityRoleProvider(client(), roleARN, stscreds.IdentityTokenFile(path),
		func(o *stscreds.WebIdentityRoleOptions) { o.RoleSessionName = "rotation" })
	srv.ResetCalls()
	c1, err := p.Retrieve(ctx)
	require.NoError(t, err)
	assert.True(t, c1.CanExpire)
	assert.Equal(t, account, c1.AccountID)
	second, err := issuer.RotateTokenFile(path)
	require.NoError(t, err)
	c2, err := p.Retrieve(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, c1.AccessKeyID, c2.AccessKeyID, "second retrieval returned the same credentials")
	log := srv.CallLog()
	require.Len(t, log, 2)
	assert.EqualValues(t, 2, srv.Calls(sts.ActionAssumeRoleWithWebIdentity))
	assert.Equal(t, sts.TokenDigest(first), log[0].TokenDigest)
	assert.Equal(t, sts.TokenDigest(second), log[1].TokenDigest, "the rotated token was not presented on the next retrieval")
	assert.Empty(t, log[1].Code)
	assert.Equal(t, sub, log[1].Subject)
	assert.Equal(t, "rotation", log[1].RoleSessionName)
	assert.Equal(t, c2.AccessKeyID, log[1].AccessKeyID)
}

func TestRejectsBadTokens(t *testing.T) {
	ctx := context.Background()
	invalid := func(err error) bool { var e *types.InvalidIdentityTokenException; return errors.As(err, &e) }
	expired := func(err error) bool { var e *types.ExpiredTokenException; return errors.As(err, &e) }
	idp := func(err error) bool { var e *types.IDPCommunicationErrorException; return errors.As(err, &e) }
	generic := func(err error) bool { var e *smithy.GenericAPIError; return errors.As(err, &e) }
	_, goneHost, _ := strings.Cut(gone.URL(), "://")
	_, failHost, _ := strings.Cut(failing.URL(), "://")
	_, plainHost, _ := strings.Cut(plain.URL(), "://")
	role := func(hostPath string) string {
		return "arn:aws:iam::" + account + ":role/via-" + strings.ReplaceAll(hostPath, "/", "-")[:20]
	}
	cases := []struct {
		name    string
		role    string
		token   func(t *testing.T) string
		code    string
		status  int
		typed   func(error) bool
		message string
	}{
		{"wrong audience", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.WithAudience("not-sts")) },
			"InvalidIdentityToken", 400, invalid, "Incorrect token audience"},
		{"no audience", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.WithAudience()) },
			"InvalidIdentityToken", 400, invalid, "Incorrect token audience"},
		{"audience the provider accepts but the trust policy does not", roleARN,
			func(t *testing.T) string { return mint(t, issuer, sub, oidc.WithAudience("other-client")) },
			"AccessDenied", 403, generic, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"wrong issuer claim", roleARN, func(t *testing.T) string {
			return mint(t, issuer, sub, oidc.WithIssuer("https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"))
		}, "InvalidIdentityToken", 400, invalid, "No OpenIDConnect provider found in your account for https://oidc.eks.us-east-1.amazonaws.com/id/0123456789ABCDEF0123456789ABCDEF"},
		{"unregistered issuer", roleARN, func(t *testing.T) string { return mint(t, stranger, sub) },
			"InvalidIdentityToken", 400, invalid, "No OpenIDConnect provider found in your account for " + stranger.URL()},
		{"plain http issuer", role(plainHost), func(t *testing.T) string { return mint(t, plain, sub) },
			"InvalidIdentityToken", 400, invalid, "must be https"},
		{"subject not in trust policy", roleARN, func(t *testing.T) string { return mint(t, issuer, oidc.ServiceAccountSubject("mcp", "other")) },
			"AccessDenied", 403, generic, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"namespace not in trust policy", roleARN, func(t *testing.T) string { return mint(t, issuer, oidc.ServiceAccountSubject("default", "mcp-server")) },
			"AccessDenied", 403, generic, "Not authorized"},
		{"role missing", "arn:aws:iam::" + account + ":role/nope", func(t *testing.T) string { return mint(t, issuer, sub) },
			"AccessDenied", 403, generic, "Not authorized to perform sts:AssumeRoleWithWebIdentity"},
		{"signed by a foreign key", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.SignedByForeignKey()) },
			"InvalidIdentityToken", 400, invalid, "signature"},
		{"unknown key id", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.WithKeyID("unknown-kid")) },
			"InvalidIdentityToken", 400, invalid, "unknown-kid"},
		{"another issuer's key under this issuer's name", roleARN, func(t *testing.T) string {
			return mint(t, stranger, sub, oidc.WithIssuer(issuer.URL()))
		}, "InvalidIdentityToken", 400, invalid, ""},
		{"expired", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.Expired()) },
			"ExpiredTokenException", 400, expired, "Token expired"},
		{"not yet valid", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.NotYetValid()) },
			"InvalidIdentityToken", 400, invalid, "not yet valid"},
		{"no expiry", roleARN, func(t *testing.T) string {
			return mint(t, issuer, sub, func(c *oidc.Claims) { c.Expiry = time.Time{} })
		}, "InvalidIdentityToken", 400, invalid, "exp"},
		{"alg none", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.AlgNone()) },
			"InvalidIdentityToken", 400, invalid, `"none"`},
		{"HS256", roleARN, func(t *testing.T) string { return mint(t, issuer, sub, oidc.AlgHS256()) },
			"InvalidIdentityToken", 400, invalid, "HS256"},
		{"not a JWT", roleARN, func(*testing.T) string { return "not-a-jwt" },
			"InvalidIdentityToken", 400, invalid, "not a valid JWT"},
		{"garbage JWT", roleARN, func(*testing.T) string { return "e30.e30.e30" },
			"InvalidIdentityToken", 400, invalid, ""},
		{"issuer unreachable", role(goneHost), func(t *testing.T) string { return mint(t, gone, sub) },
			"IDPCommunicationError", 400, idp, "Couldn't retrieve verification key"},
		{"issuer failing", role(failHost), func(t *testing.T) string { return mint(t, failing, sub) },
			"IDPCommunicationError", 400, idp, "Couldn't retrieve verification key"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := assume(ctx, c.role, c.token(t))
			ae := wantAPIError(t, err, c.code, c.status)
			assert.True(t, c.typed(err), "error %T (%v) is not the SDK's typed error for %s", errors.Unwrap(err), err, c.code)
			assert.Contains(t, ae.ErrorMessage(), c.message)
		})
	}
}

func TestValidation(t *testing.T) {
	ctx := context.Background()
	tok := mint(t, issuer, sub)
	cases := map[string]struct {
		role    string
		in      func(*awssts.AssumeRoleWithWebIdentityInput)
		message string
	}{
		"session name too short": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("a") },
			"greater than or equal to 2"},
		"session name too long": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) {
			in.RoleSessionName = aws.String(strings.Repeat("a", 65))
		},
			"less than or equal to 64"},
		"session name charset": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.RoleSessionName = aws.String("bad name!") },
			`[\w+=,.@-]*`},
		"duration too short": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(899) },
			"greater than or equal to 900"},
		"duration too long": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(43201) },
			"less than or equal to 43200"},
		"duration above the role's maximum": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(7200) },
			"exceeds the MaxSessionDuration"},
		"two errors": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) {
			in.DurationSeconds = aws.Int32(1)
			in.RoleSessionName = aws.String("x")
		}, "2 validation errors detected"},
		"role ARN of a user": {"arn:aws:iam::" + account + ":user/alice", nil, "Request ARN is invalid"},
		"role ARN too short": {"arn:aws:iam::1:role", nil, "greater than or equal to 20"},
		"session policy": {roleARN, func(in *awssts.AssumeRoleWithWebIdentityInput) {
			in.Policy = aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}`)
		}, "not supported"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			var fns []func(*awssts.AssumeRoleWithWebIdentityInput)
			if c.in != nil {
				fns = append(fns, c.in)
			}
			_, err := assume(ctx, c.role, tok, fns...)
			ae := wantAPIError(t, err, "ValidationError", 400)
			assert.Contains(t, ae.ErrorMessage(), c.message)
		})
	}
}

func TestDurationAndCredentialTTL(t *testing.T) {
	ctx := context.Background()
	tok := mint(t, issuer, sub)
	expiresIn := func(t *testing.T, out *awssts.AssumeRoleWithWebIdentityOutput, err error, want time.Duration) {
		t.Helper()
		require.NoError(t, err)
		got := time.Until(aws.ToTime(out.Credentials.Expiration))
		// The registry truncates to the second; allow that and the test's
		// own run time, not a timing assertion on the server.
		assert.False(t, got > want || got < want-time.Minute, "credentials expire in %v, want %v", got, want)
	}
	out, err := assume(ctx, roleARN, tok, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(900) })
	expiresIn(t, out, err, 15*time.Minute)

	srv.SetCredentialTTL(5 * time.Minute)
	out, err = assume(ctx, roleARN, tok)
	expiresIn(t, out, err, 5*time.Minute)
	srv.SetCredentialTTL(sts.DefaultCredentialTTL)

	srv.SetMaxSessionDuration(12 * time.Hour)
	out, err = assume(ctx, roleARN, tok, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(7200) })
	expiresIn(t, out, err, time.Hour) // capped by the credential TTL
	srv.SetCredentialTTL(12 * time.Hour)
	out, err = assume(ctx, roleARN, tok, func(in *awssts.AssumeRoleWithWebIdentityInput) { in.DurationSeconds = aws.Int32(7200) })
	expiresIn(t, out, err, 2*time.Hour)
	srv.SetCredentialTTL(sts.DefaultCredentialTTL)
	srv.SetMaxSessionDuration(sts.DefaultMaxSessionDuration)
}

func TestGetCallerIdentityRejects(t *testing.T) {
	ctx := context.Background()
	good, err := reg.IssueSession(roleARN, "s", time.Hour)
	require.NoError(t, err)
	expiredCreds, err := reg.IssueSession(roleARN, "s", -time.Minute)
	require.NoError(t, err)
	static := func(id, secret, token string) aws.CredentialsProvider {
		return credentials.NewStaticCredentialsProvider(id, secret, token)
	}
	cases := map[string]struct {
		creds  aws.CredentialsProvider
		region string
		code   string
		status int
	}{
		"unsigned":         {aws.AnonymousCredentials{}, region, "MissingAuthenticationToken", 403},
		"unknown key":      {static("ASIAUNKNOWNUNKNOWN00", good.SecretAccessKey, good.SessionToken), region, "InvalidClientTokenId", 403},
		"wrong secret":     {static(good.AccessKeyID, strings.Repeat("x", 40), good.SessionToken), region, "SignatureDoesNotMatch", 403},
		"no session token": {static(good.AccessKeyID, good.SecretAccessKey, ""), region, "InvalidClientTokenId", 403},
		"expired":          {static(expiredCreds.AccessKeyID, expiredCreds.SecretAccessKey, expiredCreds.SessionToken), region, "ExpiredToken", 403},
		"other region":     {static(good.AccessKeyID, good.SecretAccessKey, good.SessionToken), "eu-west-1", "SignatureDoesNotMatch", 403},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := client(func(o *awssts.Options) { o.Credentials = c.creds; o.Region = c.region }).
				GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
			wantAPIError(t, err, c.code, c.status)
		})
	}
	reg.Revoke(good.AccessKeyID)
	_, err = client(func(o *awssts.Options) {
		o.Credentials = static(good.AccessKeyID, good.SecretAccessKey, good.SessionToken)
	}).
		GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	wantAPIError(t, err, "InvalidClientTokenId", 403)

	// Long-term user keys work too and name the user.
	user := reg.AddUser(account, "dev")
	id, err := client(func(o *awssts.Options) { o.Credentials = static(user.AccessKeyID, user.SecretAccessKey, "") }).
		GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	require.NoError(t, err)
	assert.Equal(t, "arn:aws:iam::"+account+":user/dev", aws.ToString(id.Arn))
}

// noBackoff retries at once: the test asserts what is retried, not when.
type noBackoff struct{}

func (noBackoff) BackoffDelay(int, error) (time.Duration, error) { return 0, nil }

func retryStandard(attempts int) aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = attempts
		o.Backoff = noBackoff{}
		o.RateLimiter = ratelimit.None
	})
}

func retrying(attempts int) func(*awssts.Options) {
	return func(o *awssts.Options) {
		o.Retryer = retryStandard(attempts)
	}
}

func TestFaultInjection(t *testing.T) {
	ctx := context.Background()
	tok := mint(t, issuer, sub)
	const A = sts.ActionAssumeRoleWithWebIdentity
	call := func(optFns ...func(*awssts.Options)) error {
		_, err := client(optFns...).AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("faults"), WebIdentityToken: aws.String(tok),
		})
		return err
	}
	t.Run("FailNext retried by the SDK", func(t *testing.T) {
		srv.ResetCalls()
		srv.FailNext(1, "InternalFailure")
		require.NoError(t, call(retrying(3)), "a single 500 was not retried")
		assert.EqualValues(t, 2, srv.Calls(A))
		log := srv.CallLog()
		require.Len(t, log, 2)
		assert.Equal(t, "InternalFailure", log[0].Code)
		assert.Empty(t, log[1].Code)
	})
	t.Run("FailNext beyond the retry budget", func(t *testing.T) {
		srv.ResetCalls()
		srv.FailNext(5, "ServiceUnavailable")
		err := call(retrying(3))
		wantAPIError(t, err, "ServiceUnavailable", 503)
		assert.EqualValues(t, 3, srv.Calls(A), "attempts")
		assert.Equal(t, 2, srv.PendingFaults())
		srv.ClearFaults()
		require.NoError(t, call(), "after ClearFaults")
	})
	t.Run("non-retryable fault", func(t *testing.T) {
		srv.ResetCalls()
		srv.FailNext(1, "AccessDenied")
		wantAPIError(t, call(retrying(3)), "AccessDenied", 403)
		assert.EqualValues(t, 1, srv.Calls(A), "AccessDenied is not retried")
	})
	t.Run("throttling retried by the SDK", func(t *testing.T) {
		srv.ResetCalls()
		srv.ThrottleNext(2)
		require.NoError(t, call(retrying(3)), "throttling was not retried")
		assert.EqualValues(t, 3, srv.Calls(A))
		srv.ThrottleNext(1)
		wantAPIError(t, call(), "Throttling", 400)
	})
	t.Run("delay", func(t *testing.T) {
		srv.SetDelay(time.Hour)
		defer srv.SetDelay(0)
		cctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer cancel()
		_, err := client().AssumeRoleWithWebIdentity(cctx, &awssts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(roleARN), RoleSessionName: aws.String("faults"), WebIdentityToken: aws.String(tok),
		})
		assert.ErrorIs(t, err, context.DeadlineExceeded, "a delayed answer ends at the caller's deadline")
	})
	t.Run("down", func(t *testing.T) {
		srv.ResetCalls()
		// Warm a kept-alive connection first: down must cut it too.
		c := client(retrying(3))
		require.NoError(t, call(func(o *awssts.Options) { *o = c.Options() }))
		srv.SetDown(true)
		err := call(func(o *awssts.Options) { *o = c.Options() })
		require.Error(t, err)
		var ae smithy.APIError
		assert.False(t, errors.As(err, &ae), "down: %v, want a transport error", err)
		p := stscreds.NewWebIdentityRoleProvider(client(retrying(2)), roleARN, staticToken(tok))
		_, err = p.Retrieve(ctx)
		assert.Error(t, err, "credentials obtained while STS is down")
		assert.EqualValues(t, 1, srv.Calls(A), "only the warm-up is seen")
		srv.SetDown(false)
		require.NoError(t, call(), "back up")
	})
}

type staticToken string

func (s staticToken) GetIdentityToken() ([]byte, error) { return []byte(s), nil }

func TestKeyCacheAndRotation(t *testing.T) {
	ctx := context.Background()
	iss, err := oidc.New(func(o *oidc.Options) { o.Path = "/" })
	require.NoError(t, err)
	defer iss.Close()
	arn := im.AddOIDCProvider(iss.URL(), "sts.amazonaws.com")
	defer im.RemoveOIDCProvider(iss.URL())
	role := "arn:aws:iam::" + account + ":role/keycache"
	require.NoError(t, im.PutRole(role, trustPolicy(arn, iss.HostPath(), sub, "sts.amazonaws.com")))
	local, err := sts.New(reg, im, func(o *sts.Options) { o.AllowHTTPIssuers = true })
	require.NoError(t, err)
	defer local.Close()
	c := awssts.New(awssts.Options{Region: region, BaseEndpoint: aws.String(local.URL()), Retryer: aws.NopRetryer{}})
	as := func(tok string) error {
		_, err := c.AssumeRoleWithWebIdentity(ctx, &awssts.AssumeRoleWithWebIdentityInput{
			RoleArn: aws.String(role), RoleSessionName: aws.String("kc"), WebIdentityToken: aws.String(tok),
		})
		return err
	}
	old := mint(t, iss, sub)
	for range 3 {
		require.NoError(t, as(old))
	}
	assert.EqualValues(t, 2, iss.Fetches(), "3 calls fetch discovery + JWKS once, then use the cache")
	_, err = iss.RotateKey()
	require.NoError(t, err)
	require.NoError(t, as(mint(t, iss, sub)), "token of a rotated-in key")
	assert.EqualValues(t, 4, iss.Fetches(), "an unknown kid did not refetch the keys")
	iss.DropOldKeys()
	local.ForgetKeys()
	var ie *types.InvalidIdentityTokenException
	assert.ErrorAs(t, as(old), &ie, "token of a dropped key")
}

// rawCall posts a form to the stand-in without the SDK.
func rawCall(t *testing.T, method string, form url.Values) (int, string) {
	t.Helper()
	var req *http.Request
	if method == http.MethodGet {
		req, _ = http.NewRequest(method, srv.URL()+"/?"+form.Encode(), nil)
	} else {
		req, _ = http.NewRequest(method, srv.URL()+"/", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type errorResponse struct {
	XMLName xml.Name `xml:"https://sts.amazonaws.com/doc/2011-06-15/ ErrorResponse"`
	Error   struct {
		Type    string
		Code    string
		Message string
	}
	RequestID string `xml:"RequestId"`
}

func TestQueryProtocol(t *testing.T) {
	tok := mint(t, issuer, sub)
	cases := map[string]struct {
		method string
		form   url.Values
		status int
		code   string
		typ    string
	}{
		"missing action": {"POST", url.Values{"Version": {"2011-06-15"}}, 400, "MissingAction", "Sender"},
		"unknown action": {"POST", url.Values{"Action": {"GetSessionToken"}, "Version": {"2011-06-15"}}, 400, "InvalidAction", "Sender"},
		"wrong version":  {"POST", url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2010-01-01"}}, 400, "InvalidAction", "Sender"},
		"missing parameters": {"POST", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}},
			400, "ValidationError", "Sender"},
		"GET works": {"GET", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {roleARN}, "RoleSessionName": {"get"}, "WebIdentityToken": {tok}}, 200, "", ""},
		"PUT refused": {"PUT", url.Values{"Action": {"GetCallerIdentity"}, "Version": {"2011-06-15"}}, 405, "InvalidHttpRequest", "Sender"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			status, body := rawCall(t, c.method, c.form)
			require.Equal(t, c.status, status, "%s", body)
			if c.code == "" {
				assert.Contains(t, body, `<AssumeRoleWithWebIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">`)
				return
			}
			var er errorResponse
			require.NoError(t, xml.Unmarshal([]byte(body), &er), "%s", body)
			assert.Equal(t, c.code, er.Error.Code)
			assert.Equal(t, c.typ, er.Error.Type)
			assert.NotEmpty(t, er.Error.Message)
			assert.NotEmpty(t, er.RequestID)
		})
	}
	// Three missing parameters are three validation errors, and the token
	// never appears in a message.
	_, body := rawCall(t, "POST", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}})
	assert.Contains(t, body, "3 validation errors detected")
	_, body = rawCall(t, "POST", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
		"RoleArn": {roleARN}, "RoleSessionName": {"x"}, "WebIdentityToken": {"abc"}})
	assert.NotContains(t, body, "abc", "the token is in the message")
	assert.Contains(t, body, "webIdentityToken")
}

// FuzzAssumeRoleWithWebIdentityToken: whatever the token, the stand-in
// answers with a client error (never success, never a server error).
func FuzzAssumeRoleWithWebIdentityToken(f *testing.F) {
	valid, err := issuer.Mint(sub)
	require.NoError(f, err)
	parts := strings.Split(valid, ".")
	for _, s := range []string{
		"", "a.b.c", "e30.e30.", parts[0] + "." + parts[1] + ".", parts[0] + ".e30." + parts[2],
		"eyJhbGciOiJub25lIn0." + parts[1] + ".", valid + "x", strings.Repeat(".", 10),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		if tok == valid {
			return
		}
		status, body := rawCall(t, "POST", url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"},
			"RoleArn": {roleARN}, "RoleSessionName": {"fuzz"}, "WebIdentityToken": {tok}})
		assert.True(t, status >= 400 && status < 500, "token %q answered %d: %s", tok, status, body)
	})
}
