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
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/sandbox"
	"github.com/irsakit/irsakit/internal/awstest/iam"
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
	} else if err != nil {
		t.Fatalf("irsactl %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
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
	r := irsactl(t, envOf(), "token", "rds", "--endpoint", sb.PGFront.Addr(), "--user", "app")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if _, err := sb.PGFront.VerifyToken(tok, "app", sb.PGFront.Addr()); err != nil {
		t.Fatalf("front refuses the token: %v", err)
	}
	// And a real login with it, as psql would.
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", sb.PGFront.Port(), sb.PGFront.CAFile()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	conn, err := pgconn.ConnectConfig(context.Background(), cfg)
	if err != nil {
		t.Fatalf("login with the printed token: %v", err)
	}
	defer conn.Close(context.Background())
	res, err := conn.Exec(context.Background(), "SELECT current_user").ReadAll()
	if err != nil || string(res[0].Rows[0][0]) != "app" {
		t.Fatalf("current_user: %v %v", res, err)
	}
	if strings.Contains(r.stderr, tok) {
		t.Error("token on stderr")
	}
}

func TestTokenElastiCacheAcceptedByFront(t *testing.T) {
	r := irsactl(t, envOf(), "token", "elasticache", "--cache", "mcp-cache", "--user", "app")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	tok := strings.TrimSpace(r.stdout)
	if err := sb.Redis.Verify("app", tok); err != nil {
		t.Fatalf("front refuses the token: %v", err)
	}
	rc := redis.NewClient(&redis.Options{Addr: sb.Redis.Addr(), Username: "app", Password: tok, TLSConfig: sb.Redis.ClientTLS(), MaxRetries: -1})
	defer rc.Close()
	if err := rc.Set(context.Background(), "irsactl-test", "ok", time.Minute).Err(); err != nil {
		t.Fatalf("AUTH with the printed token: %v", err)
	}
}

func TestTokenErrors(t *testing.T) {
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"token", "rds", "--endpoint", "mydb.cluster-abc.us-east-1.rds.amazonaws.com", "--user", "app"}, 1, ":5432"},
		{[]string{"token", "rds", "--user", "app"}, 2, "--endpoint"},
		{[]string{"token", "elasticache", "--cache", "master.x.use1.cache.amazonaws.com", "--user", "app"}, 1, "not the endpoint"},
		{[]string{"token", "s3"}, 2, "unknown kind"},
		{[]string{"nope"}, 2, "unknown command"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			r := irsactl(t, envOf(), tc.args...)
			if r.code != tc.code || !strings.Contains(r.stderr, tc.want) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tc.code, tc.want)
			}
		})
	}
	// In a pod without IRSA, no token from the node role.
	r := irsactl(t, envOf("AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "KUBERNETES_SERVICE_HOST=10.100.0.1"),
		"token", "rds", "--endpoint", sb.PGFront.Addr(), "--user", "app")
	if r.code != 1 || !strings.Contains(r.stderr, "eks.amazonaws.com/role-arn") {
		t.Fatalf("node-role guard: exit %d %s", r.code, r.stderr)
	}
}

func doctorArgs() []string {
	return []string{"doctor", "--json",
		"--rds", envValue("DATABASE_ENDPOINT"), "--db-user", "app", "--db-name", "app", "--rds-ca", envValue("DATABASE_CA_FILE"),
		"--redis", envValue("REDIS_ENDPOINT"), "--cache", "mcp-cache", "--user", "app", "--redis-ca", envValue("REDIS_CA_FILE"),
		"--secret", envValue("SECRET_ID")}
}

func parseReport(t *testing.T, r result) doctor.Report {
	t.Helper()
	var rep doctor.Report
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("doctor --json output: %v\n%s\nstderr: %s", err, r.stdout, r.stderr)
	}
	return rep
}

func TestDoctorHealthy(t *testing.T) {
	r := irsactl(t, envOf(), doctorArgs()...)
	rep := parseReport(t, r)
	if r.code != 0 || rep.Failed() {
		t.Fatalf("exit %d, causes %v\n%s", r.code, rep.Causes(), r.stdout)
	}
	for _, name := range []string{"sts", "rds", "elasticache", "secret"} {
		if c, _ := rep.Check(name); c.Status != doctor.Pass {
			t.Errorf("%s: %+v", name, c)
		}
	}
	// Human output by default.
	h := irsactl(t, envOf(), "doctor")
	if h.code != 0 || !strings.Contains(h.stdout, "Credential mode: web-identity") || !strings.Contains(h.stdout, "Result: OK") {
		t.Fatalf("human output (exit %d):\n%s", h.code, h.stdout)
	}
}

func TestDoctorNodeRoleExitsNonZero(t *testing.T) {
	r := irsactl(t, envOf("AWS_ROLE_ARN=", "AWS_WEB_IDENTITY_TOKEN_FILE=", "KUBERNETES_SERVICE_HOST=10.100.0.1"), "doctor", "--json")
	rep := parseReport(t, r)
	if r.code != 1 || !rep.HasCause(doctor.CauseNodeRole) {
		t.Fatalf("exit %d causes %v", r.code, rep.Causes())
	}
}

func TestDoctorGlobalSTSUnreachable(t *testing.T) {
	// A loopback port nothing listens on stands for the blocked global endpoint.
	l, err := closedURL()
	if err != nil {
		t.Fatal(err)
	}
	r := irsactl(t, envOf("AWS_STS_REGIONAL_ENDPOINTS="), "doctor", "--json", "--sts-global-endpoint", l)
	rep := parseReport(t, r)
	// A warning, not a failure: the SDK always calls the regional endpoint.
	if r.code != 0 || !rep.HasCause(doctor.CauseSTSGlobalDown) {
		t.Fatalf("exit %d causes %v", r.code, rep.Causes())
	}
	if c, _ := rep.Check("sts"); c.Status != doctor.Pass {
		t.Fatalf("regional STS: %+v", c)
	}
}

// TestDoctorTokenUnreadableAsNobody runs doctor as the nobody user against
// a root-owned 0600 token, the real EACCES a container user without
// fsGroup gets.
func TestDoctorTokenUnreadableAsNobody(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to switch to nobody")
	}
	dir, err := os.MkdirTemp("", "irsactl-nobody-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(envValue("AWS_WEB_IDENTITY_TOKEN_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "token")
	if err := os.WriteFile(path, tok, 0o600); err != nil {
		t.Fatal(err)
	}
	nobody := &syscall.Credential{Uid: 65534, Gid: 65534}
	r := irsactlCmd(t, envOf("AWS_WEB_IDENTITY_TOKEN_FILE="+path, "HOME="+dir), nobody, "doctor", "--json")
	rep := parseReport(t, r)
	c, _ := rep.Check("token-file")
	if r.code != 1 || c.Cause != doctor.CauseTokenUnreadable || !strings.Contains(c.Detail, "uid 65534") || !strings.Contains(c.Fix, "fsGroup") {
		t.Fatalf("exit %d, token-file %+v", r.code, c)
	}
	// Group-readable, as fsGroup makes the projected volume: now it reads.
	if err := os.Chown(path, 0, 65534); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	r = irsactlCmd(t, envOf("AWS_WEB_IDENTITY_TOKEN_FILE="+path, "HOME="+dir), nobody, "doctor", "--json")
	rep = parseReport(t, r)
	if c, _ := rep.Check("token-file"); c.Status != doctor.Pass || r.code != 0 {
		t.Fatalf("with fsGroup-style permissions: exit %d %+v %v", r.code, c, rep.Causes())
	}
}

func TestSandboxCommand(t *testing.T) {
	dir := t.TempDir()
	envFile := filepath.Join(dir, "sandbox.env")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "sandbox", "--env-file", envFile)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var exports []byte
	for exports == nil {
		if b, err := os.ReadFile(envFile); err == nil {
			exports = b
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("sandbox did not become ready: %s", errb.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
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
		if vars[k] == "" {
			t.Errorf("sandbox exports no %s", k)
		}
	}
	r := irsactl(t, env, "doctor", "--json",
		"--rds", vars["DATABASE_ENDPOINT"], "--db-user", vars["DATABASE_USER"], "--db-name", vars["DATABASE_NAME"], "--rds-ca", vars["DATABASE_CA_FILE"],
		"--redis", vars["REDIS_ENDPOINT"], "--cache", vars["REDIS_CACHE_NAME"], "--user", vars["REDIS_USER"], "--redis-ca", vars["REDIS_CA_FILE"],
		"--secret", vars["SECRET_ID"], "--s3", vars["S3_BUCKET"]+"/"+vars["S3_PREFIX"])
	rep := parseReport(t, r)
	if r.code != 0 {
		t.Fatalf("doctor against the sandbox: exit %d %v\n%s", r.code, rep.Causes(), r.stdout)
	}
	if c, _ := rep.Check("s3"); c.Status != doctor.Pass {
		t.Errorf("doctor's s3 check against the sandbox: %+v", c)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("sandbox exit: %v\n%s", err, errb.String())
	}
	for _, f := range []string{envFile, vars["AWS_WEB_IDENTITY_TOKEN_FILE"], vars["DATABASE_CA_FILE"]} {
		if _, err := os.Stat(f); !os.IsNotExist(err) {
			t.Errorf("%s left behind after SIGTERM", f)
		}
	}
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
	if bucket == "" || prefix == "" || vars["AWS_ENDPOINT_URL_S3"] != sb.S3.URL() || vars["S3_PATH_STYLE"] != "true" {
		t.Fatalf("sandbox S3 environment: %v", vars)
	}
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
		if got := sb.Env.IAM.Authorize(role, tc.action, tc.resource); got != tc.ok {
			t.Errorf("%s on %s: allowed=%v, want %v", tc.action, tc.resource, got, tc.ok)
		}
	}
	r, _ := sb.Env.IAM.Role(role)
	for _, tc := range []struct {
		prefix string
		ok     bool
	}{{prefix, true}, {"", false}, {"other/", false}} {
		if got := iam.Evaluate(r.Policies, "s3:ListBucket", "arn:aws:s3:::"+bucket, map[string]string{"s3:prefix": tc.prefix}); got != tc.ok {
			t.Errorf("s3:ListBucket with s3:prefix %q: allowed=%v, want %v", tc.prefix, got, tc.ok)
		}
	}
}
