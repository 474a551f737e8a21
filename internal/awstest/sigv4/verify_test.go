package sigv4_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"

	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

const role = "arn:aws:iam::111122223333:role/app"

func setup(t *testing.T) (*sigv4.Registry, *clock.Fake, sigv4.Credentials) {
	t.Helper()
	clk := clock.NewFake(time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC))
	reg := sigv4.NewRegistry(clk)
	c, err := reg.IssueSession(role, "sess", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return reg, clk, c
}

func provider(c sigv4.Credentials) aws.CredentialsProvider {
	return credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
}

func rdsToken(t *testing.T, clk clock.Clock, c aws.CredentialsProvider, endpoint, region, user string) *url.URL {
	t.Helper()
	tok, err := auth.BuildAuthToken(context.Background(), endpoint, region, user, c, func(o *auth.BuildAuthTokenOptions) {})
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse("https://" + tok)
	if err != nil {
		t.Fatal(err)
	}
	_ = clk
	return u
}

// The SDK stamps tokens with the real time; the verifier must use that time too.
func TestPresignedRDSToken(t *testing.T) {
	reg := sigv4.NewRegistry(nil)
	c, err := reg.IssueSession(role, "s", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	opts := sigv4.PresignOptions{Service: "rds-db", Region: "us-east-1", Host: "db.example:5432", MaxExpires: 15 * time.Minute}
	u := rdsToken(t, nil, provider(c), "db.example:5432", "us-east-1", "alice")
	res, err := reg.VerifyPresigned(u, opts)
	if err != nil {
		t.Fatalf("valid token rejected: %v", err)
	}
	if res.Query.Get("DBUser") != "alice" || res.Query.Get("Action") != "connect" || res.Credentials.RoleARN != role {
		t.Fatalf("unexpected result %+v", res)
	}

	bad := map[string]struct {
		mutate func() *url.URL
		opts   sigv4.PresignOptions
		code   string
	}{
		"other host": {func() *url.URL { return u }, withHost(opts, "db.example:5433"), "SignatureDoesNotMatch"},
		"other region": {func() *url.URL {
			return rdsToken(t, nil, provider(c), "db.example:5432", "eu-west-1", "alice")
		}, opts, "SignatureDoesNotMatch"},
		"other service": {func() *url.URL { return u }, withService(opts, "elasticache"), "SignatureDoesNotMatch"},
		"tampered user": {func() *url.URL {
			v := *u
			v.RawQuery = strings.Replace(u.RawQuery, "DBUser=alice", "DBUser=admin", 1)
			return &v
		}, opts, "SignatureDoesNotMatch"},
		"tampered signature": {func() *url.URL {
			v := *u
			q := v.Query()
			s := q.Get("X-Amz-Signature")
			q.Set("X-Amz-Signature", strings.Repeat("0", len(s)))
			v.RawQuery = q.Encode()
			return &v
		}, opts, "SignatureDoesNotMatch"},
		"unknown key": {func() *url.URL {
			return rdsToken(t, nil, credentials.NewStaticCredentialsProvider("ASIAUNKNOWNUNKNOWN00", "x", "y"), "db.example:5432", "us-east-1", "alice")
		}, opts, "InvalidClientTokenId"},
		"no session token": {func() *url.URL {
			return rdsToken(t, nil, credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, ""), "db.example:5432", "us-east-1", "alice")
		}, opts, "InvalidClientTokenId"},
		"wrong secret": {func() *url.URL {
			return rdsToken(t, nil, credentials.NewStaticCredentialsProvider(c.AccessKeyID, "wrongsecret", c.SessionToken), "db.example:5432", "us-east-1", "alice")
		}, opts, "SignatureDoesNotMatch"},
		"expires too long": {func() *url.URL { return u }, withMax(opts, time.Minute), "AuthorizationQueryParametersError"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			_, err := reg.VerifyPresigned(tc.mutate(), tc.opts)
			assertCode(t, err, tc.code)
		})
	}
}

func withHost(o sigv4.PresignOptions, h string) sigv4.PresignOptions    { o.Host = h; return o }
func withService(o sigv4.PresignOptions, s string) sigv4.PresignOptions { o.Service = s; return o }
func withMax(o sigv4.PresignOptions, d time.Duration) sigv4.PresignOptions {
	o.MaxExpires = d
	return o
}

func assertCode(t *testing.T, err error, code string) {
	t.Helper()
	e, ok := err.(*sigv4.Error)
	if !ok {
		t.Fatalf("want *sigv4.Error with code %s, got %v", code, err)
	}
	if e.Code != code {
		t.Fatalf("want code %s, got %v", code, e)
	}
}

func TestPresignedExpiry(t *testing.T) {
	reg, clk, c := setup(t)
	signer := v4.NewSigner()
	req, _ := http.NewRequest(http.MethodGet, "http://cache-1/?Action=connect&User=u&X-Amz-Expires=900", nil)
	creds, _ := provider(c).Retrieve(context.Background())
	signed, _, err := signer.PresignHTTP(context.Background(), creds, req, sigv4.EmptySHA256, "elasticache", "us-east-1", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	o := sigv4.PresignOptions{Service: "elasticache", Region: "us-east-1", Host: "cache-1", MaxExpires: 15 * time.Minute}
	if _, err := reg.VerifyPresigned(u, o); err != nil {
		t.Fatalf("valid: %v", err)
	}
	clk.Advance(899 * time.Second)
	if _, err := reg.VerifyPresigned(u, o); err != nil {
		t.Fatalf("valid at 899 s: %v", err)
	}
	clk.Advance(time.Second)
	_, err = reg.VerifyPresigned(u, o)
	assertCode(t, err, "AccessDenied")
}

func TestCredentialsExpiry(t *testing.T) {
	reg, clk, c := setup(t)
	clk.Advance(59 * time.Minute)
	signer := v4.NewSigner()
	req, _ := http.NewRequest(http.MethodGet, "http://cache-1/?Action=connect&User=u&X-Amz-Expires=900", nil)
	creds, _ := provider(c).Retrieve(context.Background())
	signed, _, _ := signer.PresignHTTP(context.Background(), creds, req, sigv4.EmptySHA256, "elasticache", "us-east-1", clk.Now())
	u, _ := url.Parse(signed)
	o := sigv4.PresignOptions{Service: "elasticache", Region: "us-east-1", Host: "cache-1", MaxExpires: 15 * time.Minute}
	if _, err := reg.VerifyPresigned(u, o); err != nil {
		t.Fatalf("valid: %v", err)
	}
	clk.Advance(time.Minute)
	_, err := reg.VerifyPresigned(u, o)
	assertCode(t, err, "ExpiredToken")
}

func TestHeaderSigned(t *testing.T) {
	reg, clk, c := setup(t)
	creds, _ := provider(c).Retrieve(context.Background())
	body := "Action=GetCallerIdentity&Version=2011-06-15"
	mk := func(at time.Time, region string, cr aws.Credentials) *http.Request {
		req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9/", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if err := v4.NewSigner().SignHTTP(context.Background(), cr, req, sha(body), "sts", region, at); err != nil {
			t.Fatal(err)
		}
		return req
	}
	o := sigv4.HeaderOptions{Service: "sts", Region: "us-east-1"}
	if _, err := reg.VerifyRequest(mk(clk.Now(), "us-east-1", creds), []byte(body), o); err != nil {
		t.Fatalf("valid: %v", err)
	}
	_, err := reg.VerifyRequest(mk(clk.Now(), "us-east-1", creds), []byte(body+"&x=1"), o)
	assertCode(t, err, "SignatureDoesNotMatch")
	_, err = reg.VerifyRequest(mk(clk.Now(), "us-west-2", creds), []byte(body), o)
	assertCode(t, err, "SignatureDoesNotMatch")
	_, err = reg.VerifyRequest(mk(clk.Now().Add(-16*time.Minute), "us-east-1", creds), []byte(body), o)
	assertCode(t, err, "SignatureDoesNotMatch")
	other := creds
	other.SessionToken = "forged"
	_, err = reg.VerifyRequest(mk(clk.Now(), "us-east-1", other), []byte(body), o)
	assertCode(t, err, "InvalidClientTokenId")
	req, _ := http.NewRequest(http.MethodPost, "http://127.0.0.1:9/", strings.NewReader(body))
	_, err = reg.VerifyRequest(req, []byte(body), o)
	assertCode(t, err, "MissingAuthenticationToken")
	reg.Revoke(c.AccessKeyID)
	_, err = reg.VerifyRequest(mk(clk.Now(), "us-east-1", creds), []byte(body), o)
	assertCode(t, err, "InvalidClientTokenId")
}

func sha(s string) string {
	return sigv4SHA([]byte(s))
}

// A presigned S3 PUT may sign headers besides host; they are checked against
// the request's headers, and tokens (no headers given) may sign host only.
func TestPresignedSignedHeaders(t *testing.T) {
	reg, clk, c := setup(t)
	creds, _ := provider(c).Retrieve(context.Background())
	req, _ := http.NewRequest(http.MethodPut, "http://127.0.0.1:9000/bucket/key?X-Amz-Expires=300", nil)
	req.Header.Set("Content-Type", "text/plain")
	signed, _, err := v4.NewSigner().PresignHTTP(context.Background(), creds, req, sigv4.UnsignedPayload, "s3", "us-east-1", clk.Now())
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(signed)
	if !strings.Contains(u.Query().Get("X-Amz-SignedHeaders"), "content-type") {
		t.Skipf("signer did not sign content-type: %s", u.Query().Get("X-Amz-SignedHeaders"))
	}
	o := sigv4.PresignOptions{Method: http.MethodPut, Service: "s3", Region: "us-east-1", PayloadHash: sigv4.UnsignedPayload, S3: true,
		Header: http.Header{"Content-Type": {"text/plain"}}}
	if _, err := reg.VerifyPresigned(u, o); err != nil {
		t.Fatalf("valid: %v", err)
	}
	o.Header = http.Header{"Content-Type": {"text/html"}}
	_, err = reg.VerifyPresigned(u, o)
	assertCode(t, err, "SignatureDoesNotMatch")
	o.Header = http.Header{}
	_, err = reg.VerifyPresigned(u, o)
	assertCode(t, err, "SignatureDoesNotMatch")
	o.Header = nil
	_, err = reg.VerifyPresigned(u, o)
	assertCode(t, err, "AuthorizationQueryParametersError")
}
