package awstest_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/internal/clock"
)

const assumedPrefix = "arn:aws:sts::111122223333:assumed-role/mcp-server-role/"

func envMap(env *awstest.Env) map[string]string {
	m := map[string]string{}
	for _, kv := range env.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	return m
}

// The SDK's own configuration chain, driven only by the environment
// variables an IRSA pod has, assumes the role through the STS stand-in.
func TestEnvChainEndToEnd(t *testing.T) {
	env := awstest.Start(t)
	env.Setenv(t)
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Region != "us-east-1" {
		t.Fatalf("region %q", cfg.Region)
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if creds.Source != stscreds.WebIdentityProviderName || !creds.CanExpire {
		t.Fatalf("credentials from %q (CanExpire %v), want the web identity provider", creds.Source, creds.CanExpire)
	}
	id, err := awssts.NewFromConfig(cfg).GetCallerIdentity(ctx, &awssts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(id.Arn), assumedPrefix) || aws.ToString(id.Account) != env.Account {
		t.Fatalf("identity %s in %s, want the role", aws.ToString(id.Arn), aws.ToString(id.Account))
	}
	if a, g := env.STS.Calls(sts.ActionAssumeRoleWithWebIdentity), env.STS.Calls(sts.ActionGetCallerIdentity); a != 1 || g != 1 {
		t.Fatalf("STS calls: %d AssumeRoleWithWebIdentity, %d GetCallerIdentity; want 1 and 1", a, g)
	}
	if env.Issuer.Fetches() == 0 || !strings.HasPrefix(env.Issuer.URL(), "https://") {
		t.Fatal("STS did not fetch the issuer's keys over https")
	}
	tok, _ := os.ReadFile(env.TokenFile)
	if log := env.STS.CallLog(); log[0].TokenDigest != sts.TokenDigest(string(tok)) || log[0].Subject != env.Subject {
		t.Fatalf("STS saw %+v, want the projected token of %s", log[0], env.Subject)
	}
}

func TestSetenv(t *testing.T) {
	env := awstest.Start(t)
	polluted := map[string]string{
		"AWS_ACCESS_KEY_ID":                      "AKIADEVELOPERKEY0000",
		"AWS_SECRET_ACCESS_KEY":                  "developer-secret",
		"AWS_SESSION_TOKEN":                      "developer-token",
		"AWS_PROFILE":                            "developer",
		"AWS_DEFAULT_REGION":                     "ap-south-1",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "http://169.254.170.23/v1/credentials",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": "/nope",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "/v2/credentials",
		"KUBERNETES_SERVICE_HOST":                "10.0.0.1",
		"AWS_ENDPOINT_URL_S3":                    "http://s3.invalid",
		"AWS_ENDPOINT_URL":                       "http://all.invalid",
		"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS":    "true",
		"AWS_USE_FIPS_ENDPOINT":                  "true",
	}
	for k, v := range polluted {
		t.Setenv(k, v)
	}
	t.Run("inside", func(t *testing.T) {
		env.Setenv(t)
		for k := range polluted {
			if v, ok := os.LookupEnv(k); ok {
				t.Errorf("%s=%q survived Setenv", k, v)
			}
		}
		want := envMap(env)
		for _, k := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_STS", "AWS_REGION",
			"AWS_STS_REGIONAL_ENDPOINTS", "AWS_EC2_METADATA_DISABLED", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
			if want[k] == "" || os.Getenv(k) != want[k] {
				t.Errorf("%s=%q, want %q", k, os.Getenv(k), want[k])
			}
		}
		if want["AWS_ENDPOINT_URL_STS"] != env.STS.URL() || want["AWS_ROLE_ARN"] != env.RoleARN ||
			want["AWS_STS_REGIONAL_ENDPOINTS"] != "regional" || want["AWS_EC2_METADATA_DISABLED"] != "true" {
			t.Errorf("Environ %v", want)
		}
		for _, k := range []string{"AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE"} {
			st, err := os.Stat(want[k])
			if err != nil || st.Size() != 0 || !strings.HasPrefix(want[k], env.Dir) {
				t.Errorf("%s=%s is not an empty file under Dir", k, want[k])
			}
		}
		// With the developer's variables gone, the chain still lands on
		// the web identity, not on the static keys.
		cfg, err := config.LoadDefaultConfig(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		c, err := cfg.Credentials.Retrieve(context.Background())
		if err != nil || c.Source != stscreds.WebIdentityProviderName {
			t.Fatalf("credentials from %q: %v", c.Source, err)
		}
	})
	for k, v := range polluted {
		if os.Getenv(k) != v {
			t.Errorf("%s not restored after the test", k)
		}
	}
}

// Env.Config does not touch the process environment, so parallel tests can
// each use one.
func TestConfigInParallel(t *testing.T) {
	env := awstest.Start(t)
	for _, name := range []string{"a", "b", "c"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			cfg, err := env.Config(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			id, err := awssts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(aws.ToString(id.Arn), assumedPrefix) {
				t.Fatalf("identity %s", aws.ToString(id.Arn))
			}
		})
	}
}

func TestConcurrentRetrievalsOneSTSCall(t *testing.T) {
	env := awstest.Start(t)
	cfg, err := env.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	keys := make([]string, 200)
	errs := make([]error, 200)
	for i := range keys {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := cfg.Credentials.Retrieve(context.Background())
			keys[i], errs[i] = c.AccessKeyID, err
		}()
	}
	wg.Wait()
	for i := range keys {
		if errs[i] != nil || keys[i] != keys[0] {
			t.Fatalf("retrieval %d: %q, %v", i, keys[i], errs[i])
		}
	}
	if got := env.STS.Calls(sts.ActionAssumeRoleWithWebIdentity); got != 1 {
		t.Fatalf("%d STS calls for 200 retrievals, want 1", got)
	}
}

func TestRotateToken(t *testing.T) {
	env := awstest.Start(t)
	cfg, err := env.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	first, _ := os.ReadFile(env.TokenFile)
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	if err := env.RotateToken(); err != nil {
		t.Fatal(err)
	}
	second, _ := os.ReadFile(env.TokenFile)
	if string(first) == string(second) {
		t.Fatal("RotateToken left the token file unchanged")
	}
	cfg.Credentials.(*aws.CredentialsCache).Invalidate()
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	log := env.STS.CallLog()
	if len(log) != 2 || log[0].TokenDigest != sts.TokenDigest(string(first)) || log[1].TokenDigest != sts.TokenDigest(string(second)) {
		t.Fatal("the refresh after rotation did not present the new token")
	}
}

// With a fake clock the projected token expires like a real one: STS
// answers ExpiredTokenException until the kubelet (RotateToken) replaces it.
func TestTokenExpiryWithFakeClock(t *testing.T) {
	clk := clock.NewFake(time.Now())
	env := awstest.Start(t, func(o *awstest.Options) { o.Clock = clk })
	cfg, err := env.Config(context.Background(), config.WithRetryMaxAttempts(1))
	if err != nil {
		t.Fatal(err)
	}
	cache := cfg.Credentials.(*aws.CredentialsCache)
	ctx := context.Background()
	if _, err := cache.Retrieve(ctx); err != nil {
		t.Fatal(err)
	}
	clk.Advance(25 * time.Hour)
	cache.Invalidate()
	_, err = cache.Retrieve(ctx)
	var expired *types.ExpiredTokenException
	if !errors.As(err, &expired) {
		t.Fatalf("expired projected token: %v, want ExpiredTokenException", err)
	}
	if err := env.RotateToken(); err != nil {
		t.Fatal(err)
	}
	c, err := cache.Retrieve(ctx)
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if want := clk.Now().Add(time.Hour).Truncate(time.Second); !c.Expires.Equal(want) {
		t.Fatalf("credentials expire %v, want %v (fake clock + 1h)", c.Expires, want)
	}
}

func TestOptions(t *testing.T) {
	env := awstest.Start(t, func(o *awstest.Options) {
		o.Region = "eu-west-1"
		o.Namespace = "payments"
		o.ServiceAccount = "api"
		o.RoleName = "payments-api"
		o.CredentialTTL = 15 * time.Minute
	})
	if env.RoleARN != "arn:aws:iam::111122223333:role/payments-api" || env.Subject != "system:serviceaccount:payments:api" ||
		env.Region != "eu-west-1" || env.STS.Region() != "eu-west-1" || envMap(env)["AWS_REGION"] != "eu-west-1" {
		t.Fatalf("env %+v", env)
	}
	if !strings.HasPrefix(env.ProviderARN, "arn:aws:iam::111122223333:oidc-provider/"+env.Issuer.HostPath()) {
		t.Fatalf("provider ARN %s", env.ProviderARN)
	}
	cfg, err := env.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	c, err := cfg.Credentials.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if d := time.Until(c.Expires); d > 15*time.Minute || d < 14*time.Minute {
		t.Fatalf("credentials expire in %v, want the 15-minute TTL", d)
	}
	id, err := awssts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(aws.ToString(id.Arn), "arn:aws:sts::111122223333:assumed-role/payments-api/") {
		t.Fatalf("identity %s", aws.ToString(id.Arn))
	}
}

func TestTrustPolicy(t *testing.T) {
	env := awstest.Start(t)
	doc, err := iam.ParseDocument(awstest.TrustPolicy(env.ProviderARN, env.Issuer.HostPath(), env.Subject, "sts.amazonaws.com"))
	if err != nil {
		t.Fatal(err)
	}
	st := doc.Statement[0]
	if st.Effect != "Allow" || st.Principal.Federated[0] != env.ProviderARN || st.Action[0] != "sts:AssumeRoleWithWebIdentity" ||
		st.Condition["StringEquals"][env.Issuer.HostPath()+":sub"][0] != env.Subject ||
		st.Condition["StringEquals"][env.Issuer.HostPath()+":aud"][0] != "sts.amazonaws.com" {
		t.Fatalf("trust policy %+v", doc)
	}
	for _, c := range []struct {
		sub, aud string
		allowed  bool
	}{
		{env.Subject, "sts.amazonaws.com", true},
		{oidc.ServiceAccountSubject("mcp", "other"), "sts.amazonaws.com", false},
		{env.Subject, "other", false},
	} {
		exists, allowed := env.IAM.AssumeWithWebIdentity(env.RoleARN, env.ProviderARN, env.Issuer.HostPath(), c.sub, c.aud)
		if !exists || allowed != c.allowed {
			t.Errorf("sub %s aud %s: exists %v allowed %v", c.sub, c.aud, exists, allowed)
		}
	}
	// Over the wire: another service account of the same cluster is refused.
	tok, err := env.Issuer.Mint(oidc.ServiceAccountSubject("mcp", "other"))
	if err != nil {
		t.Fatal(err)
	}
	client := awssts.New(awssts.Options{Region: env.Region, BaseEndpoint: aws.String(env.STS.URL()), Retryer: aws.NopRetryer{}})
	_, err = client.AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(env.RoleARN), RoleSessionName: aws.String("other"), WebIdentityToken: aws.String(tok),
	})
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" {
		t.Fatalf("other service account: %v, want AccessDenied", err)
	}
}

func TestPoliciesAndSessionCredentials(t *testing.T) {
	get := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::bucket/*"}]}`)
	put := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:PutObject","Resource":"arn:aws:s3:::bucket/*"}]}`)
	env := awstest.Start(t, func(o *awstest.Options) { o.RolePolicies = [][]byte{get} })
	if !env.IAM.Authorize(env.RoleARN, "s3:GetObject", "arn:aws:s3:::bucket/k") || env.IAM.Authorize(env.RoleARN, "s3:PutObject", "arn:aws:s3:::bucket/k") {
		t.Fatal("RolePolicies not applied as given")
	}
	if err := env.AttachPolicy(put); err != nil {
		t.Fatal(err)
	}
	if !env.IAM.Authorize(env.RoleARN, "s3:PutObject", "arn:aws:s3:::bucket/k") {
		t.Fatal("AttachPolicy did not apply")
	}
	if err := env.AttachPolicy([]byte(`{"Version":"2008-10-17","Statement":[]}`)); err == nil {
		t.Fatal("malformed policy attached")
	}

	p, err := env.SessionCredentials(10 * time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	c, err := p.Retrieve(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !c.CanExpire || time.Until(c.Expires) > 10*time.Minute || time.Until(c.Expires) < 9*time.Minute {
		t.Fatalf("session credentials expire %v", c.Expires)
	}
	if issued, ok := env.Registry.Lookup(c.AccessKeyID); !ok || issued.RoleARN != env.RoleARN {
		t.Fatal("session credentials not in the registry")
	}
	id, err := awssts.New(awssts.Options{Region: env.Region, BaseEndpoint: aws.String(env.STS.URL()), Credentials: p}).
		GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(id.Arn) != assumedPrefix+"awstest-session" {
		t.Fatalf("identity %s", aws.ToString(id.Arn))
	}
	if env.STS.Calls(sts.ActionAssumeRoleWithWebIdentity) != 0 {
		t.Fatal("SessionCredentials went through STS")
	}
}

func TestStartCleansUp(t *testing.T) {
	var env *awstest.Env
	t.Run("env", func(t *testing.T) { env = awstest.Start(t) })
	if _, err := os.Stat(env.Dir); !os.IsNotExist(err) {
		t.Fatalf("Dir %s still exists: %v", env.Dir, err)
	}
	for _, u := range []string{env.STS.URL(), env.Issuer.URL() + "/keys"} {
		if resp, err := env.Issuer.Client().Get(u); err == nil {
			resp.Body.Close()
			t.Fatalf("%s still serves", u)
		}
	}
	if _, err := awstest.New(func(o *awstest.Options) { o.RolePolicies = [][]byte{[]byte("{")} }); err == nil ||
		!strings.HasPrefix(err.Error(), "awstest: ") {
		t.Fatalf("bad policy: %v", err)
	}
}
