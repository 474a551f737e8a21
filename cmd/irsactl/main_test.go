package main_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/sandbox"
	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/rdsauth"
)

var (
	bin string           // the irsactl binary under test
	sb  *sandbox.Sandbox // stand-ins shared by the tests
)

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	dir, err := os.MkdirTemp("", "irsactl-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	os.Chmod(dir, 0o755) // the nobody test executes the binary from here
	bin = filepath.Join(dir, "irsactl")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "go build: %v\n%s", err, out)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if sb, err = sandbox.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer sb.Close()
	return m.Run()
}

// envOf returns sb's pod environment with PATH and HOME, overridden by
// extra KEY=VALUE pairs (an empty VALUE removes the variable).
func envOf(extra ...string) []string {
	m := map[string]string{"PATH": os.Getenv("PATH"), "HOME": os.TempDir()}
	for _, kv := range append(sb.Environ(), extra...) {
		k, v, _ := strings.Cut(kv, "=")
		m[k] = v
	}
	var out []string
	for k, v := range m {
		if v != "" {
			out = append(out, k+"="+v)
		}
	}
	return out
}

type result struct {
	stdout, stderr string
	code           int
}

func irsactl(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return irsactlCmd(t, env, nil, args...)
}

// goAPIName matches a Go identifier of the library or its dependencies
// (irsa.Options, rdsauth.NewPool, aws.Config, ...), which a person at a
// shell cannot act on.
var goAPIName = regexp.MustCompile(`\b(irsa|rdsauth|elasticacheauth|s3store|secrets|aws|config|stscreds|redis|pgx|pgconn|pgxpool|doctor)\.[A-Z]\w*|\b\w*Options\.[A-Z]\w*`)

func irsactlCmd(t *testing.T, env []string, cred *syscall.Credential, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else {
		require.NoError(t, err, "irsactl %v", args)
	}
	r := result{out.String(), errb.String(), code}
	if len(args) == 0 || args[0] != "policy" { // policy's messages are not this command's
		assert.Empty(t, goAPIName.FindAllString(r.stdout+r.stderr, -1), "irsactl %v names Go API in its output:\n%s%s", args, r.stdout, r.stderr)
	}
	return r
}

func envValue(key string) string {
	for _, kv := range sb.Environ() {
		if k, v, _ := strings.Cut(kv, "="); k == key {
			return v
		}
	}
	return ""
}

func TestTokenRDSAcceptedByFront(t *testing.T) {
	r := irsactl(t, envOf(), "token", "rds", "--db-endpoint", sb.PGFront.Addr(), "--db-user", "app")
	require.Equal(t, 0, r.code, r.stderr)
	tok := strings.TrimSpace(r.stdout)
	_, err := sb.PGFront.VerifyToken(tok, "app", sb.PGFront.Addr())
	require.NoError(t, err, "front refuses the token")
	// And a real login with it, as psql would.
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", sb.PGFront.Port(), sb.PGFront.CAFile()))
	require.NoError(t, err)
	cfg.Password = tok
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	require.NoError(t, err, "login with the printed token")
	defer conn.Close(context.Background())
	res, err := conn.Exec(context.Background(), "SELECT current_user").ReadAll()
	require.NoError(t, err)
	assert.Equal(t, "app", string(res[0].Rows[0][0]))
	assert.NotContains(t, r.stderr, tok, "token on stderr")
}

// podEnv is the environment of a pod of env for irsactl (PATH, HOME and
// env's IRSA variables only).
func podEnv(env *awstest.Env) []string {
	return append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.TempDir()}, env.Environ()...)
}

// dsqlLogin logs in to the DSQL front as role with password, as psql
// would: verify-full against the front's CA, SNI and certificate name the
// cluster endpoint (which does not resolve here: it is dialled at the
// front's address).
func dsqlLogin(t *testing.T, front *pgfront.Front, role, password string) error {
	t.Helper()
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=verify-full sslrootcert=%s",
		front.Hostnames()[0], front.Port(), role, front.CAFile()))
	require.NoError(t, err)
	cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
	cfg.Password = password
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SELECT current_user").ReadAll()
	require.NoError(t, err)
	assert.Equal(t, role, string(res[0].Rows[0][0]))
	return nil
}

// TestTokenDSQLWithItsPolicy: the role gets the policy irsactl policy dsql
// prints, which the DSQL front's IAM evaluates; the tokens irsactl token
// dsql prints log in as the roles that policy allows, and only those.
func TestTokenDSQLWithItsPolicy(t *testing.T) {
	ctx := context.Background()
	require.NoError(t, sb.Postgres.CreateRole(ctx, "admin"))
	env := awstest.Start(t)
	front, err := pgfront.Start(pgfront.Config{Backend: sb.Postgres.SocketPath(), Registry: env.Registry, IAM: env.IAM, Region: env.Region, DSQL: true})
	require.NoError(t, err)
	defer front.Close()
	host := front.Hostnames()[0]
	pod := podEnv(env)

	attach := func(args ...string) {
		t.Helper()
		r := irsactl(t, pod, append([]string{"policy", "dsql", "--account", env.Account, "--db-endpoint", host}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		require.NoError(t, env.AttachPolicy([]byte(r.stdout)))
	}
	token := func(args ...string) (string, string) {
		t.Helper()
		r := irsactl(t, pod, append([]string{"token", "dsql", "--db-endpoint", host}, args...)...)
		require.Equal(t, 0, r.code, r.stderr)
		tok := strings.TrimSpace(r.stdout)
		assert.NotContains(t, r.stderr, tok, "the token on stderr")
		return tok, r.stderr
	}

	attach("--db-user", "app")
	app, said := token("--db-user", "app")
	assert.Contains(t, said, "Action DbConnect,")
	assert.Contains(t, said, "region "+env.Region)
	assert.True(t, strings.HasPrefix(app, host+"/?Action=DbConnect&"), "a DSQL token is signed for the host without its port")
	_, err = front.VerifyToken(app, "app", host)
	require.NoError(t, err, "the DSQL front refuses the printed token")
	require.NoError(t, dsqlLogin(t, front, "app", app), "login as app with the printed token")

	admin, said := token("--admin")
	assert.Contains(t, said, "Action DbConnectAdmin")
	rejected := front.Rejected()
	assert.Error(t, dsqlLogin(t, front, "admin", admin), "admin logged in with a policy for app only")
	assert.Greater(t, front.Rejected(), rejected)

	attach("--admin")
	assert.NoError(t, dsqlLogin(t, front, "admin", admin), "login as admin once the policy allows it")

	// A token for longer than 15 minutes, as DSQL allows; it never
	// outlives the credentials that sign it (an hour here).
	long, said := token("--admin", "--expires", "168h")
	in, err := authtoken.Inspect(long)
	require.NoError(t, err)
	t.Log(said)
	assert.Equal(t, "DbConnectAdmin", in.Action)
	assert.Equal(t, rdsauth.MaxDSQLTokenLifetime, in.Expires.Sub(in.SignedAt), "X-Amz-Expires as asked")
	assert.Contains(t, said, "the credentials that sign it expire before the 168h0m0s asked")
	assert.NoError(t, dsqlLogin(t, front, "admin", long))
}

func TestTokenElastiCacheAcceptedByFront(t *testing.T) {
	r := irsactl(t, envOf(), "token", "elasticache", "--cache", "mcp-cache", "--cache-user", "app")
	require.Equal(t, 0, r.code, r.stderr)
	tok := strings.TrimSpace(r.stdout)
	require.NoError(t, sb.Redis.Verify("app", tok), "front refuses the token")
	rc := redis.NewClient(&redis.Options{Addr: sb.Redis.Addr(), Username: "app", Password: tok, TLSConfig: sb.Redis.ClientTLS(), MaxRetries: -1})
	defer rc.Close()
	assert.NoError(t, rc.Set(context.Background(), "irsactl-test", "ok", time.Minute).Err(), "AUTH with the printed token")
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token", "rds", "--db-endpoint", "mydb.cluster-abc.us-east-1.rds.amazonaws.com", "--db-user", "app"}, 1, ":5432"},
		{[]string{"token", "rds", "--db-user", "app"}, 2, "--db-endpoint"},
		{[]string{"token", "rds", "--db-endpoint", "db:5432"}, 2, "--db-user is required"},
		{[]string{"token", "elasticache", "--cache", "master.x.use1.cache.amazonaws.com", "--cache-user", "app"}, 1, "not the endpoint"},
		{[]string{"token", "elasticache", "--cache", "mcp-cache"}, 2, "--cache-user is required"},
		{[]string{"token", "rds", "--db-endpoint", "mydb.abc.us-east-1.rds.amazonaws.com:5432", "--db-user", "app", "--region", "eu-west-1"}, 1, "is in us-east-1 but --region is eu-west-1"},
		{[]string{"token", "elasticache", "--cache", "mcp-cache", "--cache-user", "app", "--region", "nowhere"}, 1, `--region: region "nowhere"`},
		{[]string{"token", "s3"}, 2, "unknown kind"},
		{[]string{"token", "dsql", "--admin"}, 2, "--db-endpoint HOST is required"},
		{[]string{"token", "dsql", "--db-endpoint", "abc.dsql.us-east-1.on.aws"}, 2, "--admin or --db-user ROLE is required"},
		{[]string{"token", "dsql", "--db-endpoint", "abc.dsql.us-east-1.on.aws", "--admin", "--db-user", "app"}, 2, "name two roles"},
		{[]string{"token", "dsql", "--db-endpoint", "abc.dsql.us-east-1.on.aws", "--admin", "--expires", "200h"}, 2, "--expires 200h0m0s"},
		{[]string{"token", "dsql", "--db-endpoint", "abc.dsql.us-east-1.on.aws", "--admin", "--region", "eu-west-1"}, 2, "abc.dsql.us-east-1.on.aws is in us-east-1"},
		{[]string{"token", "dsql", "--db-endpoint", "postgres://abc.dsql.us-east-1.on.aws", "--admin"}, 1, "want the cluster endpoint"},
		{[]string{"nope"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := irsactl(t, envOf(), tc.args...)
			assert.Equal(t, tc.code, r.code, r.stderr)
			assert.Contains(t, r.stderr, tc.want)
		})
	}
	// In a pod without IRSA, no token from the node role.
	r := irsactl(t, envOf("AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "KUBERNETES_SERVICE_HOST=10.100.0.1"),
		"token", "rds", "--db-endpoint", sb.PGFront.Addr(), "--db-user", "app")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "eks.amazonaws.com/role-arn")
	// No region: the fix is a flag or a variable, not a Go option.
	r = irsactl(t, envOf("AWS_REGION="), "token", "elasticache", "--cache", "mcp-cache", "--cache-user", "app")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "--region")
}

// TestUsageErrorsPrintUsageOnce: a command-line mistake prints the mistake
// and the command's usage exactly once, on stderr, and exits 2; -h prints
// the usage on stdout and exits 0.
func TestUsageErrorsPrintUsageOnce(t *testing.T) {
	cases := []struct {
		args   []string
		usage  string // a line only the usage has
		reason string
	}{
		{[]string{"doctor", "--no-such-flag"}, "Usage: irsactl doctor", "provided but not defined: -no-such-flag"},
		{[]string{"doctor", "--db-endpoint", "db:5432"}, "Usage: irsactl doctor", "--db-endpoint needs --db-user"},
		{[]string{"doctor", "extra"}, "Usage: irsactl doctor", `unexpected argument "extra"`},
		{[]string{"token", "rds", "--user", "app"}, "Usage: irsactl token rds", "provided but not defined: -user"},
		{[]string{"token", "elasticache", "--bogus"}, "Usage: irsactl token elasticache", "provided but not defined: -bogus"},
		{[]string{"token"}, "irsactl token rds --db-endpoint", "missing kind"},
		{[]string{"token", "dsql", "--db-endpoint", "abc.dsql.us-east-1.on.aws"}, "Usage: irsactl token dsql", "--admin or --db-user ROLE is required"},
		{[]string{"doctor", "--external-id", "x"}, "Usage: irsactl doctor", "--external-id needs --assume ROLE_ARN"},
		{[]string{"doctor", "--assume", "arn:aws:iam::12:role/x"}, "Usage: irsactl doctor", `account "12" must be 12 digits`},
		{[]string{"sandbox", "--nope"}, "Usage: irsactl sandbox", "provided but not defined: -nope"},
		{[]string{}, "irsactl doctor [flags]", "missing command"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := irsactl(t, envOf(), tc.args...)
			assert.Equal(t, 2, r.code)
			assert.Empty(t, r.stdout)
			assert.Contains(t, r.stderr, tc.reason)
			assert.Equal(t, 1, strings.Count(r.stderr, tc.usage), "usage printed %d times:\n%s", strings.Count(r.stderr, tc.usage), r.stderr)
			assert.Equal(t, 1, strings.Count(r.stderr, tc.reason), "the mistake is told once:\n%s", r.stderr)
		})
	}
	for _, args := range [][]string{{"doctor", "-h"}, {"token", "rds", "--help"}, {"token", "dsql", "-h"}, {"token", "elasticache", "-h"}, {"sandbox", "-h"}} {
		r := irsactl(t, envOf(), args...)
		assert.Equal(t, 0, r.code, "%v", args)
		assert.Contains(t, r.stdout, "Usage:", "%v", args)
		assert.Empty(t, r.stderr, "%v", args)
	}
}

// TestHelpIsSpecificToEachService: the flags of one service say nothing
// about another's.
func TestHelpIsSpecificToEachService(t *testing.T) {
	rds := irsactl(t, envOf(), "token", "rds", "-h").stdout
	ec := irsactl(t, envOf(), "token", "elasticache", "-h").stdout
	assert.Contains(t, rds, "-db-user")
	assert.NotContains(t, rds, "ElastiCache")
	assert.NotContains(t, rds, "-cache")
	dsql := irsactl(t, envOf(), "token", "dsql", "-h").stdout
	assert.Contains(t, dsql, "-db-user ROLE")
	assert.Contains(t, dsql, "-admin")
	assert.Contains(t, dsql, "DbConnectAdmin")
	assert.NotContains(t, dsql, "ElastiCache")
	assert.NotContains(t, dsql, "rds_iam")
	assert.Contains(t, ec, "-cache-user")
	assert.NotContains(t, ec, "RDS")
	assert.NotContains(t, ec, "database")
	// redis-cli gets the token through REDISCLI_AUTH (ps shows --pass) and
	// verifies the server with --cacert.
	assert.Contains(t, ec, `REDISCLI_AUTH="$(irsactl token elasticache`)
	assert.Contains(t, ec, "--cacert")
	assert.NotContains(t, ec, "--pass")
	// The same thing has the same flag name in every command.
	doc := irsactl(t, envOf(), "doctor", "-h").stdout
	for _, f := range []string{"db-endpoint", "db-user", "db-name", "cache", "cache-endpoint", "cache-user", "serverless", "region", "secret", "bucket"} {
		assert.Regexp(t, `(?m)^  -`+f+`( |$)`, doc, "doctor -h")
	}
	pol := irsactl(t, envOf(), "policy", "s3", "-h").stderr
	assert.Contains(t, pol, "-bucket", "policy s3 names the bucket flag like doctor")
}

func TestVersion(t *testing.T) {
	for _, arg := range []string{"--version", "version"} {
		r := irsactl(t, envOf(), arg)
		require.Equal(t, 0, r.code, r.stderr)
		assert.Regexp(t, `^irsactl \S+ .*go1\.\d+.* `+regexp.QuoteMeta(runtime.GOOS+"/"+runtime.GOARCH)+"\n$", r.stdout)
	}
	// What --version says is what the binary's build information holds:
	// its commit when the go command stamped one (a clone, -buildvcs not
	// false), as `go version -m` reads it.
	out, err := exec.Command("go", "version", "-m", bin).Output()
	require.NoError(t, err)
	r := irsactl(t, envOf(), "--version")
	if m := regexp.MustCompile(`(?m)^\s*build\s+vcs\.revision=([0-9a-f]{12})`).FindSubmatch(out); m != nil {
		assert.Contains(t, r.stdout, " commit "+string(m[1]))
	} else {
		assert.NotContains(t, r.stdout, " commit ")
	}
	m := regexp.MustCompile(`(?m)^\s*mod\s+github.com/irsakit/irsakit\s+(\S+)`).FindSubmatch(out)
	require.NotNil(t, m, "go version -m:\n%s", out)
	assert.True(t, strings.HasPrefix(r.stdout, "irsactl "+string(m[1])+" "), "%q does not start with the module version %s", r.stdout, m[1])
}

func doctorArgs() []string {
	return []string{"doctor", "--json",
		"--db-endpoint", envValue("DATABASE_ENDPOINT"), "--db-user", "app", "--db-name", "app", "--db-ca", envValue("DATABASE_CA_FILE"),
		"--cache-endpoint", envValue("REDIS_ENDPOINT"), "--cache", "mcp-cache", "--cache-user", "app", "--cache-ca", envValue("REDIS_CA_FILE"),
		"--secret", envValue("SECRET_ID")}
}

func parseReport(t *testing.T, r result) doctor.Report {
	t.Helper()
	var rep doctor.Report
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "doctor --json output:\n%s\nstderr: %s", r.stdout, r.stderr)
	return rep
}

func TestDoctorHealthy(t *testing.T) {
	r := irsactl(t, envOf(), doctorArgs()...)
	rep := parseReport(t, r)
	require.Equal(t, 0, r.code, "causes %v\n%s", rep.Causes(), r.stdout)
	assert.Equal(t, doctor.StatusOK, rep.Status)
	for _, name := range []string{"sts", "rds", "elasticache", "secret"} {
		c, _ := rep.Check(name)
		assert.Equal(t, doctor.Pass, c.Status, "%s: %+v", name, c)
	}
	// The caches' counters under stable names.
	var raw struct {
		Stats map[string]map[string]any `json:"stats"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &raw))
	for _, cache := range []string{"session", "rds", "elasticache"} {
		for _, f := range []string{"fetches", "early_refreshes", "failures", "served_stale", "last_refresh", "expires"} {
			assert.Contains(t, raw.Stats[cache], f, "stats.%s", cache)
		}
	}
	assert.Contains(t, raw.Stats["rds"], "entries")
	assert.EqualValues(t, 1, raw.Stats["rds"]["fetches"])

	// Human output by default.
	h := irsactl(t, envOf(), "doctor")
	assert.Equal(t, 0, h.code)
	assert.Contains(t, h.stdout, "Credential mode: web-identity")
	assert.Contains(t, h.stdout, "Result: OK")
	assert.Regexp(t, `\nCaches:\n  session credentials: 1 fetch\(es\)`, h.stdout)
}

// TestDoctorRDSVerifiesTLS: without --db-ca, doctor verifies the database
// against the system roots (which do not hold the sandbox's CA) and names
// the RDS CA bundle; --db-sslmode require logs in but warns.
func TestDoctorRDSVerifiesTLS(t *testing.T) {
	args := []string{"doctor", "--db-endpoint", envValue("DATABASE_ENDPOINT"), "--db-user", "app", "--db-name", "app"}
	r := irsactl(t, envOf(), args...)
	assert.Equal(t, 1, r.code, r.stdout)
	assert.Contains(t, r.stdout, "[FAIL] rds: ")
	assert.Contains(t, r.stdout, "cause: rds-tls-untrusted")
	assert.Contains(t, r.stdout, "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem")
	assert.Contains(t, r.stdout, "--db-ca")

	r = irsactl(t, envOf(), append(args, "--db-sslmode", "require", "--json")...)
	rep := parseReport(t, r)
	assert.Equal(t, 0, r.code, "a warning is not a failure")
	assert.Equal(t, doctor.StatusWarn, rep.Status)
	c, _ := rep.Check("rds")
	assert.Equal(t, doctor.Warn, c.Status, "%+v", c)
	assert.Equal(t, doctor.CauseRDSUnverifiedTLS, c.Cause)
	assert.Contains(t, c.Detail, "not checked")

	h := irsactl(t, envOf(), "doctor", "-h").stdout
	assert.Regexp(t, `-db-sslmode SSLMODE\n\s+[^\n]*\(default "verify-full"\)`, h)
}

// TestDoctorMisconfiguredPod: a pod whose service account lacks the role
// annotation, and one whose STS endpoint does not answer.
func TestDoctorMisconfiguredPod(t *testing.T) {
	r := irsactl(t, envOf("AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "KUBERNETES_SERVICE_HOST=10.100.0.1"), "doctor", "--json")
	rep := parseReport(t, r)
	assert.Equal(t, 1, r.code)
	assert.True(t, rep.HasCause(doctor.CauseNodeRole), "causes %v", rep.Causes())
	assert.Equal(t, doctor.StatusFail, rep.Status)

	closed, err := closedURL()
	require.NoError(t, err)
	h := irsactl(t, envOf("AWS_ENDPOINT_URL_STS="+closed), "doctor")
	assert.Equal(t, 1, h.code)
	assert.Contains(t, h.stdout, "[FAIL] sts: STS "+closed+" (AWS_ENDPOINT_URL_STS): unreachable: connection refused")
	assert.Contains(t, h.stdout, "cause: sts-unreachable")
	assert.Contains(t, h.stdout, "Result: FAIL")
	t.Logf("irsactl doctor in a pod whose STS endpoint refuses connections:\n%s", h.stdout)
}

func TestDoctorGlobalSTSOnlyOnRequest(t *testing.T) {
	// A loopback port nothing listens on stands for the blocked global endpoint.
	l, err := closedURL()
	require.NoError(t, err)
	r := irsactl(t, envOf("AWS_STS_REGIONAL_ENDPOINTS=", "IRSACTL_STS_GLOBAL_ENDPOINT="+l), "doctor", "--json")
	rep := parseReport(t, r)
	_, probed := rep.Check("sts-global")
	assert.False(t, probed, "probed the global STS endpoint without --global-sts")

	r = irsactl(t, envOf("AWS_STS_REGIONAL_ENDPOINTS=", "IRSACTL_STS_GLOBAL_ENDPOINT="+l), "doctor", "--json", "--global-sts")
	rep = parseReport(t, r)
	// A warning, not a failure: the SDK always calls the regional endpoint.
	assert.Equal(t, 0, r.code)
	assert.True(t, rep.HasCause(doctor.CauseSTSGlobalDown), "causes %v", rep.Causes())
	c, _ := rep.Check("sts")
	assert.Equal(t, doctor.Pass, c.Status, "regional STS: %+v", c)
}

// TestDoctorTokenUnreadableAsNobody runs doctor as the nobody user against
// a root-owned 0600 token, the real EACCES a container user without
// fsGroup gets.
func TestDoctorTokenUnreadableAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	dir, err := os.MkdirTemp("", "irsactl-nobody-")
	require.NoError(t, err)
	defer os.RemoveAll(dir)
	require.NoError(t, os.Chmod(dir, 0o755))
	tok, err := os.ReadFile(envValue("AWS_WEB_IDENTITY_TOKEN_FILE"))
	require.NoError(t, err)
	path := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(path, tok, 0o600))
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	r := irsactlCmd(t, envOf("AWS_WEB_IDENTITY_TOKEN_FILE="+path, "HOME="+dir), nobody, "doctor", "--json")
	rep := parseReport(t, r)
	c, _ := rep.Check("token-file")
	assert.Equal(t, 1, r.code)
	assert.Equal(t, doctor.CauseTokenUnreadable, c.Cause)
	assert.Contains(t, c.Detail, "uid 65534")
	assert.Contains(t, c.Fix, "fsGroup")
	// Group-readable, as fsGroup makes the projected volume: now it reads.
	require.NoError(t, os.Chown(path, 0, 65534))
	require.NoError(t, os.Chmod(path, 0o640))
	r = irsactlCmd(t, envOf("AWS_WEB_IDENTITY_TOKEN_FILE="+path, "HOME="+dir), nobody, "doctor", "--json")
	rep = parseReport(t, r)
	c, _ = rep.Check("token-file")
	assert.Equal(t, doctor.Pass, c.Status, "%+v", c)
	assert.Equal(t, 0, r.code, "%v", rep.Causes())
}

// TestSandboxCommand runs irsactl sandbox as a user would, then pastes the
// lines it prints into a shell: irsactl doctor, psql with an RDS IAM token
// and redis-cli with an ElastiCache IAM token all succeed against it.
func TestSandboxCommand(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "sandbox.env")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sandbox", "--env-file", envFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	out, errb := &syncBuffer{}, &syncBuffer{}
	cmd.Stdout, cmd.Stderr = out, errb
	require.NoError(t, cmd.Start())
	defer cmd.Process.Kill()
	var exports []byte
	require.Eventually(t, func() bool {
		b, err := os.ReadFile(envFile)
		exports = b
		return err == nil
	}, 2*time.Minute, 100*time.Millisecond, "sandbox did not become ready")
	env := []string{"PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH"), "HOME=" + dir}
	vars := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(exports))
	for sc.Scan() {
		kv, ok := strings.CutPrefix(sc.Text(), "export ")
		if !ok {
			continue
		}
		k, v, _ := strings.Cut(kv, "=")
		v = strings.Trim(v, "'")
		vars[k] = v
		env = append(env, k+"="+v)
	}
	for _, k := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL_SECRETS_MANAGER", "DATABASE_ENDPOINT", "DATABASE_CA_FILE", "REDIS_ENDPOINT", "REDIS_CA_FILE", "IRSACTL_STS_GLOBAL_ENDPOINT", "AWS_ENDPOINT_URL_S3", "S3_BUCKET", "S3_PREFIX"} {
		assert.NotEmpty(t, vars[k], "sandbox exports no %s", k)
	}
	// The printed commands, after the exports, as a person pastes them.
	_, try, ok := strings.Cut(out.String(), "# Then, in a shell with those exports:\n")
	require.True(t, ok, "no commands to try in:\n%s", out.String())
	lines := strings.Split(strings.TrimSpace(try), "\n")
	require.Len(t, lines, 3, try)
	assert.Contains(t, lines[2], "REDISCLI_AUTH=")
	assert.NotContains(t, try, "--pass")
	for i, want := range []string{"Result: OK", "app", "PONG"} {
		sh := exec.CommandContext(ctx, "bash", "-c", lines[i])
		sh.Env = env
		got, err := sh.CombinedOutput()
		require.NoError(t, err, "%s\n%s", lines[i], got)
		assert.Contains(t, string(got), want, lines[i])
		assert.NotContains(t, string(got), "X-Amz-Signature", "a token was printed")
	}
	r := irsactl(t, env, "doctor", "--json",
		"--db-endpoint", vars["DATABASE_ENDPOINT"], "--db-user", vars["DATABASE_USER"], "--db-name", vars["DATABASE_NAME"], "--db-ca", vars["DATABASE_CA_FILE"],
		"--cache-endpoint", vars["REDIS_ENDPOINT"], "--cache", vars["REDIS_CACHE_NAME"], "--cache-user", vars["REDIS_USER"], "--cache-ca", vars["REDIS_CA_FILE"],
		"--secret", vars["SECRET_ID"], "--bucket", vars["S3_BUCKET"]+"/"+vars["S3_PREFIX"])
	rep := parseReport(t, r)
	require.Equal(t, 0, r.code, "doctor against the sandbox: %v\n%s", rep.Causes(), r.stdout)
	c, _ := rep.Check("s3")
	assert.Equal(t, doctor.Pass, c.Status, "doctor's s3 check against the sandbox: %+v", c)
	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	require.NoError(t, cmd.Wait(), errb.String())
	for _, f := range []string{envFile, vars["AWS_WEB_IDENTITY_TOKEN_FILE"], vars["DATABASE_CA_FILE"]} {
		_, err := os.Stat(f)
		assert.True(t, os.IsNotExist(err), "%s left behind after SIGTERM", f)
	}
}

// syncBuffer collects a process's output while the test reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestSandboxS3Policy: the sandbox's role may use exactly the bucket
// prefix it exports (s3store.Policy), enforced by its S3 stand-in.
func TestSandboxS3Policy(t *testing.T) {
	vars := map[string]string{}
	for _, kv := range sb.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		vars[k] = v
	}
	bucket, prefix := vars["S3_BUCKET"], vars["S3_PREFIX"]
	require.NotEmpty(t, bucket)
	require.NotEmpty(t, prefix)
	require.Equal(t, sb.S3.URL(), vars["AWS_ENDPOINT_URL_S3"])
	require.Equal(t, "true", vars["S3_PATH_STYLE"])
	role := sb.Env.RoleARN
	for _, tc := range []struct {
		action, resource string
		ok               bool
	}{
		{"s3:PutObject", "arn:aws:s3:::" + bucket + "/" + prefix + "1.json", true},
		{"s3:GetObject", "arn:aws:s3:::" + bucket + "/" + prefix + "1.json", true},
		{"s3:DeleteObject", "arn:aws:s3:::" + bucket + "/" + prefix + "1.json", true},
		{"s3:GetObject", "arn:aws:s3:::" + bucket + "/other/1.json", false},
		{"s3:PutObject", "arn:aws:s3:::another-bucket/" + prefix + "1.json", false},
	} {
		assert.Equal(t, tc.ok, sb.Env.IAM.Authorize(role, tc.action, tc.resource), "%s on %s", tc.action, tc.resource)
	}
	r, _ := sb.Env.IAM.Role(role)
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{{prefix, true}, {"", false}, {"other/", false}} {
		assert.Equal(t, tc.ok, iam.Evaluate(r.Policies, "s3:ListBucket", "arn:aws:s3:::"+bucket, map[string]string{"s3:prefix": tc.prefix}), "s3:ListBucket with s3:prefix %q", tc.prefix)
	}
}
