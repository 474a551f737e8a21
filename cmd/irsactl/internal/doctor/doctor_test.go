package doctor_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
	"github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/internal/presign"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
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

// closedPort is a loopback URL nothing listens on (never a real endpoint).
func closedPort(t *testing.T) string {
	t.Helper()
	p, err := procs.FreePort()
	require.NoError(t, err)
	return fmt.Sprintf("http://127.0.0.1:%d", p)
}

// useEnv points the process environment at env (the doctor reads it like
// the SDK does) with the secrets stand-in as Secrets Manager.
func useEnv(t *testing.T, env *awstest.Env) {
	t.Helper()
	env.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", secretsSrv.URL())
}

// dialLog records every connection doctor opens through Options.Dial.
type dialLog struct {
	mu    sync.Mutex
	addrs []string
}

func (d *dialLog) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d.mu.Lock()
	d.addrs = append(d.addrs, addr)
	d.mu.Unlock()
	return (&net.Dialer{}).DialContext(ctx, network, addr)
}

func (d *dialLog) dialled() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.addrs...)
}

// hostPort is the host:port of a URL.
func hostPort(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(raw)
	require.NoError(t, err)
	return u.Host
}

// assertOnlyDialled fails if doctor opened a connection to any address
// outside allowed: the global STS endpoint, the instance metadata service
// or anything else the environment does not name.
func assertOnlyDialled(t *testing.T, log *dialLog, allowed ...string) {
	t.Helper()
	ok := map[string]bool{}
	for _, a := range allowed {
		ok[a] = true
	}
	for _, a := range log.dialled() {
		assert.True(t, ok[a], "doctor dialled %s, which the environment does not name (allowed: %v)", a, allowed)
	}
}

// runDoctor runs doctor with the default timeout, every connection
// recorded in the returned log.
func runDoctor(t *testing.T, optFns ...func(*doctor.Options)) (doctor.Report, *dialLog) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	log := &dialLog{}
	opts := append([]func(*doctor.Options){func(o *doctor.Options) { o.Dial = log.dial }}, optFns...)
	rep := doctor.Run(ctx, opts...)
	var b strings.Builder
	require.NoError(t, rep.WriteText(&b))
	t.Log("\n" + b.String())
	return rep, log
}

func wantCheck(t *testing.T, rep doctor.Report, name string, status doctor.Status, cause doctor.Cause) doctor.Check {
	t.Helper()
	c, ok := rep.Check(name)
	require.True(t, ok, "no %q check in %+v", name, rep.Checks)
	require.Equal(t, status, c.Status, "check %s: %s/%q (%s)", name, c.Status, c.Cause, c.Detail)
	require.Equal(t, cause, c.Cause, "check %s: %s/%q (%s)", name, c.Status, c.Cause, c.Detail)
	return c
}

func TestHealthyIRSA(t *testing.T) {
	useEnv(t, shared)
	rep, log := runDoctor(t, func(o *doctor.Options) {
		o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", CAFile: pgFront.CAFile()}
		o.Redis = &doctor.RedisProbe{Endpoint: redisSrv.Addr(), CacheName: cacheName, User: "app", CAFile: redisCA}
		o.Secret = &doctor.SecretProbe{SecretID: "prod/app/api-key"}
	})
	require.False(t, rep.Failed(), "healthy environment failed: %v", rep.Causes())
	assert.Equal(t, doctor.StatusOK, rep.Status)
	assert.Equal(t, "web-identity", rep.Mode)
	assert.Contains(t, rep.Identity, ":assumed-role/mcp-server-role/")
	for _, name := range []string{doctor.CheckCredentialMode, doctor.CheckTokenFile, doctor.CheckTokenClaims, doctor.CheckTrustPolicy,
		doctor.CheckSTS, doctor.CheckRDS, doctor.CheckElastiCache, doctor.CheckSecret} {
		wantCheck(t, rep, name, doctor.Pass, "")
	}
	// The region is only read from the environment: stated, not verified.
	wantCheck(t, rep, doctor.CheckRegion, doctor.Info, "")
	_, probed := rep.Check(doctor.CheckSTSGlobal)
	assert.False(t, probed, "the global STS endpoint was probed without --global-sts")
	tp, _ := rep.Check(doctor.CheckTrustPolicy)
	assert.Contains(t, tp.Detail, shared.Issuer.HostPath()+`:sub = "system:serviceaccount:mcp:mcp-server"`)
	sts, _ := rep.Check(doctor.CheckSTS)
	assert.Contains(t, sts.Detail, shared.STS.URL(), "the STS check names the endpoint it asked")
	assertOnlyDialled(t, log, hostPort(t, shared.STS.URL()), pgFront.Addr(), redisSrv.Addr(), hostPort(t, secretsSrv.URL()))

	var js strings.Builder
	require.NoError(t, rep.WriteJSON(&js))
	assert.NotContains(t, js.String(), "s3cr3t-value")
	assert.NotContains(t, js.String(), "X-Amz-Signature")
	assert.Contains(t, js.String(), `"status": "ok"`)

	// The caches it used: one credential fetch for everything, one token
	// minted per probe.
	st := rep.Stats
	require.NotNil(t, st.Session)
	assert.EqualValues(t, 1, st.Session.Fetches)
	assert.Zero(t, st.Session.Failures)
	assert.False(t, st.Session.LastRefresh.IsZero())
	assert.True(t, st.Session.Expires.After(time.Now()))
	assert.Nil(t, st.Session.Entries)
	require.NotNil(t, st.RDS)
	assert.EqualValues(t, 1, st.RDS.Fetches)
	assert.Equal(t, 1, *st.RDS.Entries)
	require.NotNil(t, st.ElastiCache)
	assert.EqualValues(t, 1, st.ElastiCache.Fetches)
	assert.Nil(t, st.AssumedRole, "no --assume")
	for _, f := range []string{`"session": {`, `"fetches": 1`, `"early_refreshes": 0`, `"failures": 0`, `"served_stale": 0`, `"last_refresh": "`, `"expires": "`, `"entries": 1`} {
		assert.Contains(t, js.String(), f)
	}
	assert.NotContains(t, js.String(), `"last_failure"`, "a zero time is left out")
	// No credential of the session reaches the report.
	for _, call := range shared.STS.CallLog() {
		if creds, ok := shared.Registry.Lookup(call.AccessKeyID); ok {
			assert.NotContains(t, js.String(), creds.SecretAccessKey)
			assert.NotContains(t, js.String(), creds.SessionToken)
		}
	}
	var text strings.Builder
	require.NoError(t, rep.WriteText(&text))
	assert.Regexp(t, `\nCaches:\n  session credentials: 1 fetch\(es\), 0 early refresh\(es\), 0 failure\(s\), 0 served stale; last refresh \S+; expires \S+\n  rds tokens: 1 cached, 1 fetch\(es\)`, text.String())
}

// TestUnreachableSTS: each way of not reaching STS is named for what was
// tried, within the default timeout, and nothing but the endpoint the
// environment names is contacted (no global STS, no instance metadata).
func TestUnreachableSTS(t *testing.T) {
	// Accepts connections into its backlog but never answers: a blackhole.
	silent, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer silent.Close()
	refused := closedPort(t)
	cases := []struct {
		name, endpoint, dialled, want string
	}{
		{"connection refused", refused, hostPort(t, refused), "connection refused"},
		{"no answer", "http://" + silent.Addr().String(), silent.Addr().String(), "timeout: no answer within " + doctor.DefaultTimeout.String()},
		{"DNS failure", "https://sts.irsakit-test.invalid", "sts.irsakit-test.invalid:443", "DNS failure: the name sts.irsakit-test.invalid does not resolve"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.Start(t)
			useEnv(t, env)
			t.Setenv("AWS_ENDPOINT_URL_STS", tc.endpoint)
			t.Setenv("AWS_STS_REGIONAL_ENDPOINTS", "") // the global endpoint stays uncontacted all the same
			rep, log := runDoctor(t)
			c := wantCheck(t, rep, doctor.CheckSTS, doctor.Fail, doctor.CauseSTSUnreachable)
			assert.Contains(t, c.Detail, tc.want)
			assert.Contains(t, c.Detail, tc.endpoint+" (AWS_ENDPOINT_URL_STS)", "the detail names the endpoint tried")
			assert.NotEmpty(t, c.Fix)
			assert.Equal(t, doctor.StatusFail, rep.Status)
			// The trust policy was never judged: not shown as verified, and
			// its hint is not presented as the fix.
			wantCheck(t, rep, doctor.CheckTrustPolicy, doctor.Info, "")
			var text strings.Builder
			require.NoError(t, rep.WriteText(&text))
			assert.Contains(t, text.String(), "[info] trust-policy: ")
			assert.NotContains(t, text.String(), "fix: irsactl policy trust")
			assert.NotEmpty(t, log.dialled(), "the STS endpoint was not tried")
			assertOnlyDialled(t, log, tc.dialled)
			// The session's counters show the fetch and, once it ended (a
			// blackhole outlasts doctor's wait), that it failed and how.
			require.NotNil(t, rep.Stats.Session)
			assert.EqualValues(t, 1, rep.Stats.Session.Fetches)
			if tc.name != "no answer" {
				assert.EqualValues(t, 1, rep.Stats.Session.Failures)
				assert.Equal(t, "network", rep.Stats.Session.LastErrorClass)
				assert.False(t, rep.Stats.Session.LastFailure.IsZero())
			}
			assert.True(t, rep.Stats.Session.LastRefresh.IsZero(), "no fetch succeeded")
		})
	}
}

// TestDialReachesEveryConnection is the control for the tests above: the
// global STS probe (opt-in) and the instance metadata service (when the
// chain uses it) do go through Options.Dial, so their absence there means
// they were not contacted.
func TestDialReachesEveryConnection(t *testing.T) {
	t.Run("global STS on request", func(t *testing.T) {
		useEnv(t, shared)
		global := closedPort(t)
		rep, log := runDoctor(t, func(o *doctor.Options) { o.GlobalSTS, o.GlobalSTSEndpoint = true, global })
		wantCheck(t, rep, doctor.CheckSTSGlobal, doctor.Warn, doctor.CauseSTSGlobalDown)
		assert.Contains(t, log.dialled(), hostPort(t, global))
	})
}

// imdsCounter stands in for the instance metadata service: it counts the
// requests it gets and answers none usefully.
func imdsCounter(t *testing.T) (url string, requests func() int64) {
	t.Helper()
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		http.Error(w, "not an instance", http.StatusNotFound)
	}))
	t.Cleanup(srv.Close)
	return srv.URL, n.Load
}

// TestInstanceMetadataOnlyWhenTheChainUsesIt: the instance metadata
// service (pointed at a counting stand-in, with IMDS enabled as on a
// node) is asked only with --allow-node-role in a pod without IRSA, never
// in the other modes, whatever fails.
func TestInstanceMetadataOnlyWhenTheChainUsesIt(t *testing.T) {
	cases := []struct {
		name      string
		env       func(t *testing.T, env *awstest.Env)
		allowNode bool
		wantIMDS  bool
	}{
		{"IRSA", func(t *testing.T, env *awstest.Env) {}, false, false},
		{"IRSA, STS refusing connections", func(t *testing.T, env *awstest.Env) {
			t.Setenv("AWS_ENDPOINT_URL_STS", closedPort(t))
		}, false, false},
		{"pod without IRSA", func(t *testing.T, env *awstest.Env) {
			os.Unsetenv("AWS_ROLE_ARN")
			os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
			t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
		}, false, false},
		{"outside a pod, no credentials", func(t *testing.T, env *awstest.Env) {
			os.Unsetenv("AWS_ROLE_ARN")
			os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
		}, false, false},
		{"pod without IRSA, --allow-node-role", func(t *testing.T, env *awstest.Env) {
			os.Unsetenv("AWS_ROLE_ARN")
			os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
			t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
		}, true, true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.Start(t)
			useEnv(t, env)
			imdsURL, requests := imdsCounter(t)
			t.Setenv("AWS_EC2_METADATA_DISABLED", "false")
			t.Setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", imdsURL)
			tc.env(t, env)
			rep, _ := runDoctor(t, func(o *doctor.Options) { o.AllowNodeRole = tc.allowNode })
			if tc.wantIMDS {
				assert.Positive(t, requests(), "the chain ends at the instance metadata service, so doctor asks it")
				c, _ := rep.Check(doctor.CheckSTS)
				assert.Equal(t, doctor.Fail, c.Status)
			} else {
				assert.Zero(t, requests(), "doctor asked the instance metadata service")
			}
		})
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
		}, doctor.CheckTokenFile, doctor.CauseTokenUnreadable},
		{"missing", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", filepath.Join(env.Dir, "nope"))
		}, doctor.CheckTokenFile, doctor.CauseTokenMissing},
		{"expired", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			_, err := env.Issuer.WriteTokenFile(env.TokenFile, env.Subject, oidc.Expired())
			require.NoError(t, err)
		}, doctor.CheckTokenClaims, doctor.CauseTokenExpired},
		{"audience", func(t *testing.T, env *awstest.Env, o *doctor.Options) {
			_, err := env.Issuer.WriteTokenFile(env.TokenFile, env.Subject, oidc.WithAudience("vault"))
			require.NoError(t, err)
		}, doctor.CheckTokenClaims, doctor.CauseTokenAudience},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.Start(t)
			useEnv(t, env)
			holder := &doctor.Options{}
			tc.setup(t, env, holder)
			rep, _ := runDoctor(t, func(o *doctor.Options) {
				if holder.ReadFile != nil {
					o.ReadFile = holder.ReadFile
				}
			})
			c := wantCheck(t, rep, tc.check, doctor.Fail, tc.cause)
			assert.NotEmpty(t, c.Fix)
			if tc.cause == doctor.CauseTokenUnreadable {
				assert.Contains(t, c.Fix, "fsGroup")
			}
			wantCheck(t, rep, doctor.CheckSTS, doctor.Skip, "")
			assert.Zero(t, env.STS.Calls("AssumeRoleWithWebIdentity"), "doctor sent a bad token to STS")
		})
	}
}

func TestSTSRefusals(t *testing.T) {
	t.Run("trust policy sub mismatch", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		// The pod runs as another service account than the role trusts.
		_, err := env.Issuer.WriteTokenFile(env.TokenFile, oidc.ServiceAccountSubject("mcp", "default"))
		require.NoError(t, err)
		rep, _ := runDoctor(t)
		c := wantCheck(t, rep, doctor.CheckSTS, doctor.Fail, doctor.CauseTrustPolicy)
		assert.Contains(t, c.Detail, "AccessDenied")
		assert.Contains(t, c.Fix, "system:serviceaccount:mcp:default")
		assert.NotZero(t, env.STS.Calls("AssumeRoleWithWebIdentity"), "STS was not asked")
		wantCheck(t, rep, doctor.CheckTrustPolicy, doctor.Info, "")
	})
	t.Run("OIDC provider unknown", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		env.IAM.RemoveOIDCProvider(env.Issuer.URL())
		rep, _ := runDoctor(t)
		c := wantCheck(t, rep, doctor.CheckSTS, doctor.Fail, doctor.CauseOIDCProvider)
		assert.Contains(t, c.Detail, "InvalidIdentityToken")
		assert.Contains(t, c.Fix, "associate-iam-oidc-provider")
	})
	t.Run("STS closes every connection", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		env.STS.SetDown(true)
		rep, _ := runDoctor(t)
		c := wantCheck(t, rep, doctor.CheckSTS, doctor.Fail, doctor.CauseSTSUnreachable)
		assert.Contains(t, c.Detail, env.STS.URL())
		assert.Contains(t, c.Detail, "closed before an answer")
	})
	t.Run("STS answers with a server error", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		env.STS.FailNext(1, "ServiceUnavailable")
		rep, _ := runDoctor(t)
		// STS was reached and answered: not "unreachable".
		c := wantCheck(t, rep, doctor.CheckSTS, doctor.Fail, doctor.CauseSTSFailed)
		assert.Contains(t, c.Detail, env.STS.URL())
		assert.Contains(t, c.Detail, "ServiceUnavailable")
	})
}

func TestNodeRoleFallback(t *testing.T) {
	env := awstest.Start(t)
	useEnv(t, env)
	// A pod whose service account has no role annotation: no IRSA variables.
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	os.Unsetenv("AWS_ROLE_ARN")
	os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	rep, log := runDoctor(t)
	c := wantCheck(t, rep, doctor.CheckCredentialMode, doctor.Fail, doctor.CauseNodeRole)
	assert.Contains(t, c.Fix, "eks.amazonaws.com/role-arn")
	assert.Equal(t, "instance-role", rep.Mode)
	wantCheck(t, rep, doctor.CheckSTS, doctor.Skip, "")
	assert.True(t, rep.Failed())
	assert.Empty(t, log.dialled())
}

// irsakit always calls the regional STS endpoint, whatever
// AWS_STS_REGIONAL_ENDPOINTS says: an unreachable global endpoint is only a
// warning, and nothing advises that variable or its annotation.
func TestGlobalSTSUnreachableRegionalWorks(t *testing.T) {
	for _, regional := range []string{"", "legacy", "regional"} {
		t.Run("AWS_STS_REGIONAL_ENDPOINTS="+regional, func(t *testing.T) {
			useEnv(t, shared)
			t.Setenv("AWS_STS_REGIONAL_ENDPOINTS", regional)
			global := closedPort(t)
			rep, _ := runDoctor(t, func(o *doctor.Options) { o.GlobalSTS, o.GlobalSTSEndpoint = true, global })
			wantCheck(t, rep, doctor.CheckSTS, doctor.Pass, "")
			c := wantCheck(t, rep, doctor.CheckSTSGlobal, doctor.Warn, doctor.CauseSTSGlobalDown)
			assert.Contains(t, c.Detail, "connection refused")
			assert.Contains(t, c.Detail, "regional endpoint")
			for _, chk := range rep.Checks {
				for _, text := range []string{chk.Detail, chk.Fix} {
					assert.NotContains(t, text, "STS_REGIONAL", "check %s advises the regional-endpoints setting", chk.Name)
					assert.NotContains(t, text, "sts-regional-endpoints", "check %s advises the regional-endpoints setting", chk.Name)
				}
			}
			assert.False(t, rep.Failed(), "an unreachable global endpoint failed the report")
		})
	}
}

// rdsCABundleURL is the RDS CA bundle of the commercial regions.
const rdsCABundleURL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

// TestRDSTLS: doctor verifies the database's certificate by default
// (verify-full against the system roots, or --db-ca), as rdsauth does; a
// certificate the roots do not trust fails before the token is sent, and
// sslmode=require, which checks no certificate, is a warning, not a pass.
func TestRDSTLS(t *testing.T) {
	useEnv(t, shared)
	cases := []struct {
		name, sslMode, caFile string
		status                doctor.Status
		cause                 doctor.Cause
		says                  []string // in the detail or the fix
	}{
		{"default, no CA bundle: verify-full with the system roots", "", "", doctor.Fail, doctor.CauseRDSTLSUntrusted,
			[]string{"not trusted", "--db-ca", rdsCABundleURL}},
		{"default with the CA bundle", "", pgFront.CAFile(), doctor.Pass, "", []string{"sslmode=verify-full", "host name verified"}},
		{"require without a CA bundle", "require", "", doctor.Warn, doctor.CauseRDSUnverifiedTLS,
			[]string{"sslmode=require", "not checked", "refuses", "verify-full", rdsCABundleURL}},
		{"require with the CA bundle is verify-ca", "require", pgFront.CAFile(), doctor.Pass, "", []string{"host name not checked"}},
		{"verify-ca", "verify-ca", pgFront.CAFile(), doctor.Pass, "", []string{"sslmode=verify-ca"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			accepted := pgFront.Accepted()
			rep, _ := runDoctor(t, func(o *doctor.Options) {
				o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", SSLMode: tc.sslMode, CAFile: tc.caFile}
			})
			c := wantCheck(t, rep, doctor.CheckRDS, tc.status, tc.cause)
			for _, s := range tc.says {
				assert.Contains(t, c.Detail+" "+c.Fix, s)
			}
			if tc.status == doctor.Fail {
				assert.Equal(t, accepted, pgFront.Accepted(), "the login went ahead over TLS that did not verify")
			} else {
				assert.Greater(t, pgFront.Accepted(), accepted, "no IAM login reached the database")
			}
			if tc.status != doctor.Pass {
				assert.NotEqual(t, doctor.StatusOK, rep.Status, "a check that did not verify the server made the report ok")
			}
		})
	}
}

// TestRDSTLSAgreesWithRDSAuth runs, for each sslmode with and without the
// CA bundle, doctor's probe and rdsauth's own pool on the same connection
// string: doctor passes exactly what the library connects with, fails what
// it refuses as plaintext or cannot verify, and warns about what it
// refuses as unverified TLS.
func TestRDSTLSAgreesWithRDSAuth(t *testing.T) {
	useEnv(t, shared)
	ctx := context.Background()
	cfg, err := shared.Config(ctx)
	require.NoError(t, err)
	for _, mode := range []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"} {
		for _, ca := range []string{"", pgFront.CAFile()} {
			t.Run(fmt.Sprintf("sslmode=%s CA=%v", mode, ca != ""), func(t *testing.T) {
				dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=%s", pgFront.Port(), mode)
				if ca != "" {
					dsn += " sslrootcert=" + ca
				}
				var lib string
				pool, err := rdsauth.NewPool(ctx, dsn, cfg)
				switch {
				case errors.Is(err, rdsauth.ErrInsecureTransport):
					lib = "plaintext refused"
				case errors.Is(err, rdsauth.ErrUnverifiedTLS):
					lib = "unverified refused"
				case err != nil:
					require.NoError(t, err)
				default:
					if err := pool.Ping(ctx); err != nil {
						lib = "connect failed"
					} else {
						lib = "connected"
					}
					pool.Close()
				}
				rep, _ := runDoctor(t, func(o *doctor.Options) {
					o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", SSLMode: mode, CAFile: ca}
				})
				c, _ := rep.Check(doctor.CheckRDS)
				want := map[string]struct {
					status doctor.Status
					cause  doctor.Cause
				}{
					"plaintext refused":  {doctor.Fail, doctor.CauseRDSNoTLS},
					"unverified refused": {doctor.Warn, doctor.CauseRDSUnverifiedTLS},
					"connect failed":     {doctor.Fail, doctor.CauseRDSTLSUntrusted},
					"connected":          {doctor.Pass, ""},
				}[lib]
				assert.Equal(t, want.status, c.Status, "rdsauth: %s; doctor: %+v", lib, c)
				assert.Equal(t, want.cause, c.Cause, "rdsauth: %s; doctor: %+v", lib, c)
			})
		}
	}
}

func TestRDSCauses(t *testing.T) {
	useEnv(t, shared)
	t.Run("endpoint without port", func(t *testing.T) {
		rep, _ := runDoctor(t, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: "127.0.0.1", User: "app", CAFile: pgFront.CAFile()}
		})
		c := wantCheck(t, rep, doctor.CheckRDS, doctor.Fail, doctor.CauseRDSNoPort)
		assert.Contains(t, c.Fix, "127.0.0.1:5432")
	})
	t.Run("IAM login without TLS", func(t *testing.T) {
		before := pgFront.Accepted()
		rep, _ := runDoctor(t, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "app", Database: "app", SSLMode: "disable"}
		})
		c := wantCheck(t, rep, doctor.CheckRDS, doctor.Fail, doctor.CauseRDSNoTLS)
		assert.Contains(t, c.Detail, "the server answered a plaintext login", "the front was not asked")
		assert.Equal(t, before, pgFront.Accepted(), "a plaintext login was accepted")
		// The fix is what the library accepts: verified TLS, not require.
		assert.Contains(t, c.Fix, "sslmode=verify-full")
		assert.Contains(t, c.Fix, rdsCABundleURL)
		assert.NotContains(t, c.Fix, "at least sslmode=require")
	})
	t.Run("user not allowed", func(t *testing.T) {
		rep, _ := runDoctor(t, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: pgFront.Addr(), User: "postgres", CAFile: pgFront.CAFile()}
		})
		c := wantCheck(t, rep, doctor.CheckRDS, doctor.Fail, doctor.CauseRDSAuth)
		assert.Contains(t, c.Detail, "PAM authentication failed")
	})
	t.Run("nothing listening", func(t *testing.T) {
		rep, _ := runDoctor(t, func(o *doctor.Options) {
			o.RDS = &doctor.RDSProbe{Endpoint: hostPort(t, closedPort(t)), User: "app", CAFile: pgFront.CAFile()}
		})
		c := wantCheck(t, rep, doctor.CheckRDS, doctor.Fail, doctor.CauseRDSUnreachable)
		assert.Contains(t, c.Detail, "connection refused")
	})
}

// elasticacheToken mints a token as a client would, signed at "at".
func elasticacheToken(t *testing.T, user string, at time.Time) string {
	t.Helper()
	p, err := shared.SessionCredentials(time.Hour)
	require.NoError(t, err)
	c, err := p.Retrieve(context.Background())
	require.NoError(t, err)
	tok, err := presign.Token(context.Background(), c, "elasticache", shared.Region, cacheName,
		url.Values{"Action": {"connect"}, "User": {user}}, 15*time.Minute, at)
	require.NoError(t, err)
	return tok
}

func writeToken(t *testing.T, tok string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(tok), 0o600))
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
			rep, log := runDoctor(t, tc.opt)
			c := wantCheck(t, rep, doctor.CheckElastiCache, doctor.Fail, tc.cause)
			if tc.cause != doctor.CauseRedisNoTLS {
				assert.Contains(t, c.Detail, "WRONGPASS", "detail lacks the server's answer")
				assert.NotEqual(t, failedBefore, redisSrv.Stats().AuthFailed, "the front saw no failed AUTH")
			}
			assert.NotContains(t, c.Detail+c.Fix, "X-Amz-Signature", "token leaked into the report")
			assert.Contains(t, log.dialled(), redisSrv.Addr(), "the cache connection bypassed Options.Dial")
		})
	}
}

func TestSecretProbe(t *testing.T) {
	useEnv(t, shared)
	rep, _ := runDoctor(t, func(o *doctor.Options) { o.Secret = &doctor.SecretProbe{SecretID: "prod/other"} })
	wantCheck(t, rep, doctor.CheckSecret, doctor.Fail, doctor.CauseSecretDenied)
	rep, _ = runDoctor(t, func(o *doctor.Options) { o.Secret = &doctor.SecretProbe{SecretID: "prod/app/missing"} })
	c, _ := rep.Check(doctor.CheckSecret)
	assert.Equal(t, doctor.Fail, c.Status)
	assert.Contains(t, []doctor.Cause{doctor.CauseSecretDenied, doctor.CauseSecretNotFound}, c.Cause)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", closedPort(t))
	rep, _ = runDoctor(t, func(o *doctor.Options) { o.Secret = &doctor.SecretProbe{SecretID: "prod/app/api-key"} })
	c = wantCheck(t, rep, doctor.CheckSecret, doctor.Fail, doctor.CauseSecretUnreachable)
	assert.Contains(t, c.Detail, "connection refused")
}

func TestReportStatus(t *testing.T) {
	for _, tc := range []struct {
		name   string
		checks []doctor.Status
		want   string
	}{
		{"all passed", []doctor.Status{doctor.Pass, doctor.Pass}, doctor.StatusOK},
		{"a warning", []doctor.Status{doctor.Pass, doctor.Warn}, doctor.StatusWarn},
		{"a failure", []doctor.Status{doctor.Pass, doctor.Warn, doctor.Fail}, doctor.StatusFail},
		{"nothing verified", []doctor.Status{doctor.Info, doctor.Skip}, doctor.StatusWarn},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var rep doctor.Report
			for i, st := range tc.checks {
				rep.Checks = append(rep.Checks, doctor.Check{Name: fmt.Sprint(i), Status: st})
			}
			assert.Equal(t, tc.want, doctor.Overall(rep))
		})
	}
}

// A second account holding a role the pod's role may be allowed to assume.
const (
	ledgerAccount = "444455556666"
	ledgerRole    = "arn:aws:iam::" + ledgerAccount + ":role/ledger-reader"
	ledgerID      = "ledger-7f3a"
)

// goName matches a Go identifier of the library (irsa.RoleTrustPolicy,
// AssumeRoleOptions.ExternalID, Options.Region): a person running doctor
// cannot act on it.
var goName = regexp.MustCompile(`\b(irsa|rdsauth|elasticacheauth|s3store|secrets|aws|config|stscreds)\.[A-Z]\w*|\b\w*Options\.[A-Z]\w*`)

func assertNoGoNames(t *testing.T, rep doctor.Report) {
	t.Helper()
	var b strings.Builder
	require.NoError(t, rep.WriteJSON(&b))
	assert.Empty(t, goName.FindAllString(b.String(), -1), "the report names Go API:\n%s", b.String())
}

// trustLedger puts the ledger role, trusting the role trustedBy with the
// options, into a second account of env; allow gives the pod's role the
// identity policy allowing sts:AssumeRole on it.
func trustLedger(t *testing.T, env *awstest.Env, trustedBy string, allow bool, fns ...func(*irsa.RoleTrustPolicyOptions)) *iam.IAM {
	t.Helper()
	im2, err := env.AddAccount(ledgerAccount)
	require.NoError(t, err)
	trust, err := irsa.RoleTrustPolicy(trustedBy, fns...)
	require.NoError(t, err)
	require.NoError(t, im2.PutRole(ledgerRole, trust))
	if allow {
		require.NoError(t, env.AttachPolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"sts:AssumeRole","Resource":"`+ledgerRole+`"}]}`)))
	}
	return im2
}

func TestAssumeRole(t *testing.T) {
	withID := func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = ledgerID }
	t.Run("trusted, with the external id", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		trustLedger(t, env, env.RoleARN, true, withID)
		rep, log := runDoctor(t, func(o *doctor.Options) {
			o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole, ExternalID: ledgerID}
		})
		c := wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Pass, "")
		assert.Contains(t, c.Detail, "arn:aws:sts::"+ledgerAccount+":assumed-role/ledger-reader/irsactl-doctor")
		assert.Contains(t, c.Detail, "(account "+ledgerAccount+")")
		assert.Equal(t, doctor.StatusOK, rep.Status)
		var sent []sts.Call
		for _, call := range env.STS.CallLog() {
			if call.Action == sts.ActionAssumeRole {
				sent = append(sent, call)
			}
		}
		require.Len(t, sent, 1, "sts:AssumeRole calls")
		require.NotNil(t, rep.Stats.AssumedRole)
		assert.EqualValues(t, 1, rep.Stats.AssumedRole.Fetches)
		assert.Zero(t, rep.Stats.AssumedRole.Failures)
		assert.Equal(t, ledgerID, sent[0].ExternalID)
		assert.Equal(t, ledgerRole, sent[0].RoleArn)
		assert.Contains(t, sent[0].Caller, ":assumed-role/mcp-server-role/", "called with the base role's credentials")
		assertOnlyDialled(t, log, hostPort(t, env.STS.URL()))
		assertNoGoNames(t, rep)
	})

	// Each refusal names its cause; the trust policy doctor prints is the
	// one that, put on the role, admits the call doctor made.
	for _, tc := range []struct {
		name       string
		trustedBy  func(env *awstest.Env) string
		allow      bool
		externalID string
		fix        []string
	}{
		{"external id required, not sent", func(env *awstest.Env) string { return env.RoleARN }, true, "", []string{"pass --external-id"}},
		{"the role trusts another role", func(env *awstest.Env) string { return "arn:aws:iam::111122223333:role/someone-else" }, true, ledgerID, []string{"Principal.AWS", "irsactl policy trust --assumed-by"}},
		{"no identity policy for sts:AssumeRole", func(env *awstest.Env) string { return env.RoleARN }, false, ledgerID, []string{"identity policy of arn:aws:iam::" + sigv4.DefaultAccount + ":role/mcp-server-role must allow sts:AssumeRole on " + ledgerRole}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := awstest.Start(t)
			useEnv(t, env)
			im2 := trustLedger(t, env, tc.trustedBy(env), tc.allow, withID)
			probe := func(o *doctor.Options) {
				o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole, ExternalID: tc.externalID}
			}
			rep, _ := runDoctor(t, probe)
			wantCheck(t, rep, doctor.CheckSTS, doctor.Pass, "")
			c := wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Fail, doctor.CauseAssumeRoleDenied)
			assert.Contains(t, c.Detail, "AccessDenied")
			assert.Contains(t, c.Detail, env.STS.URL())
			for _, s := range tc.fix {
				assert.Contains(t, c.Fix, s)
			}
			assertNoGoNames(t, rep)
			require.NotEmpty(t, c.Policy, "no trust policy printed")
			want, err := irsa.RoleTrustPolicy(env.RoleARN, func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = tc.externalID })
			require.NoError(t, err)
			assert.JSONEq(t, string(want), string(c.Policy))
			var text strings.Builder
			require.NoError(t, rep.WriteText(&text))
			assert.Contains(t, text.String(), "       policy:\n         {\n")
			if !tc.allow {
				return // the trust policy alone does not help
			}
			// The printed policy admits what doctor sent.
			require.NoError(t, im2.PutRole(ledgerRole, c.Policy))
			rep, _ = runDoctor(t, probe)
			wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Pass, "")
		})
	}

	t.Run("STS unreachable after the base check", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		trustLedger(t, env, env.RoleARN, true)
		rep, _ := runDoctor(t, doctor.BeforeAssume(func() { env.STS.SetDown(true) }), func(o *doctor.Options) {
			o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole}
		})
		wantCheck(t, rep, doctor.CheckSTS, doctor.Pass, "")
		c := wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Fail, doctor.CauseSTSUnreachable)
		assert.Contains(t, c.Detail, env.STS.URL())
		assert.Contains(t, c.Detail, "unreachable")
		assert.Empty(t, c.Policy)
	})

	t.Run("base credentials refused", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		trustLedger(t, env, env.RoleARN, true)
		revoke := func() {
			for _, call := range env.STS.CallLog() {
				if call.Action == "AssumeRoleWithWebIdentity" && call.AccessKeyID != "" {
					env.Registry.Revoke(call.AccessKeyID)
				}
			}
		}
		rep, _ := runDoctor(t, doctor.BeforeAssume(revoke), func(o *doctor.Options) {
			o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole}
		})
		c := wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Fail, doctor.CauseAssumeBaseCredentials)
		assert.Contains(t, c.Detail, "base credentials were refused")
		assert.NotEmpty(t, c.Fix)
		assertNoGoNames(t, rep)
	})

	t.Run("base credentials do not work: not tried", func(t *testing.T) {
		env := awstest.Start(t)
		useEnv(t, env)
		trustLedger(t, env, env.RoleARN, true)
		_, err := env.Issuer.WriteTokenFile(env.TokenFile, oidc.ServiceAccountSubject("mcp", "default"))
		require.NoError(t, err)
		rep, _ := runDoctor(t, func(o *doctor.Options) { o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole} })
		wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Skip, "")
		assert.Zero(t, env.STS.Calls(sts.ActionAssumeRole))
	})

	t.Run("malformed external id", func(t *testing.T) {
		useEnv(t, shared)
		rep, _ := runDoctor(t, func(o *doctor.Options) { o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: ledgerRole, ExternalID: "x"} })
		c := wantCheck(t, rep, doctor.CheckAssumeRole, doctor.Fail, doctor.CauseAssumeRoleInvalid)
		assert.Contains(t, c.Detail, "--external-id must be 2-1224 characters")
		assertNoGoNames(t, rep)
	})
}

func TestExplainAssume(t *testing.T) {
	chain := &irsa.CredentialError{Mode: irsa.AssumedRole, RoleARN: ledgerRole, Code: "ValidationError", Reason: irsa.ErrRoleChainLimit,
		Fix: "the base session's credentials are a role's: set AssumeRoleOptions.Duration to 1h or less",
		Err: &smithy.GenericAPIError{Code: "ValidationError", Message: "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining."}}
	cause, detail, fix := doctor.ExplainAssume(fmt.Errorf("irsa: GetCallerIdentity: %w", chain), ledgerRole, "arn:aws:iam::111122223333:role/app")
	assert.Equal(t, doctor.CauseRoleChainLimit, cause)
	assert.Contains(t, detail, "1 hour session limit")
	assert.Contains(t, fix, "1h or less")
	assert.Empty(t, goName.FindAllString(detail+fix, -1))

	other := &irsa.CredentialError{Mode: irsa.AssumedRole, Code: "RegionDisabledException", Reason: irsa.ErrSTSUnavailable, Fix: "activate STS in this region",
		Err: &smithy.GenericAPIError{Code: "RegionDisabledException", Message: "STS is not activated in this region"}}
	cause, detail, fix = doctor.ExplainAssume(other, ledgerRole, "arn:aws:iam::111122223333:role/app")
	assert.Equal(t, doctor.CauseAssumeRoleFailed, cause)
	assert.Contains(t, detail, "RegionDisabledException")
	assert.Equal(t, "activate STS in this region", fix)
}

func TestAssumedAccount(t *testing.T) {
	p := doctor.AssumeRoleProbe{RoleARN: ledgerRole}
	c := doctor.Assumed(p, irsa.Identity{Account: ledgerAccount, Arn: "arn:aws:sts::" + ledgerAccount + ":assumed-role/ledger-reader/s"})
	assert.Equal(t, doctor.Pass, c.Status)
	c = doctor.Assumed(p, irsa.Identity{Account: "111122223333", Arn: "arn:aws:sts::111122223333:assumed-role/ledger-reader/s"})
	assert.Equal(t, doctor.Warn, c.Status)
	assert.Equal(t, doctor.CauseAssumeRoleAccount, c.Cause)
	assert.Contains(t, c.Detail, "not the account of "+ledgerRole)
}

func TestRoleOfIdentity(t *testing.T) {
	for in, want := range map[string]string{
		"arn:aws:sts::111122223333:assumed-role/app/pod-1":    "arn:aws:iam::111122223333:role/app",
		"arn:aws-cn:sts::111122223333:assumed-role/app/pod-1": "arn:aws-cn:iam::111122223333:role/app",
		"arn:aws:iam::111122223333:user/dev":                  "arn:aws:iam::111122223333:user/dev",
		"arn:aws:sts::111122223333:federated-user/dev":        "arn:aws:sts::111122223333:federated-user/dev",
		"": "",
	} {
		assert.Equal(t, want, doctor.RoleOfIdentity(in), in)
	}
}
