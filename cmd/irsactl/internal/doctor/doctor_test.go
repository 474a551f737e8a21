package doctor_test

import (
	"context"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
	"github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/internal/presign"
)

// Shared servers: one IRSA environment whose role may log in to the
// PostgreSQL front as "app", AUTH to the Redis front as "app", and read
// the secret "prod/app/api-key".
var (
	shared     *awstest.Env
	pg         *procs.Postgres
	pgFront    *pgfront.Front
	redisSrv   *redisfront.Server
	redisCA    string
	secretsSrv *secretsmanager.Server
)

const cacheName = "sessions"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int { fmt.Fprintln(os.Stderr, "doctor_test:", err); return 1 }
	var err error
	if shared, err = awstest.New(); err != nil {
		return fail(err)
	}
	defer shared.Close()
	if pg, err = procs.StartPostgres(ctx); err != nil {
		return fail(err)
	}
	defer pg.Close()
	if err := pg.CreateRole(ctx, "app"); err != nil {
		return fail(err)
	}
	if pgFront, err = pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: shared.Registry, IAM: shared.IAM, Region: shared.Region}); err != nil {
		return fail(err)
	}
	defer pgFront.Close()
	if redisSrv, err = redisfront.StartServer(ctx, redisfront.Options{Registry: shared.Registry, IAM: shared.IAM, CacheName: cacheName, Region: shared.Region, Users: []string{"app", "other"}}); err != nil {
		return fail(err)
	}
	defer redisSrv.Close()
	redisCA = filepath.Join(shared.Dir, "redis-ca.pem")
	if err := os.WriteFile(redisCA, redisSrv.CAPEM(), 0o644); err != nil {
		return fail(err)
	}
	secretsSrv = secretsmanager.New(shared.Registry, shared.IAM, func(o *secretsmanager.Options) { o.Region = shared.Region })
	if _, err := secretsSrv.Start(); err != nil {
		return fail(err)
	}
	defer secretsSrv.Close()
	if _, _, err := secretsSrv.CreateString("prod/app/api-key", "s3cr3t-value"); err != nil {
		return fail(err)
	}
	if _, _, err := secretsSrv.CreateString("prod/other", "x"); err != nil {
		return fail(err)
	}

	// The role's policies are the ones irsactl policy generates.
	doc, err := policy.Combined(policy.Inputs{
		Region: shared.Region, Account: shared.Account,
		ResourceID: pgFront.ResourceID(), DBUsers: []string{"app"},
		Cache: cacheName, CacheUsers: []string{"app"},
		Secrets: []string{"prod/app/api-key"},
	})
	if err != nil {
		return fail(err)
	}
	if err := shared.AttachPolicy(doc); err != nil {
		return fail(err)
	}
	return m.Run()
}

// closedPort is a loopback URL nothing listens on: the "global" STS
// endpoint of tests (never the real one).
func closedPort(t *testing.T) string {
	t.Helper()
	p, err := procs.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("http://127.0.0.1:%d", p)
}

// useEnv points the process environment at env (the doctor reads it like
// the SDK does) with the secrets stand-in as Secrets Manager.
func useEnv(t *testing.T, env *awstest.Env) {
	t.Helper()
	env.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secretsSrv.URL())
}

func runDoctor(t *testing.T, env *awstest.Env, optFns ...func(*doctor.Options)) doctor.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opts := append([]func(*doctor.Options){func(o *doctor.Options) {
		o.GlobalSTSEndpoint = env.STS.URL() // reachable stand-in
		o.Timeout = 10 * time.Second
	}}, optFns...)
	rep := doctor.Run(ctx, opts...)
	var b strings.Builder
	rep.WriteText(&b)
	t.Log("\n" + b.String())
	return rep
}

func wantCheck(t *testing.T, rep doctor.Report, name string, status doctor.Status, cause doctor.Cause) doctor.Check {
	t.Helper()
	c, ok := rep.Check(name)
	if !ok {
		t.Fatalf("no %q check in %+v", name, rep.Checks)
	}
	if c.Status != status || c.Cause != cause {
		t.Fatalf("check %s = %s/%q (%s), want %s/%q", name, c.Status, c.Cause, c.Detail, status, cause)
	}
	return c
}

func TestHealthyIRSA(t *testing.T) {
	useEnv(t, shared)
	rep := runDoctor(t, shared, func(o *doctor.Options) {
		o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", CAFile: pgFront.CAFile()}
		o.Redis = &doctor.RedisProbe{Endpoint: redisSrv.Addr(), CacheName: cacheName, User: "app", CAFile: redisCA}
		o.Secret = &doctor.SecretProbe{SecretID: "prod/app/api-key"}
	})
	if rep.Failed() {
		t.Fatalf("healthy environment failed: %v", rep.Causes())
	}
	if rep.Mode != "web-identity" {
		t.Errorf("mode = %q", rep.Mode)
	}
	if !strings.Contains(rep.Identity, ":assumed-role/mcp-server-role/") {
		t.Errorf("identity = %q", rep.Identity)
	}
	for _, name := range []string{"credential-mode", "token-file", "token-claims", "trust-policy", "sts", "sts-global", "rds", "elasticache", "secret"} {
		wantCheck(t, rep, name, doctor.Pass, "")
	}
	tp, _ := rep.Check("trust-policy")
	if !strings.Contains(tp.Detail, shared.Issuer.HostPath()+`:sub = "system:serviceaccount:mcp:mcp-server"`) {
		t.Errorf("trust-policy detail lacks the sub condition: %s", tp.Detail)
	}
	var js strings.Builder
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(js.String(), "s3cr3t-value") || strings.Contains(js.String(), "X-Amz-Signature") {
		t.Fatal("the report leaks a secret or a token")
	}
}

func TestTokenFileCauses(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, env *awstest.Env, o *doctor.Options)
		check string
		cause doctor.Cause
	}{
		{"unreadable", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			// Root reads any file; the injected reader answers what the
			// kernel answers a non-root container user (the binary test runs
			// it for real as nobody).
			o.ReadFile = func(p string) ([]byte, error) {
				return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrPermission}
			}
		}, "token-file", doctor.CauseTokenUnreadable},
		{"missing", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", filepath.Join(env.Dir, "nope"))
		}, "token-file", doctor.CauseTokenMissing},
		{"expired", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			if _, err := env.Issuer.WriteTokenFile(env.TokenFile, env.Subject, oidc.Expired()); err != nil {
				t.Fatal(err)
			}
		}, "token-claims", doctor.CauseTokenExpired},
		{"audience", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			if _, err := env.Issuer.WriteTokenFile(env.TokenFile, env.Subject, oidc.WithAudience("vault")); err != nil {
				t.Fatal(err)
			}
		}, "token-claims", doctor.CauseTokenAudience},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.Start(t)
			useEnv(t, env)
			var setup func(*doctor.Options)
			holder := &doctor.Options{}
			tc.setup(t, env, holder)
			setup = func(o *doctor.Options) {
				if holder.ReadFile != nil {
					o.ReadFile = holder.ReadFile
				}
			}
			rep := runDoctor(t, env, setup)
			c := wantCheck(t, rep, tc.check, doctor.Fail, tc.cause)
			if c.Fix == "" {
				t.Error("no fix hint")
			}
			if tc.cause == doctor.CauseTokenUnreadable && !strings.Contains(c.Fix, "fsGroup") {
				t.Errorf("fix does not mention fsGroup: %s", c.Fix)
			}
			wantCheck(t, rep, "sts", doctor.Skip, "")
			if got := env.STS.Calls("AssumeRoleWithWebIdentity"); got != 0 {
				t.Errorf("doctor sent a bad token to STS (%d calls)", got)
			}
		})
	}
}

func TestSTSRefusals(t *testing.T) {
	t.Run("trust policy sub mismatch", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		// The pod runs as another service account than the role trusts.
		if _, err := env.Issuer.WriteTokenFile(env.TokenFile, oidc.ServiceAccountSubject("mcp", "default")); err != nil {
			t.Fatal(err)
		}
		rep := runDoctor(t, env)
		c := wantCheck(t, rep, "sts", doctor.Fail, doctor.CauseTrustPolicy)
		if !strings.Contains(c.Detail, "AccessDenied") || !strings.Contains(c.Fix, "system:serviceaccount:mcp:default") {
			t.Errorf("detail/fix do not name AccessDenied and the subject: %s / %s", c.Detail, c.Fix)
		}
		if env.STS.Calls("AssumeRoleWithWebIdentity") == 0 {
			t.Error("STS was not asked")
		}
	})
	t.Run("OIDC provider unknown", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		env.IAM.RemoveOIDCProvider(env.Issuer.URL())
		rep := runDoctor(t, env)
		c := wantCheck(t, rep, "sts", doctor.Fail, doctor.CauseOIDCProvider)
		if !strings.Contains(c.Detail, "InvalidIdentityToken") || !strings.Contains(c.Fix, "associate-iam-oidc-provider") {
			t.Errorf("detail/fix: %s / %s", c.Detail, c.Fix)
		}
	})
	t.Run("STS down", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		env.STS.SetDown(true)
		rep := runDoctor(t, env, func(o *doctor.Options) { o.Timeout = 5 * time.Second })
		wantCheck(t, rep, "sts", doctor.Fail, doctor.CauseSTSUnreachable)
	})
}

func TestNodeRoleFallback(t *testing.T) {
	env := awstest.Start(t)
	useEnv(t, env)
	// A pod whose service account has no role annotation: no IRSA variables.
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	os.Unsetenv("AWS_ROLE_ARN")
	os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	rep := runDoctor(t, env)
	c := wantCheck(t, rep, "credential-mode", doctor.Fail, doctor.CauseNodeRole)
	if !strings.Contains(c.Fix, "eks.amazonaws.com/role-arn") {
		t.Errorf("fix: %s", c.Fix)
	}
	if rep.Mode != "instance-role" {
		t.Errorf("mode = %s", rep.Mode)
	}
	wantCheck(t, rep, "sts", doctor.Skip, "")
	if !rep.Failed() {
		t.Error("report not failed")
	}
}

// irsakit always calls the regional STS endpoint, whatever
// AWS_STS_REGIONAL_ENDPOINTS says: an unreachable global endpoint is only a
// warning, and nothing advises that variable or its annotation.
func TestGlobalSTSUnreachableRegionalWorks(t *testing.T) {
	for _, regional := range []string{"", "legacy", "regional"} {
		t.Run("AWS_STS_REGIONAL_ENDPOINTS="+regional, func(t *testing.T) {
			useEnv(t, shared)
			t.Setenv("AWS_STS_REGIONAL_ENDPOINTS", regional)
			rep := runDoctor(t, shared, func(o *doctor.Options) { o.GlobalSTSEndpoint = closedPort(t) })
			wantCheck(t, rep, "sts", doctor.Pass, "")
			c := wantCheck(t, rep, "sts-global", doctor.Warn, doctor.CauseSTSGlobalDown)
			for _, chk := range rep.Checks {
				for _, text := range []string{chk.Detail, chk.Fix} {
					if strings.Contains(text, "STS_REGIONAL") || strings.Contains(text, "sts-regional-endpoints") {
						t.Errorf("check %s advises the regional-endpoints setting: %s", chk.Name, text)
					}
				}
			}
			if !strings.Contains(c.Detail, "regional endpoint") {
				t.Errorf("detail: %s", c.Detail)
			}
			if rep.Failed() {
				t.Error("an unreachable global endpoint failed the report")
			}
		})
	}
}

func TestRDSCauses(t *testing.T) {
	useEnv(t, shared)
	t.Run("endpoint without port", func(t *testing.T) {
		rep := runDoctor(t, shared, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: "127.0.0.1", User: "app", CAFile: pgFront.CAFile()}
		})
		c := wantCheck(t, rep, "rds", doctor.Fail, doctor.CauseRDSNoPort)
		if !strings.Contains(c.Fix, "127.0.0.1:5432") {
			t.Errorf("fix: %s", c.Fix)
		}
	})
	t.Run("IAM login without TLS", func(t *testing.T) {
		before := pgFront.Accepted()
		rep := runDoctor(t, shared, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", SSLMode: "disable"}
		})
		c := wantCheck(t, rep, "rds", doctor.Fail, doctor.CauseRDSNoTLS)
		if !strings.Contains(c.Detail, "the server answered a plaintext login") {
			t.Errorf("the front was not asked: %s", c.Detail)
		}
		if pgFront.Accepted() != before {
			t.Error("a plaintext login was accepted")
		}
	})
	t.Run("user not allowed", func(t *testing.T) {
		rep := runDoctor(t, shared, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "postgres", CAFile: pgFront.CAFile()}
		})
		c := wantCheck(t, rep, "rds", doctor.Fail, doctor.CauseRDSAuth)
		if !strings.Contains(c.Detail, "PAM authentication failed") {
			t.Errorf("detail: %s", c.Detail)
		}
	})
}

// elasticacheToken mints a token as a client would, signed at "at".
func elasticacheToken(t *testing.T, user string, at time.Time) string {
	t.Helper()
	p, err := shared.SessionCredentials(time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := p.Retrieve(context.Background())
	tok, err := presign.Token(context.Background(), c, "elasticache", shared.Region, cacheName,
		url.Values{"Action": {"connect"}, "User": {user}}, 15*time.Minute, at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(p, []byte(tok), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestElastiCacheCauses(t *testing.T) {
	useEnv(t, shared)
	probe := func(user, tokenFile string, noTLS bool) func(*doctor.Options) {
		return func(o *doctor.Options) {
			o.Redis = &doctor.RedisProbe{Endpoint: redisSrv.Addr(), CacheName: cacheName, User: user, CAFile: redisCA, TokenFile: tokenFile, NoTLS: noTLS}
		}
	}
	cases := []struct {
		name  string
		opt   func(*doctor.Options)
		cause doctor.Cause
	}{
		{"expired token", probe("app", writeToken(t, elasticacheToken(t, "app", time.Now().Add(-20*time.Minute))), false), doctor.CauseRedisTokenExpired},
		{"token for another user id", probe("app", writeToken(t, elasticacheToken(t, "other", time.Now())), false), doctor.CauseRedisWrongUser},
		{"fresh token, wrong user id", probe("nosuchuser", "", false), doctor.CauseRedisWrongPass},
		{"fresh token, user not in policy", probe("other", "", false), doctor.CauseRedisWrongPass},
		{"no TLS", probe("app", "", true), doctor.CauseRedisNoTLS},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			failedBefore := redisSrv.Stats().AuthFailed
			rep := runDoctor(t, shared, tc.opt)
			c := wantCheck(t, rep, "elasticache", doctor.Fail, tc.cause)
			if tc.cause != doctor.CauseRedisNoTLS {
				if !strings.Contains(c.Detail, "WRONGPASS") {
					t.Errorf("detail lacks the server's answer: %s", c.Detail)
				}
				if redisSrv.Stats().AuthFailed == failedBefore {
					t.Error("the front saw no failed AUTH")
				}
			}
			if strings.Contains(c.Detail+c.Fix, "X-Amz-Signature") {
				t.Error("token leaked into the report")
			}
		})
	}
}

func TestSecretProbe(t *testing.T) {
	useEnv(t, shared)
	rep := runDoctor(t, shared, func(o *doctor.Options) { o.Secret = &doctor.SecretProbe{SecretID: "prod/other"} })
	wantCheck(t, rep, "secret", doctor.Fail, doctor.CauseSecretDenied)
	rep = runDoctor(t, shared, func(o *doctor.Options) { o.Secret = &doctor.SecretProbe{SecretID: "prod/app/missing"} })
	c, _ := rep.Check("secret")
	if c.Status != doctor.Fail || (c.Cause != doctor.CauseSecretDenied && c.Cause != doctor.CauseSecretNotFound) {
		t.Errorf("missing secret: %+v", c)
	}
}
