package rdsauth_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/rdsauth"
)

func newPool(t *testing.T, connString string, cfg aws.Config, optFns ...func(*rdsauth.Options)) (*pgxpool.Pool, *rdsauth.TokenSource) {
	t.Helper()
	poolCfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		t.Fatal(err)
	}
	src, err := rdsauth.ConfigurePool(poolCfg, cfg, append([]func(*rdsauth.Options){fakeClock}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool, src
}

// acquireAll holds n distinct connections at once.
func acquireAll(ctx context.Context, t *testing.T, pool *pgxpool.Pool, n int) []*pgxpool.Conn {
	t.Helper()
	conns := make([]*pgxpool.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = pool.Acquire(ctx) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			for _, c := range conns {
				if c != nil {
					c.Release()
				}
			}
			t.Fatal(err)
		}
	}
	return conns
}

func TestPoolOf20RunsQueries(t *testing.T) {
	ctx := context.Background()
	mark := authLog.mark()
	accepted := front.Accepted()
	pool, src := newPool(t, dsn("app", "pool_max_conns=20"), sessionConfig(t))
	conns := acquireAll(ctx, t, pool, 20)
	pids := map[uint32]bool{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for _, c := range conns {
		wg.Go(func() {
			var user string
			var pid uint32
			var sum int
			err := c.QueryRow(ctx, "SELECT current_user, pg_backend_pid(), (SELECT sum(g) FROM generate_series(1, 100) g)").Scan(&user, &pid, &sum)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				t.Error(err)
				return
			}
			if user != "app" || sum != 5050 {
				t.Errorf("got %s %d", user, sum)
			}
			pids[pid] = true
		})
	}
	wg.Wait()
	for _, c := range conns {
		c.Release()
	}
	if len(pids) != 20 {
		t.Errorf("%d backends, want 20", len(pids))
	}
	if got := front.Accepted() - accepted; got != 20 {
		t.Errorf("front accepted %d logins, want 20", got)
	}
	if src.Mints() != 1 {
		t.Errorf("minted %d tokens for 20 connections, want 1", src.Mints())
	}
	for _, ev := range authLog.since(mark) {
		if !ev.IAM || ev.Err != nil || ev.Host != front.Addr() {
			t.Errorf("auth event %+v", ev)
		}
	}
	if st := pool.Stat(); st.MaxConns() != 20 {
		t.Errorf("MaxConns = %d", st.MaxConns())
	}
}

func TestEstablishedConnectionsOutliveTheToken(t *testing.T) {
	ctx := context.Background()
	pool, src := newPool(t, dsn("app", "pool_max_conns=4"), sessionConfig(t))
	conns := acquireAll(ctx, t, pool, 4)
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	advance(t, 20*time.Minute) // the token is now refused by RDS
	if _, err := front.VerifyToken(first.Value(), "app", front.Addr()); err == nil {
		t.Fatal("front still accepts a 20-minute-old token")
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatalf("established connection broke after the token expired: %v", err)
		}
	}
	// A new connection logs in with a new token.
	mark := authLog.mark()
	extra, err := pgx.ConnectConfig(ctx, connConfigFromPool(t, pool))
	if err != nil {
		t.Fatal(err)
	}
	extra.Close(ctx)
	evs := authLog.since(mark)
	if len(evs) != 1 || evs[0].Err != nil || evs[0].SignedAt.Before(clk.Now().Add(-time.Second)) {
		t.Errorf("new connection did not use a fresh token: %+v", evs)
	}
	for _, c := range conns {
		c.Release()
	}
	if src.Mints() != 2 {
		t.Errorf("mints = %d, want 2", src.Mints())
	}
}

// connConfigFromPool returns a copy of the pool's connection config with
// its BeforeConnect applied, as the pool would for a new connection.
func connConfigFromPool(t *testing.T, pool *pgxpool.Pool) *pgx.ConnConfig {
	t.Helper()
	cc := pool.Config().ConnConfig.Copy()
	if err := pool.Config().BeforeConnect(context.Background(), cc); err != nil {
		t.Fatal(err)
	}
	return cc
}

func TestServerRestartRecoversWithFreshTokens(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	pool, src := newPool(t, dsn("app", "pool_max_conns=4"), sessionConfig(t))
	for _, c := range acquireAll(ctx, t, pool, 4) {
		c.Release()
	}
	minted := src.Mints()

	front.Stop()
	if err := pg.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	advance(t, 16*time.Minute) // the tokens of the old connections are dead
	restartedAt := clk.Now()
	if err := front.Start(); err != nil {
		t.Fatal(err)
	}
	mark := authLog.mark()
	// Every pooled connection is dead; queries fail until the pool has
	// replaced them, then succeed.
	var err error
	for {
		var one int
		if err = pool.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("pool did not recover: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range acquireAll(ctx, t, pool, 4) {
		c.Release()
	}
	evs := authLog.since(mark)
	if len(evs) == 0 {
		t.Fatal("no new logins")
	}
	for _, ev := range evs {
		if ev.Err != nil || ev.SignedAt.Before(restartedAt.Truncate(time.Second)) {
			t.Errorf("login after restart with %+v", ev)
		}
	}
	if src.Mints() <= minted {
		t.Error("no fresh token minted after the restart")
	}
}

// A token refused at login (here: its credentials were revoked) is
// replaced by a freshly minted one and the same connect succeeds.
func TestRefusedTokenRetriedOnceWithFreshToken(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, time.Hour)
	poolCfg, err := pgxpool.ParseConfig(dsn("app", ""))
	if err != nil {
		t.Fatal(err)
	}
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	pool.Reset() // drop the idle connection: the next query must connect

	old := creds.cur.Load()
	env.Registry.Revoke(old.AccessKeyID)
	creds.rotate(t, time.Hour)
	accepted, rejected, minted := front.Accepted(), front.Rejected(), src.Mints()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("connect with a refused cached token did not recover: %v", err)
	}
	if front.Rejected()-rejected != 1 || front.Accepted()-accepted != 1 || src.Mints()-minted != 1 {
		t.Errorf("rejected %d, accepted %d, minted %d; want 1, 1, 1",
			front.Rejected()-rejected, front.Accepted()-accepted, src.Mints()-minted)
	}

	t.Run("never a loop", func(t *testing.T) {
		pool.Reset()
		env.IAM.DetachPolicies(env.RoleARN) // every token is now refused
		defer restorePolicy(t)
		advance(t, time.Second) // so a fresh token differs from the cached one
		rejected, minted := front.Rejected(), src.Mints()
		_, err := pool.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28000" || !strings.Contains(pgErr.Message, `PAM authentication failed for user "app"`) {
			t.Fatalf("err = %v, want RDS's 28000", err)
		}
		if got := front.Rejected() - rejected; got != 2 {
			t.Errorf("%d login attempts, want 2 (one retry)", got)
		}
		if got := src.Mints() - minted; got != 1 {
			t.Errorf("%d tokens minted, want 1", got)
		}
		if strings.Contains(err.Error(), "X-Amz-Signature") {
			t.Error("error shows a token")
		}
	})

	t.Run("28P01 ends the connect, next connect mints", func(t *testing.T) {
		// The front's password users answer a wrong password with 28P01.
		plainCfg, err := pgxpool.ParseConfig(dsn("plain", ""))
		if err != nil {
			t.Fatal(err)
		}
		psrc, err := rdsauth.NewTokenSource(front.Addr(), "plain", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
		if err != nil {
			t.Fatal(err)
		}
		defer psrc.Close()
		plainCfg.BeforeConnect = rdsauth.BeforeConnect(psrc)
		ppool, err := pgxpool.NewWithConfig(ctx, plainCfg)
		if err != nil {
			t.Fatal(err)
		}
		defer ppool.Close()
		rejected := front.Rejected()
		_, err = ppool.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
			t.Fatalf("err = %v, want 28P01", err)
		}
		if got := front.Rejected() - rejected; got != 1 {
			t.Errorf("%d attempts, want 1", got)
		}
		advance(t, time.Second)
		ppool.Exec(ctx, "SELECT 1")
		if psrc.Mints() != 2 {
			t.Errorf("mints = %d, want 2: the refused token was not invalidated", psrc.Mints())
		}
	})
}

func restorePolicy(t *testing.T) {
	policy, err := rdsauth.Policy(front.Region(), front.Account(), front.ResourceID(), []string{"app"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.AttachPolicy(policy); err != nil {
		t.Fatal(err)
	}
}

// With two hosts, each attempt is signed for the host it dials: when the
// first is down, the second gets its own token.
func TestMultiHostFailover(t *testing.T) {
	ctx := context.Background()
	conn := fmt.Sprintf("host=127.0.0.1,localhost port=%d,%d user=app dbname=app sslmode=verify-full pool_max_conns=2", front.Port(), front2.Port())
	pool, src := newPool(t, conn, sessionConfig(t), func(o *rdsauth.Options) { o.RootCAFile = caBundle })

	mark := authLog.mark()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if evs := authLog.since(mark); len(evs) != 1 || evs[0].Host != front.Addr() || evs[0].Err != nil {
		t.Fatalf("first host: %+v", evs)
	}

	front.Stop()
	defer front.Start()
	pool.Reset()
	mark = authLog.mark()
	if _, err := pool.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("failover: %v", err)
	}
	want := "localhost:" + strconv.Itoa(front2.Port())
	if evs := authLog.since(mark); len(evs) != 1 || evs[0].Host != want || evs[0].Err != nil {
		t.Fatalf("second host: %+v, want one accepted login for %s", evs, want)
	}
	if src.Mints() != 2 {
		t.Errorf("mints = %d, want one per host", src.Mints())
	}
}

func TestOpenDB(t *testing.T) {
	ctx := context.Background()
	db, err := rdsauth.OpenDB(dsn("app", ""), sessionConfig(t), fakeClock)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	db.SetMaxOpenConns(3)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			var user string
			if err := db.QueryRowContext(ctx, "SELECT current_user").Scan(&user); err != nil || user != "app" {
				t.Errorf("got %q, %v", user, err)
			}
		})
	}
	wg.Wait()
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	cfg := sessionConfig(t)
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app", front.Port())
	tests := []struct {
		name string
		conn string
		cfg  aws.Config
		opt  func(*rdsauth.Options)
		want error
	}{
		{"sslmode=disable", base + " sslmode=disable", cfg, nil, rdsauth.ErrInsecureTransport},
		{"sslmode=prefer", base + " sslmode=prefer", cfg, nil, rdsauth.ErrInsecureTransport},
		{"sslmode=allow", base + " sslmode=allow", cfg, nil, rdsauth.ErrInsecureTransport},
		{"no sslmode (libpq default prefer)", base, cfg, nil, rdsauth.ErrInsecureTransport},
		{"second host without TLS", fmt.Sprintf("postgres://app@127.0.0.1:%d,localhost:%d/app?sslmode=prefer", front.Port(), front2.Port()), cfg, nil, rdsauth.ErrInsecureTransport},
		{"wrong region", "host=mydb.c9akciq32.eu-west-1.rds.amazonaws.com user=app sslmode=require", cfg, func(o *rdsauth.Options) { o.Region = "us-east-1" }, rdsauth.ErrRegionMismatch},
		{"wrong region on second host", "host=a.c9akciq32.eu-west-1.rds.amazonaws.com,b.c9akciq32.us-east-1.rds.amazonaws.com user=app sslmode=require", cfg, func(o *rdsauth.Options) { o.Region = "eu-west-1" }, rdsauth.ErrRegionMismatch},
		{"no region", base + " sslmode=require", aws.Config{Credentials: cfg.Credentials}, nil, rdsauth.ErrNoRegion},
		{"no credentials", base + " sslmode=require", aws.Config{Region: "us-east-1"}, nil, rdsauth.ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*rdsauth.Options)
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			pool, err := rdsauth.NewPool(ctx, tt.conn, tt.cfg, opts...)
			if err == nil {
				pool.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewPool: err = %v, want %v", err, tt.want)
			}
			db, err := rdsauth.OpenDB(tt.conn, tt.cfg, opts...)
			if err == nil {
				db.Close()
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("OpenDB: err = %v, want %v", err, tt.want)
			}
		})
	}
	t.Run("AllowInsecure opts out", func(t *testing.T) {
		pool, err := rdsauth.NewPool(ctx, base+" sslmode=prefer", cfg, func(o *rdsauth.Options) { o.AllowInsecure = true })
		if err != nil {
			t.Fatal(err)
		}
		pool.Close()
	})
	t.Run("RootCAFile turns on verify-full", func(t *testing.T) {
		poolCfg, err := pgxpool.ParseConfig(base) // sslmode prefer
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rdsauth.ConfigurePool(poolCfg, cfg, func(o *rdsauth.Options) { o.RootCAFile = caBundle }); err != nil {
			t.Fatal(err)
		}
		cc := poolCfg.ConnConfig
		if cc.TLSConfig == nil || cc.TLSConfig.InsecureSkipVerify || cc.TLSConfig.ServerName != "127.0.0.1" || len(cc.Fallbacks) != 0 {
			t.Errorf("TLS not verify-full or plaintext fallback kept: %+v, %d fallbacks", cc.TLSConfig, len(cc.Fallbacks))
		}
		if poolCfg.MaxConnLifetime != 10*time.Minute {
			t.Errorf("MaxConnLifetime = %v, want 10m", poolCfg.MaxConnLifetime)
		}
		// A certificate from another CA is refused.
		other, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM})
		if err != nil {
			t.Fatal(err)
		}
		defer other.Close()
		pool, _ := newPool(t, fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=require", other.Port()), cfg,
			func(o *rdsauth.Options) { o.RootCAFile = caBundle })
		if _, err := pool.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Errorf("err = %v, want a certificate error", err)
		}
		if other.Accepted()+other.Rejected() != 0 {
			t.Error("a token was sent to an unverified server")
		}
	})
	t.Run("unreadable RootCAFile", func(t *testing.T) {
		_, err := rdsauth.NewPool(ctx, base+" sslmode=require", cfg, func(o *rdsauth.Options) { o.RootCAFile = "/nonexistent.pem" })
		if err == nil || !strings.Contains(err.Error(), "RootCAFile") {
			t.Fatalf("err = %v", err)
		}
	})
}

// The SDK's standard chain (env vars of an IRSA pod) feeds the pool.
func TestEndToEndWithDefaultConfig(t *testing.T) {
	ctx := context.Background()
	env.Setenv(t)
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	pool, err := rdsauth.NewPool(ctx, dsn("app", ""), cfg, fakeClock)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var user string
	if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != "app" {
		t.Fatalf("got %q, %v", user, err)
	}
	if got := env.STS.Calls("AssumeRoleWithWebIdentity") - before; got != 1 {
		t.Errorf("STS calls = %d, want 1", got)
	}
}

func FuzzConfigurePool(f *testing.F) {
	for _, s := range []string{
		"host=h port=5432 user=u sslmode=require",
		"host=h user=u",
		"postgres://u@a:1,b:2/db?sslmode=prefer",
		"postgres://u@a.c9akciq32.us-east-1.rds.amazonaws.com:5432/db?sslmode=verify-full",
		"host=/tmp user=u sslmode=disable",
		"host=a,b port=1 user=u sslmode=allow",
		"host=x.proxy-1.eu-west-1.rds.amazonaws.com user=u sslmode=require",
	} {
		f.Add(s)
	}
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKID", SecretAccessKey: "SECRET"}, nil
	})
	f.Fuzz(func(t *testing.T, conn string) {
		if strings.Contains(conn, "service") || strings.Contains(conn, "passfile") || strings.Contains(conn, "sslkey") ||
			strings.Contains(conn, "sslcert") || strings.Contains(conn, "sslrootcert") {
			t.Skip("reads files")
		}
		poolCfg, err := pgxpool.ParseConfig(conn)
		if err != nil {
			return
		}
		src, err := rdsauth.ConfigurePool(poolCfg, aws.Config{Region: "us-east-1", Credentials: creds})
		if err != nil {
			for _, named := range []error{rdsauth.ErrInsecureTransport, rdsauth.ErrRegionMismatch, rdsauth.ErrInvalidEndpoint,
				rdsauth.ErrInvalidUser, rdsauth.ErrNoRegion, rdsauth.ErrInvalidRegion} {
				if errors.Is(err, named) {
					return
				}
			}
			t.Fatalf("unnamed error %v", err)
		}
		defer src.Close()
		// Accepted: no network host may be reached without TLS, also after
		// the hook rewrote the per-connection copy.
		cc := poolCfg.ConnConfig.Copy()
		if err := poolCfg.BeforeConnect(context.Background(), cc); err != nil {
			t.Fatalf("BeforeConnect refused an accepted config: %v", err)
		}
		all := append([]*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}, cc.Fallbacks...)
		for _, fb := range all {
			if fb.TLSConfig == nil && !strings.HasPrefix(fb.Host, "/") {
				t.Fatalf("%s:%d reachable without TLS", fb.Host, fb.Port)
			}
		}
	})
}

// The role's policy (rdsauth.Policy for app) does not let it log in as
// another user, though that role exists in the database.
func TestPolicyDeniesOtherUser(t *testing.T) {
	ctx := context.Background()
	mark := authLog.mark()
	pool, _ := newPool(t, dsn("other", ""), sessionConfig(t))
	_, err := pool.Exec(ctx, "SELECT 1")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" {
		t.Fatalf("err = %v, want 28000", err)
	}
	var te *pgfront.TokenError
	for _, ev := range authLog.since(mark) {
		if !errors.As(ev.Err, &te) || te.Code != "AccessDenied" || !strings.Contains(te.Reason, "rds-db:connect") {
			t.Errorf("refused for %v, want the IAM denial", ev.Err)
		}
	}
}
