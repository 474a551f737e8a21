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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/rdsauth"
)

func newPool(t *testing.T, connString string, cfg aws.Config, optFns ...func(*rdsauth.Options)) (*pgxpool.Pool, *rdsauth.TokenSource) {
	t.Helper()
	poolCfg, err := pgxpool.ParseConfig(connString)
	require.NoError(t, err)
	src, err := rdsauth.ConfigurePool(poolCfg, cfg, append([]func(*rdsauth.Options){fakeClock}, optFns...)...)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	pool, err := pgxpool.NewWithConfig(context.Background(), poolCfg)
	require.NoError(t, err)
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
			require.NoError(t, err)
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
			if !assert.NoError(t, err) {
				return
			}
			assert.Equal(t, "app", user)
			assert.Equal(t, 5050, sum)
			pids[pid] = true
		})
	}
	wg.Wait()
	for _, c := range conns {
		c.Release()
	}
	assert.Len(t, pids, 20, "server backends")
	assert.Equal(t, int64(20), front.Accepted()-accepted, "logins the front accepted")
	assert.Equal(t, int64(1), src.Mints(), "tokens minted for 20 connections")
	for _, ev := range authLog.since(mark) {
		assert.True(t, ev.IAM && ev.Err == nil && ev.Host == front.Addr(), "auth event %+v", ev)
	}
	assert.Equal(t, int32(20), pool.Stat().MaxConns())
}

func TestEstablishedConnectionsOutliveTheToken(t *testing.T) {
	ctx := context.Background()
	pool, src := newPool(t, dsn("app", "pool_max_conns=4"), sessionConfig(t))
	conns := acquireAll(ctx, t, pool, 4)
	first, err := src.Token(ctx)
	require.NoError(t, err)
	advance(t, 20*time.Minute) // the token is now refused by RDS
	_, err = front.VerifyToken(first.Value(), "app", front.Addr())
	require.Error(t, err, "front still accepts a 20-minute-old token")
	for _, c := range conns {
		_, err := c.Exec(ctx, "SELECT 1")
		require.NoError(t, err, "established connection broke after the token expired")
	}
	// A new connection logs in with a new token.
	mark := authLog.mark()
	extra, err := pgx.ConnectConfig(ctx, connConfigFromPool(t, pool))
	require.NoError(t, err)
	extra.Close(ctx)
	evs := authLog.since(mark)
	if assert.Len(t, evs, 1) {
		assert.NoError(t, evs[0].Err)
		assert.False(t, evs[0].SignedAt.Before(clk.Now().Add(-time.Second)), "new connection did not use a fresh token: %+v", evs[0])
	}
	for _, c := range conns {
		c.Release()
	}
	assert.Equal(t, int64(2), src.Mints())
}

// connConfigFromPool returns a copy of the pool's connection config with
// its BeforeConnect applied, as the pool would for a new connection.
func connConfigFromPool(t *testing.T, pool *pgxpool.Pool) *pgx.ConnConfig {
	t.Helper()
	cc := pool.Config().ConnConfig.Copy()
	require.NoError(t, pool.Config().BeforeConnect(context.Background(), cc))
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
	require.NoError(t, pg.Restart(ctx))
	advance(t, 16*time.Minute) // the tokens of the old connections are dead
	restartedAt := clk.Now()
	require.NoError(t, front.Start())
	mark := authLog.mark()
	// Every pooled connection is dead; queries fail until the pool has
	// replaced them, then succeed.
	var err error
	for {
		var one int
		if err = pool.QueryRow(ctx, "SELECT 1").Scan(&one); err == nil {
			break
		}
		require.NoError(t, ctx.Err(), "pool did not recover: %v", err)
		time.Sleep(10 * time.Millisecond)
	}
	for _, c := range acquireAll(ctx, t, pool, 4) {
		c.Release()
	}
	evs := authLog.since(mark)
	require.NotEmpty(t, evs, "no new logins")
	for _, ev := range evs {
		assert.NoError(t, ev.Err)
		assert.False(t, ev.SignedAt.Before(restartedAt.Truncate(time.Second)), "login after restart with %+v", ev)
	}
	assert.Greater(t, src.Mints(), minted, "no fresh token minted after the restart")
}

// A token refused at login (here: its credentials were revoked) is
// replaced by a freshly minted one and the same connect succeeds.
func TestRefusedTokenRetriedOnceWithFreshToken(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, time.Hour)
	poolCfg, err := pgxpool.ParseConfig(dsn("app", ""))
	require.NoError(t, err)
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
	require.NoError(t, err)
	defer src.Close()
	poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	require.NoError(t, err)
	defer pool.Close()
	_, err = pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	pool.Reset() // drop the idle connection: the next query must connect

	old := creds.cur.Load()
	env.Registry.Revoke(old.AccessKeyID)
	creds.rotate(t, time.Hour)
	accepted, rejected, minted := front.Accepted(), front.Rejected(), src.Mints()
	_, err = pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err, "connect with a refused cached token did not recover")
	assert.Equal(t, int64(1), front.Rejected()-rejected, "logins refused")
	assert.Equal(t, int64(1), front.Accepted()-accepted, "logins accepted")
	assert.Equal(t, int64(1), src.Mints()-minted, "tokens minted")

	t.Run("never a loop", func(t *testing.T) {
		pool.Reset()
		env.IAM.DetachPolicies(env.RoleARN) // every token is now refused
		defer restorePolicy(t)
		advance(t, time.Second) // so a fresh token differs from the cached one
		rejected, minted := front.Rejected(), src.Mints()
		_, err := pool.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "28000", pgErr.Code, "RDS's code")
		assert.Contains(t, pgErr.Message, `PAM authentication failed for user "app"`)
		assert.Equal(t, int64(2), front.Rejected()-rejected, "login attempts (one retry)")
		assert.Equal(t, int64(1), src.Mints()-minted, "tokens minted")
		assert.NotContains(t, err.Error(), "X-Amz-Signature", "error shows a token")
	})

	t.Run("28P01 ends the connect, next connect mints", func(t *testing.T) {
		// The front's password users answer a wrong password with 28P01.
		plainCfg, err := pgxpool.ParseConfig(dsn("plain", ""))
		require.NoError(t, err)
		psrc, err := rdsauth.NewTokenSource(front.Addr(), "plain", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
		require.NoError(t, err)
		defer psrc.Close()
		plainCfg.BeforeConnect = rdsauth.BeforeConnect(psrc)
		ppool, err := pgxpool.NewWithConfig(ctx, plainCfg)
		require.NoError(t, err)
		defer ppool.Close()
		rejected := front.Rejected()
		_, err = ppool.Exec(ctx, "SELECT 1")
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr)
		assert.Equal(t, "28P01", pgErr.Code)
		assert.Equal(t, int64(1), front.Rejected()-rejected, "login attempts")
		advance(t, time.Second)
		ppool.Exec(ctx, "SELECT 1")
		assert.Equal(t, int64(2), psrc.Mints(), "the refused token was not invalidated")
	})
}

func restorePolicy(t *testing.T) {
	policy, err := rdsauth.Policy(front.Region(), front.Account(), front.ResourceID(), []string{"app"})
	require.NoError(t, err)
	require.NoError(t, env.AttachPolicy(policy))
}

// With two hosts, each attempt is signed for the host it dials: when the
// first is down, the second gets its own token.
func TestMultiHostFailover(t *testing.T) {
	ctx := context.Background()
	conn := fmt.Sprintf("host=127.0.0.1,localhost port=%d,%d user=app dbname=app sslmode=verify-full pool_max_conns=2", front.Port(), front2.Port())
	pool, src := newPool(t, conn, sessionConfig(t), func(o *rdsauth.Options) { o.RootCAFile = caBundle })

	mark := authLog.mark()
	_, err := pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err)
	evs := authLog.since(mark)
	require.Len(t, evs, 1, "first host")
	require.Equal(t, front.Addr(), evs[0].Host)
	require.NoError(t, evs[0].Err)

	front.Stop()
	defer front.Start()
	pool.Reset()
	mark = authLog.mark()
	_, err = pool.Exec(ctx, "SELECT 1")
	require.NoError(t, err, "failover")
	want := "localhost:" + strconv.Itoa(front2.Port())
	evs = authLog.since(mark)
	require.Len(t, evs, 1, "second host: want one accepted login for %s", want)
	assert.Equal(t, want, evs[0].Host)
	assert.NoError(t, evs[0].Err)
	assert.Equal(t, int64(2), src.Mints(), "one token per host")
}

func TestOpenDB(t *testing.T) {
	ctx := context.Background()
	db, err := rdsauth.OpenDB(dsn("app", ""), sessionConfig(t), fakeClock)
	require.NoError(t, err)
	defer db.Close()
	db.SetMaxOpenConns(3)
	var wg sync.WaitGroup
	for range 6 {
		wg.Go(func() {
			var user string
			err := db.QueryRowContext(ctx, "SELECT current_user").Scan(&user)
			assert.NoError(t, err)
			assert.Equal(t, "app", user)
		})
	}
	wg.Wait()
}

func TestConfigErrors(t *testing.T) {
	ctx := context.Background()
	cfg := sessionConfig(t)
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", front.Port(), caBundle)
	tests := []struct {
		name string
		conn string
		cfg  aws.Config
		opt  func(*rdsauth.Options)
		want error
	}{
		{"wrong region", "host=mydb.c9akciq32.eu-west-1.rds.amazonaws.com user=app sslmode=verify-full", cfg, func(o *rdsauth.Options) { o.Region = "us-east-1" }, rdsauth.ErrRegionMismatch},
		{"wrong region on second host", "host=a.c9akciq32.eu-west-1.rds.amazonaws.com,b.c9akciq32.us-east-1.rds.amazonaws.com user=app sslmode=verify-full", cfg, func(o *rdsauth.Options) { o.Region = "eu-west-1" }, rdsauth.ErrRegionMismatch},
		{"no region", base, aws.Config{Credentials: cfg.Credentials}, nil, rdsauth.ErrNoRegion},
		{"no credentials", base, aws.Config{Region: "us-east-1"}, nil, rdsauth.ErrNoCredentials},
		// The TLS policy is checked first (tls_test.go has the cases).
		{"no TLS", fmt.Sprintf("postgres://app@127.0.0.1:%d,localhost:%d/app?sslmode=prefer", front.Port(), front2.Port()), cfg, nil, rdsauth.ErrInsecureTransport},
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
			require.ErrorIs(t, err, tt.want, "NewPool")
			db, err := rdsauth.OpenDB(tt.conn, tt.cfg, opts...)
			if err == nil {
				db.Close()
			}
			require.ErrorIs(t, err, tt.want, "OpenDB")
		})
	}
	t.Run("RootCAFile turns on verify-full", func(t *testing.T) {
		poolCfg, err := pgxpool.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app", front.Port())) // sslmode prefer
		require.NoError(t, err)
		_, err = rdsauth.ConfigurePool(poolCfg, cfg, func(o *rdsauth.Options) { o.RootCAFile = caBundle })
		require.NoError(t, err)
		cc := poolCfg.ConnConfig
		require.NotNil(t, cc.TLSConfig)
		assert.False(t, cc.TLSConfig.InsecureSkipVerify)
		assert.Equal(t, "127.0.0.1", cc.TLSConfig.ServerName)
		assert.Empty(t, cc.Fallbacks, "plaintext fallback kept")
		assert.Equal(t, 10*time.Minute, poolCfg.MaxConnLifetime)
		// A certificate from another CA is refused.
		other, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM})
		require.NoError(t, err)
		defer other.Close()
		pool, _ := newPool(t, fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=require", other.Port()), cfg,
			func(o *rdsauth.Options) { o.RootCAFile = caBundle })
		_, err = pool.Exec(ctx, "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate")
		assert.Zero(t, other.Accepted()+other.Rejected(), "a token was sent to an unverified server")
	})
	t.Run("unreadable RootCAFile", func(t *testing.T) {
		_, err := rdsauth.NewPool(ctx, base, cfg, func(o *rdsauth.Options) { o.RootCAFile = "/nonexistent.pem" })
		require.Error(t, err)
		assert.Contains(t, err.Error(), "RootCAFile")
	})
}

// The SDK's standard chain (env vars of an IRSA pod) feeds the pool.
func TestEndToEndWithDefaultConfig(t *testing.T) {
	ctx := context.Background()
	env.Setenv(t)
	cfg, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	pool, err := rdsauth.NewPool(ctx, dsn("app", ""), cfg, fakeClock)
	require.NoError(t, err)
	defer pool.Close()
	var user string
	require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, "app", user)
	assert.Equal(t, int64(1), env.STS.Calls("AssumeRoleWithWebIdentity")-before, "STS calls")
}

func FuzzConfigurePool(f *testing.F) {
	for _, s := range []string{
		"host=h port=5432 user=u sslmode=require",
		"host=h port=5432 user=u sslmode=verify-full",
		"host=h user=u",
		"postgres://u@a:1,b:2/db?sslmode=prefer",
		"postgres://u@a.c9akciq32.us-east-1.rds.amazonaws.com:5432/db?sslmode=verify-full",
		"postgres://u@a.c9akciq32.us-east-1.rds.amazonaws.com:5432/db?ssl=true",
		"host=/tmp user=u sslmode=disable",
		"host=a,b port=1 user=u sslmode=allow",
		"host=x.proxy-1.eu-west-1.rds.amazonaws.com user=u sslmode=require",
		"host=x.proxy-1.eu-west-1.rds.amazonaws.com user=u sslmode=verify-ca",
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
			for _, named := range []error{rdsauth.ErrInsecureTransport, rdsauth.ErrUnverifiedTLS, rdsauth.ErrRegionMismatch, rdsauth.ErrInvalidEndpoint,
				rdsauth.ErrInvalidUser, rdsauth.ErrNoRegion, rdsauth.ErrInvalidRegion} {
				if errors.Is(err, named) {
					return
				}
			}
			require.Failf(t, "unnamed error", "%v", err)
		}
		defer src.Close()
		// Accepted: no network host may be reached without TLS that checks
		// the server's certificate, also after the hook rewrote the
		// per-connection copy.
		cc := poolCfg.ConnConfig.Copy()
		require.NoError(t, poolCfg.BeforeConnect(context.Background(), cc), "BeforeConnect refused an accepted config")
		all := append([]*pgconn.FallbackConfig{{Host: cc.Host, Port: cc.Port, TLSConfig: cc.TLSConfig}}, cc.Fallbacks...)
		for _, fb := range all {
			if strings.HasPrefix(fb.Host, "/") {
				continue
			}
			require.NotNil(t, fb.TLSConfig, "%s:%d reachable without TLS", fb.Host, fb.Port)
			verified := !fb.TLSConfig.InsecureSkipVerify || fb.TLSConfig.VerifyPeerCertificate != nil || fb.TLSConfig.VerifyConnection != nil
			require.True(t, verified, "%s:%d reachable over TLS that accepts any certificate", fb.Host, fb.Port)
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
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "28000", pgErr.Code)
	var te *pgfront.TokenError
	for _, ev := range authLog.since(mark) {
		if assert.ErrorAs(t, ev.Err, &te) {
			assert.Equal(t, "AccessDenied", te.Code)
			assert.Contains(t, te.Reason, "rds-db:connect")
		}
	}
}
