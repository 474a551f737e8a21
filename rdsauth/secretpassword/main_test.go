package secretpassword_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/rdsauth/secretpassword"
	"github.com/irsakit/irsakit/secrets"
)

// One IRSA environment, one Secrets Manager stand-in and one real
// PostgreSQL that checks passwords (SCRAM) on TCP serve every test.
var (
	env *awstest.Env
	srv *standin.Server
	pg  *procs.Postgres
)

// rotatorRole is what a rotation function runs as: it may stage and
// promote versions of the database secrets.
const rotatorRole = "arn:aws:iam::111122223333:role/rotator"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "secretpassword tests:", err)
		return 1
	}
	var err error
	if env, err = awstest.New(func(o *awstest.Options) { o.Region = "eu-west-1" }); err != nil {
		return fail(err)
	}
	defer env.Close()
	policy, err := secrets.Policy(env.Region, env.Account, []string{"rds/*"})
	if err != nil {
		return fail(err)
	}
	if err := env.AttachPolicy([]byte(policy)); err != nil {
		return fail(err)
	}
	rotate := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret",` +
		`"secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage"],"Resource":"arn:aws:secretsmanager:` + env.Region + `:` + env.Account + `:secret:rds/*"}]}`
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if err := env.IAM.PutRole(rotatorRole, []byte(trust), []byte(rotate)); err != nil {
		return fail(err)
	}
	srv = standin.New(env.Registry, env.IAM, func(o *standin.Options) { o.Region = env.Region })
	if _, err := srv.Start(); err != nil {
		return fail(err)
	}
	defer srv.Close()
	if pg, err = procs.StartPostgres(ctx); err != nil {
		return fail(err)
	}
	defer pg.Close()
	// The server trusts its socket (the superuser's setup path) and checks
	// passwords on TCP, where the pools connect.
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(pg.Dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fail(err)
	}
	if err := pg.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fail(err)
	}
	// The tests count the logins the server refused in its log.
	if _, err := os.Stat(serverLog()); err != nil {
		return fail(fmt.Errorf("the server log moved: %w", err))
	}
	return m.Run()
}

// serverLog is where procs.Postgres writes the server's messages; a
// refused login is logged there before the client is told.
func serverLog() string { return filepath.Join(pg.Dir, "postgres.log") }

// appConfig is the pod's configuration: web identity through the STS
// stand-in, Secrets Manager at the stand-in, no SDK retries.
func appConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := env.Config(context.Background())
	require.NoError(t, err)
	cfg.BaseEndpoint = aws.String(srv.URL())
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}

// rotator is a Secrets Manager client signing as the rotation role.
func rotator(t testing.TB) *sm.Client {
	t.Helper()
	c, err := env.Registry.IssueSession(rotatorRole, "rotation", time.Hour)
	require.NoError(t, err)
	return sm.NewFromConfig(aws.Config{
		Region:       env.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	})
}

func newCache(t testing.TB, optFns ...func(*secrets.Options)) *secrets.Cache {
	t.Helper()
	c, err := secrets.New(appConfig(t), optFns...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

var seq atomic.Int64

// newRole creates a login role with its own database and password, and
// the database secret describing it; it returns the role and secret names.
func newRole(t *testing.T, password string) (role, secretName string) {
	t.Helper()
	return newRoleWith(t, password, secretFor)
}

// newRoleWith is newRole with the secret's content written by layout.
func newRoleWith(t *testing.T, password string, layout func(role, password string) string) (role, secretName string) {
	t.Helper()
	ctx := context.Background()
	role = "rot" + strconv.FormatInt(seq.Add(1), 10)
	require.NoError(t, pg.CreateRole(ctx, role))
	setPassword(t, role, password)
	secretName = "rds/" + role
	_, _, err := srv.CreateString(secretName, layout(role, password))
	require.NoError(t, err)
	return role, secretName
}

func setPassword(t *testing.T, role, password string) {
	t.Helper()
	require.NoError(t, pg.Exec(context.Background(), fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", role, password)))
}

// secretFor is the layout of a secret that names its database.
func secretFor(role, password string) string {
	return fmt.Sprintf(`{"engine":"postgres","host":"127.0.0.1","port":%d,"dbname":%q,"username":%q,"password":%q}`, pg.Port, role, role, password)
}

// masterSecretFor is the layout of a secret RDS manages itself: user and
// password only, the hosts come from the connection string.
func masterSecretFor(role, password string) string {
	return fmt.Sprintf(`{"username":%q,"password":%q}`, role, password)
}

// fixture is one application's view of one database role: the role's
// secret, a cache, the hook's log and a count of the TCP connections its
// configurations dial.
type fixture struct {
	t      *testing.T
	role   string
	name   string // of the secret
	layout func(role, password string) string
	cache  *secrets.Cache
	logs   lockedBuffer
	dials  atomic.Int64
	// gate, when set before connecting, runs before each dial.
	gate func(ctx context.Context) error
}

func newFixture(t *testing.T, password string) *fixture {
	t.Helper()
	return newFixtureWith(t, password, secretFor)
}

func newFixtureWith(t *testing.T, password string, layout func(role, password string) string) *fixture {
	t.Helper()
	f := &fixture{t: t, layout: layout}
	f.role, f.name = newRoleWith(t, password, layout)
	f.cache = newCache(t) // TTL one hour: within a test only a refusal brings a rotation in
	return f
}

// hook is the BeforeConnect under test, logging to f.logs.
func (f *fixture) hook() func(context.Context, *pgx.ConnConfig) error {
	return secretpassword.BeforeConnect(f.cache, f.name, func(o *secretpassword.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(&f.logs, nil))
	})
}

func (f *fixture) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	f.dials.Add(1)
	if f.gate != nil {
		if err := f.gate(ctx); err != nil {
			return nil, err
		}
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}

// pool opens a pgxpool on connString with the hook, dialling through f.
func (f *fixture) pool(connString string, edit ...func(*pgxpool.Config)) *pgxpool.Pool {
	f.t.Helper()
	cfg, err := pgxpool.ParseConfig(connString + " pool_max_conns=20")
	require.NoError(f.t, err)
	cfg.ConnConfig.DialFunc = f.dial
	cfg.BeforeConnect = f.hook()
	for _, fn := range edit {
		fn(cfg)
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(f.t, err)
	f.t.Cleanup(pool.Close)
	return pool
}

// refusedLogins counts the logins of f's role the server refused for
// their password.
func (f *fixture) refusedLogins() int {
	f.t.Helper()
	b, err := os.ReadFile(serverLog())
	require.NoError(f.t, err)
	return strings.Count(string(b), `password authentication failed for user "`+f.role+`"`)
}

// counts is what one step cost: Secrets Manager fetches, TCP connections
// dialled, logins the server refused.
type counts struct{ fetches, dials, refused int }

func (f *fixture) counts() counts {
	return counts{int(f.cache.Fetches()), int(f.dials.Load()), f.refusedLogins()}
}

// since reports the counts since before.
func (f *fixture) since(before counts) counts {
	now := f.counts()
	return counts{now.fetches - before.fetches, now.dials - before.dials, now.refused - before.refused}
}

// rotation is what a single-user rotation function does to f's secret,
// one step per method: createSecret (done by rotate) stores the new
// password as AWSPENDING, setSecret changes it in the database,
// finishSecret moves AWSCURRENT to it.
type rotation struct {
	f        *fixture
	password string
	token    string // the new version's id
}

func (f *fixture) rotate(password string) *rotation {
	f.t.Helper()
	r := &rotation{f: f, password: password, token: fmt.Sprintf("%08d-0000-4000-8000-%012d", seq.Add(1), len(password))}
	_, err := rotator(f.t).PutSecretValue(context.Background(), &sm.PutSecretValueInput{SecretId: aws.String(f.name),
		ClientRequestToken: aws.String(r.token), SecretString: aws.String(f.layout(f.role, password)), VersionStages: []string{"AWSPENDING"}})
	require.NoError(f.t, err)
	return r
}

func (r *rotation) setSecret() { setPassword(r.f.t, r.f.role, r.password) }

func (r *rotation) finishSecret() {
	t := r.f.t
	t.Helper()
	ctx := context.Background()
	rot := rotator(t)
	desc, err := rot.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(r.f.name)})
	require.NoError(t, err)
	var current string
	for id, stages := range desc.VersionIdsToStages {
		if slices.Contains(stages, "AWSCURRENT") {
			current = id
		}
	}
	require.NotEmpty(t, current)
	_, err = rot.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(r.f.name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(r.token), RemoveFromVersionId: aws.String(current)})
	require.NoError(t, err)
}

// all runs the three steps.
func (r *rotation) all() *rotation {
	r.setSecret()
	r.finishSecret()
	return r
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
