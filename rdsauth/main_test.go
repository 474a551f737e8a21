package rdsauth_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/rdsauth"
)

// The servers every test and benchmark of the package shares: one real
// PostgreSQL, two verifying TLS fronts on it (for failover), and the AWS
// stand-ins, all on one fake clock that starts at the real time.
var (
	clk    *clock.Fake
	env    *awstest.Env
	pg     *procs.Postgres
	front  *pgfront.Front
	front2 *pgfront.Front
	// dsqlFront stands in for an Aurora DSQL cluster endpoint
	// (dsqlFront.Hostnames()[0]), its certificate from dsqlFront.CAFile().
	dsqlFront *pgfront.Front
	// caBundle holds both fronts' CAs.
	caBundle string
	authLog  eventLog
)

const plainPassword = "plain-pw"

type eventLog struct {
	mu     sync.Mutex
	events []pgfront.AuthEvent
}

func (l *eventLog) add(ev pgfront.AuthEvent) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

// since returns the events recorded after mark.
func (l *eventLog) since(mark int) []pgfront.AuthEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]pgfront.AuthEvent(nil), l.events[mark:]...)
}

func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "rdsauth tests:", err)
		return 1
	}
	clk = clock.NewFake(time.Now())
	var err error
	env, err = awstest.New(func(o *awstest.Options) { o.Clock = clk })
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	pg, err = procs.StartPostgres(ctx)
	if err != nil {
		return fail(err)
	}
	defer pg.Close()
	for _, r := range []string{"app", "other", "plain", "admin"} {
		if err := pg.CreateRole(ctx, r); err != nil {
			return fail(err)
		}
	}
	for _, f := range []**pgfront.Front{&front, &front2} {
		*f, err = pgfront.Start(pgfront.Config{
			Backend:   pg.SocketPath(),
			Registry:  env.Registry,
			IAM:       env.IAM,
			Region:    env.Region,
			Passwords: map[string]string{"plain": plainPassword},
			OnAuth:    authLog.add,
		})
		if err != nil {
			return fail(err)
		}
		defer (*f).Close()
	}
	dsqlFront, err = pgfront.Start(pgfront.Config{
		Backend:  pg.SocketPath(),
		Registry: env.Registry,
		IAM:      env.IAM,
		Region:   env.Region,
		DSQL:     true,
		OnAuth:   authLog.add,
	})
	if err != nil {
		return fail(err)
	}
	defer dsqlFront.Close()
	caBundle = env.Dir + "/rds-ca-bundle.pem"
	if err := os.WriteFile(caBundle, append(front.CAPEM(), front2.CAPEM()...), 0o644); err != nil {
		return fail(err)
	}
	// The role may connect as app (and only app): the policy rdsauth
	// generates, loaded as it is.
	policy, err := rdsauth.Policy(front.Region(), front.Account(), front.ResourceID(), []string{"app"})
	if err != nil {
		return fail(err)
	}
	if err := env.AttachPolicy(policy); err != nil {
		return fail(err)
	}
	// And to the DSQL cluster as admin and as a custom role.
	if policy, err = rdsauth.DSQLPolicy(dsqlFront.Region(), dsqlFront.Account(), dsqlFront.ClusterID(), []string{"admin", "app"}); err != nil {
		return fail(err)
	}
	if err := env.AttachPolicy(policy); err != nil {
		return fail(err)
	}
	return m.Run()
}

// dsn is a connection string to the first front as user, verify-full.
func dsn(user string, extra string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s %s",
		front.Port(), user, user, caBundle, extra)
}

// sessionConfig is the pod's aws.Config: web identity through the STS
// stand-in, region us-east-1.
func sessionConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := env.Config(context.Background())
	require.NoError(t, err)
	return cfg
}

// fakeClock makes a TokenSource use the shared fake clock.
func fakeClock(o *rdsauth.Options) { o.Clock = clk }

// switchableCreds hands out role credentials from the registry; tests swap
// them (rotation, revocation) and count retrievals.
type switchableCreds struct {
	cur       atomic.Pointer[aws.Credentials]
	retrieves atomic.Int64
}

func newSwitchableCreds(t testing.TB, ttl time.Duration) *switchableCreds {
	s := &switchableCreds{}
	s.rotate(t, ttl)
	return s
}

func (s *switchableCreds) rotate(t testing.TB, ttl time.Duration) aws.Credentials {
	t.Helper()
	c, err := env.Registry.IssueSession(env.RoleARN, "rdsauth-test", ttl)
	require.NoError(t, err)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires}
	s.cur.Store(&creds)
	return creds
}

func (s *switchableCreds) Retrieve(context.Context) (aws.Credentials, error) {
	s.retrieves.Add(1)
	return *s.cur.Load(), nil
}
