package irsa_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/irsa"
)

const assumeOp = "AssumeRoleWithWebIdentity"

func logger() (*slog.Logger, *bytes.Buffer) {
	var buf bytes.Buffer
	var mu sync.Mutex
	return slog.New(slog.NewJSONHandler(lockedWriter{&buf, &mu}, nil)), &buf
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func load(t *testing.T, optFns ...func(*irsa.Options)) (*irsa.Session, *bytes.Buffer) {
	t.Helper()
	l, buf := logger()
	sess, err := irsa.Load(context.Background(), append([]func(*irsa.Options){func(o *irsa.Options) { o.Logger = l }}, optFns...)...)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return sess, buf
}

// The standard IRSA environment (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
// AWS_ENDPOINT_URL_STS) reaches the STS stand-in through the SDK's own
// endpoint resolution, and the caller is the assumed role.
func TestLoadWebIdentityEndToEnd(t *testing.T) {
	env := awstest.Start(t)
	env.Setenv(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	sess, logs := load(t)
	if sess.Mode() != irsa.WebIdentity || sess.RoleARN() != env.RoleARN || sess.Region() != env.Region {
		t.Fatalf("session: mode %s role %s region %s", sess.Mode(), sess.RoleARN(), sess.Region())
	}
	if env.STS.Calls(assumeOp) != 0 {
		t.Fatal("Load called STS; credentials must be fetched on first use")
	}
	id, err := sess.Identity(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(id.Arn, "arn:aws:sts::"+env.Account+":assumed-role/"+strings.TrimPrefix(env.RoleARN[strings.LastIndex(env.RoleARN, "/"):], "/")+"/") || id.Account != env.Account {
		t.Fatalf("identity %+v is not the assumed role %s", id, env.RoleARN)
	}
	line := logs.String()
	for _, want := range []string{`"msg":"Using IRSA authentication for AWS services"`, `"mode":"web-identity"`, `"role_arn":"` + env.RoleARN, `"region":"` + env.Region} {
		if !strings.Contains(line, want) {
			t.Errorf("log lacks %s:\n%s", want, line)
		}
	}
	if strings.Count(line, "Using IRSA") != 1 {
		t.Errorf("logged %d times", strings.Count(line, "Using IRSA"))
	}
	creds, _ := sess.Credentials().Retrieve(context.Background())
	for _, secret := range []string{creds.SecretAccessKey, creds.SessionToken} {
		if strings.Contains(line, secret) {
			t.Fatal("log contains a secret")
		}
	}
	tok, _ := os.ReadFile(env.TokenFile)
	if strings.Contains(line, strings.TrimSpace(string(tok))[:40]) {
		t.Fatal("log contains the token")
	}
}

// Exactly one aws.CredentialsCache: 200 concurrent retrievals make one STS
// call, and so do clients built from copies of the config.
func TestConcurrentRetrievalOneSTSCall(t *testing.T) {
	env := awstest.Start(t)
	env.Setenv(t)
	sess, _ := load(t)
	if _, ok := sess.Credentials().(*aws.CredentialsCache); !ok {
		t.Fatalf("credentials are %T, want *aws.CredentialsCache", sess.Credentials())
	}
	env.STS.SetDelay(50 * time.Millisecond) // widen the race window
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			cfg := sess.Config()
			if _, err := cfg.Credentials.Retrieve(context.Background()); err != nil {
				errs <- err
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if n := env.STS.Calls(assumeOp); n != 1 {
		t.Fatalf("STS AssumeRoleWithWebIdentity calls = %d, want 1", n)
	}
}

// When the kubelet rotates the token file, the next refresh presents the
// new token.
func TestTokenRotationPresentedOnRefresh(t *testing.T) {
	env := awstest.Start(t, func(o *awstest.Options) { o.CredentialTTL = 4 * time.Second })
	env.Setenv(t)
	sess, _ := load(t)
	ctx := context.Background()
	first, err := sess.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := os.ReadFile(env.TokenFile)
	if err := env.RotateToken(); err != nil {
		t.Fatal(err)
	}
	rotated, _ := os.ReadFile(env.TokenFile)
	if bytes.Equal(old, rotated) {
		t.Fatal("rotation wrote the same token")
	}
	// Credentials live 4 s; the window is capped at half of that.
	deadline := time.Now().Add(10 * time.Second)
	var next aws.Credentials
	for {
		next, err = sess.Credentials().Retrieve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if next.AccessKeyID != first.AccessKeyID || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if next.AccessKeyID == first.AccessKeyID {
		t.Fatal("credentials never refreshed")
	}
	log := env.STS.CallLog()
	var digests []string
	for _, c := range log {
		if c.Action == assumeOp && c.Code == "" {
			digests = append(digests, c.TokenDigest)
		}
	}
	if len(digests) < 2 || digests[0] != sts.TokenDigest(strings.TrimSpace(string(old))) && digests[0] != sts.TokenDigest(string(old)) {
		t.Fatalf("first call did not present the original token: %v", digests)
	}
	last := digests[len(digests)-1]
	if last != sts.TokenDigest(strings.TrimSpace(string(rotated))) && last != sts.TokenDigest(string(rotated)) {
		t.Fatal("refresh did not present the rotated token")
	}
}

// STS down during refresh: the cached credentials are served until they
// really expire, then a clear error.
func TestSTSDownServesCachedUntilExpiry(t *testing.T) {
	env := awstest.Start(t, func(o *awstest.Options) { o.CredentialTTL = 8 * time.Second })
	env.Setenv(t)
	// One attempt per refresh keeps each failed refresh short.
	sess, logs := load(t, func(o *irsa.Options) {
		o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(1))
	})
	ctx := context.Background()
	first, err := sess.Credentials().Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	issued, ok := env.Registry.Lookup(first.AccessKeyID)
	if !ok {
		t.Fatal("credentials not issued by the stand-in")
	}
	realExpiry := issued.Expires // first.Expires is moved earlier by the cache's window
	env.STS.SetDown(true)
	var served int
	for {
		c, err := sess.Credentials().Retrieve(ctx)
		if err != nil {
			if !errors.Is(err, irsa.ErrCredentialsExpired) {
				t.Fatalf("after expiry: got %v, want ErrCredentialsExpired", err)
			}
			if time.Now().Add(2 * time.Second).Before(realExpiry) {
				t.Fatalf("error at %s, well before the credentials' expiry %s", time.Now(), realExpiry)
			}
			break
		}
		if c.AccessKeyID != first.AccessKeyID {
			t.Fatal("new credentials while STS is down")
		}
		if !time.Now().Before(realExpiry) {
			t.Fatalf("served credentials that expired at %s", realExpiry)
		}
		served++
		time.Sleep(200 * time.Millisecond)
	}
	if served < 10 {
		t.Fatalf("cached credentials served only %d times", served)
	}
	if !strings.Contains(logs.String(), "serving cached credentials") {
		t.Error("the refresh failure was not logged")
	}
	env.STS.SetDown(false)
	if _, err := sess.Credentials().Retrieve(ctx); err != nil {
		t.Fatalf("after STS recovers: %v", err)
	}
}

// Each STS refusal comes back as an irsa error naming the cause.
func TestSTSRefusalsExplained(t *testing.T) {
	cases := []struct {
		name   string
		setup  func(t *testing.T, env *awstest.Env)
		reason error
		says   string
	}{
		{"sub not in trust policy", func(t *testing.T, env *awstest.Env) {
			write(t, env, oidc.ServiceAccountSubject("mcp", "intruder"))
		}, irsa.ErrTrustPolicy, "trust policy"},
		{"provider not registered", func(t *testing.T, env *awstest.Env) {
			env.IAM.RemoveOIDCProvider(env.Issuer.URL())
		}, irsa.ErrOIDCProvider, "associate-iam-oidc-provider"},
		{"foreign key", func(t *testing.T, env *awstest.Env) {
			write(t, env, env.Subject, oidc.SignedByForeignKey())
		}, irsa.ErrInvalidToken, "InvalidIdentityToken"},
		{"sts failing", func(t *testing.T, env *awstest.Env) {
			env.STS.FailNext(100, "InternalFailure")
		}, irsa.ErrSTSUnavailable, "InternalFailure"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := awstest.Start(t)
			env.Setenv(t)
			c.setup(t, env)
			sess, _ := load(t, func(o *irsa.Options) {
				o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(1))
			})
			_, err := sess.Identity(context.Background())
			var ce *irsa.CredentialError
			if !errors.Is(err, c.reason) || !errors.As(err, &ce) || !strings.Contains(err.Error(), c.says) {
				t.Fatalf("got %v\nwant %v mentioning %q", err, c.reason, c.says)
			}
			if ce.RoleARN != env.RoleARN {
				t.Fatalf("error names role %q", ce.RoleARN)
			}
			if errors.Is(err, irsa.ErrTrustPolicy) && !strings.Contains(err.Error(), env.ProviderARN) {
				t.Fatalf("trust-policy fix does not name the provider %s: %v", env.ProviderARN, err)
			}
		})
	}
}

func write(t *testing.T, env *awstest.Env, sub string, opts ...func(*oidc.Claims)) {
	t.Helper()
	if _, err := env.Issuer.WriteTokenFile(env.TokenFile, sub, opts...); err != nil {
		t.Fatal(err)
	}
}

// Bad token files are caught by Load itself, before any STS call.
func TestLoadTokenFileProblems(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, env *awstest.Env)
		want  error
	}{
		{"wrong audience", func(t *testing.T, env *awstest.Env) { write(t, env, env.Subject, oidc.WithAudience("vault")) }, irsa.ErrTokenAudience},
		{"expired", func(t *testing.T, env *awstest.Env) { write(t, env, env.Subject, oidc.Expired()) }, irsa.ErrTokenExpired},
		{"missing", func(t *testing.T, env *awstest.Env) { os.Remove(env.TokenFile) }, irsa.ErrTokenMissing},
		{"not a jwt", func(t *testing.T, env *awstest.Env) { os.WriteFile(env.TokenFile, []byte("garbage"), 0o600) }, irsa.ErrTokenMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := awstest.Start(t)
			env.Setenv(t)
			c.setup(t, env)
			_, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) })
			if !errors.Is(err, c.want) || !strings.Contains(err.Error(), env.TokenFile) {
				t.Fatalf("got %v, want %v naming %s", err, c.want, env.TokenFile)
			}
			if env.STS.Calls(assumeOp) != 0 {
				t.Fatal("STS called for a bad token file")
			}
		})
	}
}

func clearAWS(t *testing.T) {
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") || k == "KUBERNETES_SERVICE_HOST" {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	os.WriteFile(empty, nil, 0o600)
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// In a pod without IRSA, the node role is refused unless asked for.
func TestNodeRoleGuard(t *testing.T) {
	clearAWS(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	t.Setenv("AWS_REGION", "us-east-1")
	_, err := irsa.Load(context.Background())
	if !errors.Is(err, irsa.ErrNodeRole) || !strings.Contains(err.Error(), "eks.amazonaws.com/role-arn") || !strings.Contains(err.Error(), "created before") {
		t.Fatalf("got %v", err)
	}
	l, buf := logger()
	sess, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.AllowNodeRole = true; o.Logger = l })
	if err != nil {
		t.Fatalf("AllowNodeRole: %v", err)
	}
	if sess.Mode() != irsa.InstanceRole || !strings.Contains(buf.String(), "instance role") {
		t.Fatalf("mode %s, log %s", sess.Mode(), buf)
	}
}

// Outside a pod, environment keys and profiles work for development and
// are logged as such.
func TestDevelopmentFallbacks(t *testing.T) {
	t.Run("env keys", func(t *testing.T) {
		clearAWS(t)
		t.Setenv("AWS_REGION", "eu-west-1")
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "dev-secret-value")
		sess, logs := load(t)
		if sess.Mode() != irsa.EnvKeys || !strings.Contains(logs.String(), "local development") || strings.Contains(logs.String(), "dev-secret-value") {
			t.Fatalf("mode %s log %s", sess.Mode(), logs)
		}
	})
	t.Run("profile", func(t *testing.T) {
		clearAWS(t)
		creds := filepath.Join(t.TempDir(), "credentials")
		os.WriteFile(creds, []byte("[dev]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = profile-secret\n"), 0o600)
		cfgFile := filepath.Join(t.TempDir(), "config")
		os.WriteFile(cfgFile, []byte("[profile dev]\nregion = ap-southeast-2\n"), 0o600)
		t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
		t.Setenv("AWS_CONFIG_FILE", cfgFile)
		sess, logs := load(t, func(o *irsa.Options) { o.Profile = "dev" })
		if sess.Mode() != irsa.Profile || sess.Region() != "ap-southeast-2" || !strings.Contains(logs.String(), `"profile":"dev"`) {
			t.Fatalf("mode %s region %s log %s", sess.Mode(), sess.Region(), logs)
		}
		c, err := sess.Credentials().Retrieve(context.Background())
		if err != nil || c.AccessKeyID != "AKIAEXAMPLEEXAMPLE01" {
			t.Fatalf("profile credentials: %v", err)
		}
	})
	t.Run("no region", func(t *testing.T) {
		clearAWS(t)
		t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
		t.Setenv("AWS_SECRET_ACCESS_KEY", "x")
		if _, err := irsa.Load(context.Background()); !errors.Is(err, irsa.ErrNoRegion) || !strings.Contains(err.Error(), "AWS_REGION") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestLoadMisconfigured(t *testing.T) {
	cases := map[string][]string{
		"role without token file": {"AWS_ROLE_ARN", goodRole},
		"token file without role": {"AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath},
		"malformed role":          {"AWS_ROLE_ARN", "arn:aws:iam::1:role/x", "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath},
		"relative token path":     {"AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "token"},
	}
	for name, kv := range cases {
		t.Run(name, func(t *testing.T) {
			clearAWS(t)
			t.Setenv("AWS_REGION", "us-east-1")
			for i := 0; i < len(kv); i += 2 {
				t.Setenv(kv[i], kv[i+1])
			}
			_, err := irsa.Load(context.Background())
			if !errors.Is(err, irsa.ErrMisconfigured) {
				t.Fatalf("got %v", err)
			}
		})
	}
	clearAWS(t)
	if _, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Duration = time.Minute }); !errors.Is(err, irsa.ErrMisconfigured) {
		t.Fatalf("1m duration: %v", err)
	}
}

func TestRoleSessionName(t *testing.T) {
	env := awstest.Start(t)
	env.Setenv(t)
	sess, _ := load(t, func(o *irsa.Options) { o.RoleSessionName = "mcp-server-abc" })
	if _, err := sess.Identity(context.Background()); err != nil {
		t.Fatal(err)
	}
	for _, c := range env.STS.CallLog() {
		if c.Action == assumeOp && c.RoleSessionName != "mcp-server-abc" {
			t.Fatalf("session name %q", c.RoleSessionName)
		}
	}
	if _, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.RoleSessionName = "bad name!" }); !errors.Is(err, irsa.ErrMisconfigured) {
		t.Fatalf("bad session name: %v", err)
	}
}
