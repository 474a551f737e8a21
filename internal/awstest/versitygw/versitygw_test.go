package versitygw_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/versitygw"
	"github.com/irsakit/irsakit/irsa"
)

var (
	env    *versitygw.Env
	envErr error
)

func TestMain(m *testing.M) {
	os.Exit(versitygw.Main(m, func(e *versitygw.Env, err error) { env, envErr = e, err }))
}

const bucket = "harness"

var createBucket = sync.OnceValue(func() error { return env.CreateBucket(context.Background(), bucket) })

func stsClient() *sts.Client {
	return sts.New(sts.Options{
		Region:       env.Region,
		BaseEndpoint: aws.String(env.IAMEndpoint),
	})
}

func assume(ctx context.Context, roleARN, token string) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return stsClient().AssumeRoleWithWebIdentity(ctx, &sts.AssumeRoleWithWebIdentityInput{
		RoleArn:          aws.String(roleARN),
		RoleSessionName:  aws.String("harness-test"),
		WebIdentityToken: aws.String(token),
	})
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestWebIdentity proves that versitygw assumes a role only for a token
// that AWS would accept: signed by the registered issuer, with the trusted
// subject and audience, not expired.
func TestWebIdentity(t *testing.T) {
	versitygw.Need(t, envErr)
	ctx := context.Background()
	sub := versitygw.Subject("apps", "reader")
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::` + bucket + `/*"}]}`
	roleARN, err := env.CreateRole(ctx, "harness-reader", sub, map[string]string{"read": policy})
	if err != nil {
		t.Fatal(err)
	}
	if want := "arn:aws:iam::" + versitygw.Account + ":role/harness-reader"; roleARN != want {
		t.Fatalf("role ARN = %q, want %q", roleARN, want)
	}
	tok := func(t *testing.T, sub string, optFns ...func(*oidc.Claims)) string {
		s, err := env.Issuer.Mint(sub, optFns...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}

	t.Run("accepted", func(t *testing.T) {
		out, err := assume(ctx, roleARN, tok(t, sub))
		if err != nil {
			t.Fatal(err)
		}
		c := out.Credentials
		if aws.ToString(c.AccessKeyId) == "" || aws.ToString(c.SessionToken) == "" || c.Expiration == nil {
			t.Fatalf("incomplete credentials: key %q token set %v expiry %v", aws.ToString(c.AccessKeyId), c.SessionToken != nil, c.Expiration)
		}
		if got := aws.ToString(out.AssumedRoleUser.Arn); got != "arn:aws:sts::"+versitygw.Account+":assumed-role/harness-reader/harness-test" {
			t.Errorf("assumed role ARN = %q", got)
		}
		if got := aws.ToString(out.SubjectFromWebIdentityToken); got != sub {
			t.Errorf("subject = %q, want %q", got, sub)
		}
	})

	for _, tc := range []struct {
		name     string
		roleARN  string
		token    string
		wantCode string
	}{
		// AWS answers a trust-policy condition mismatch with AccessDenied;
		// versitygw v1.8.0 with InvalidIdentityToken.
		{"subject not trusted", roleARN, tok(t, versitygw.Subject("apps", "other")), "InvalidIdentityToken"},
		{"wrong audience", roleARN, tok(t, sub, oidc.WithAudience("vault")), "InvalidIdentityToken"},
		{"expired", roleARN, tok(t, sub, oidc.Expired(), func(c *oidc.Claims) {
			c.Expiry = c.Expiry.Add(-time.Hour) // beyond STS's 5-minute leeway
		}), "ExpiredTokenException"},
		{"foreign signing key", roleARN, tok(t, sub, oidc.SignedByForeignKey()), "InvalidIdentityToken"},
		{"unsigned", roleARN, tok(t, sub, oidc.AlgNone()), "InvalidIdentityToken"},
		{"HMAC algorithm confusion", roleARN, tok(t, sub, oidc.AlgHS256()), "InvalidIdentityToken"},
		{"unknown key id", roleARN, tok(t, sub, oidc.WithKeyID("nope"), oidc.SignedByForeignKey()), "InvalidIdentityToken"},
		{"unregistered issuer", roleARN, tok(t, sub, oidc.WithIssuer("https://203.0.113.9")), "InvalidIdentityToken"},
		{"no such role", "arn:aws:iam::" + versitygw.Account + ":role/missing", tok(t, sub), "AccessDenied"},
		{"other account", "arn:aws:iam::111122223333:role/harness-reader", tok(t, sub), "AccessDenied"},
		{"not a JWT", roleARN, "not-a-jwt", "InvalidIdentityToken"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := assume(ctx, tc.roleARN, tc.token)
			if got := apiCode(err); got != tc.wantCode {
				t.Fatalf("AssumeRoleWithWebIdentity error = %v (code %q), want code %q", err, got, tc.wantCode)
			}
		})
	}
}

// TestRolePolicyEnforced proves S3 requests signed with role-session
// credentials are authorized by the role's policy, and that bad signatures
// and unknown keys are rejected.
func TestRolePolicyEnforced(t *testing.T) {
	versitygw.Need(t, envErr)
	if err := createBucket(); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sub := versitygw.Subject("apps", "writer")
	policy := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["s3:GetObject","s3:PutObject"],"Resource":"arn:aws:s3:::` + bucket + `/allowed/*"}]}`
	roleARN, err := env.CreateRole(ctx, "harness-writer", sub, map[string]string{"rw": policy})
	if err != nil {
		t.Fatal(err)
	}

	// The SDK's own web-identity chain, as a pod runs it.
	env.Setenv(t, roleARN, sub)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c := s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
	put := func(c *s3.Client, key string) error {
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader("hello")})
		return err
	}
	if err := put(c, "allowed/a.txt"); err != nil {
		t.Fatalf("put inside the policy: %v", err)
	}
	out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("allowed/a.txt")})
	if err != nil {
		t.Fatalf("get inside the policy: %v", err)
	}
	b, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if !bytes.Equal(b, []byte("hello")) {
		t.Fatalf("got %q", b)
	}
	if err := put(c, "denied/a.txt"); apiCode(err) != "AccessDenied" {
		t.Fatalf("put outside the policy: %v, want AccessDenied", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucket), Key: aws.String("allowed/a.txt")}); apiCode(err) != "AccessDenied" {
		t.Fatalf("delete not granted: %v, want AccessDenied", err)
	}

	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bad := creds
	bad.SecretAccessKey = "wrong" + creds.SecretAccessKey[5:]
	if err := put(env.S3(credentials.StaticCredentialsProvider{Value: bad}), "allowed/b.txt"); apiCode(err) != "SignatureDoesNotMatch" {
		t.Fatalf("wrong secret: %v, want SignatureDoesNotMatch", err)
	}
	unknown := aws.Credentials{AccessKeyID: "AKIAUNKNOWNUNKNOWN00", SecretAccessKey: "x"}
	if err := put(env.S3(credentials.StaticCredentialsProvider{Value: unknown}), "allowed/b.txt"); apiCode(err) != "InvalidAccessKeyId" {
		t.Fatalf("unknown key: %v, want InvalidAccessKeyId", err)
	}
	noToken := creds
	noToken.SessionToken = ""
	if err := put(env.S3(credentials.StaticCredentialsProvider{Value: noToken}), "allowed/b.txt"); err == nil {
		t.Fatal("session credentials without their token were accepted")
	}
}

// TestIRSATrustPolicy loads the trust policy irsa.TrustPolicy generates
// into versitygw's IAM: it admits exactly the service account it names.
func TestIRSATrustPolicy(t *testing.T) {
	versitygw.Need(t, envErr)
	ctx := context.Background()
	trust, err := irsa.TrustPolicy(env.ProviderARN, "payments", "api")
	if err != nil {
		t.Fatal(err)
	}
	roleARN, err := env.CreateRoleWithTrust(ctx, "harness-irsa-trust", string(trust), nil)
	if err != nil {
		t.Fatalf("%v\n%s", err, trust)
	}
	for _, tc := range []struct {
		sub  string
		want bool
	}{
		{versitygw.Subject("payments", "api"), true},
		{versitygw.Subject("payments", "api2"), false},
		{versitygw.Subject("payment", "api"), false},
		{versitygw.Subject("other", "api"), false},
	} {
		tok, err := env.Issuer.Mint(tc.sub)
		if err != nil {
			t.Fatal(err)
		}
		_, err = assume(ctx, roleARN, tok)
		if (err == nil) != tc.want {
			t.Errorf("%s: err = %v, want admitted %v\n%s", tc.sub, err, tc.want, trust)
		}
	}
}

// TestFind: a binary that is not versitygw v1.8.0 is refused with the
// install step in the message.
func TestFind(t *testing.T) {
	t.Setenv(versitygw.EnvBin, "/bin/true")
	_, err := versitygw.Find()
	if !errors.Is(err, versitygw.ErrNotInstalled) || !strings.Contains(err.Error(), "tools/install-versitygw.sh") {
		t.Fatalf("Find with /bin/true = %v", err)
	}
}
