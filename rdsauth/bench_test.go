package rdsauth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/rdsauth"
)

// BenchmarkToken compares a cache hit with the SDK's way, building a token
// per connection with auth.BuildAuthToken.
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()
	creds := newSwitchableCreds(b, time.Hour)
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Token(ctx); err != nil {
		b.Fatal(err)
	}
	port := uint16(front.Port())
	if _, err := src.TokenFor(ctx, "127.0.0.1", port, "app"); err != nil {
		b.Fatal(err)
	}
	b.Run("cache-hit", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-hit-TokenFor", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.TokenFor(ctx, "127.0.0.1", port, "app"); err != nil {
				b.Fatal(err)
			}
		}
	})
	if _, err := src.TokenFor(ctx, "localhost", port, "app"); err != nil {
		b.Fatal(err)
	}
	b.Run("cache-hit-TokenFor-second-host", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.TokenFor(ctx, "localhost", port, "app"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cache-hit-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := src.Token(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("sdk-BuildAuthToken", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := auth.BuildAuthToken(ctx, front.Addr(), front.Region(), "app", creds); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkStorm opens 500 connections at once on a new pool with a new
// session (cold credentials and token caches), through the verifying front
// to the real server, and reports how many tokens were minted and how many
// STS calls were made per storm.
func BenchmarkStorm(b *testing.B) {
	poolStorm(b, func(n int) string { return dsn("app", fmt.Sprintf("pool_max_conns=%d", n)) }, fakeClock)
}

// poolStorm opens 500 connections at once on a new pool (from the DSN that
// dsnFor gives for that many connections, configured by ConfigurePool with
// optFns) with a new session, per iteration, and reports the tokens minted
// and STS calls made per storm.
func poolStorm(b *testing.B, dsnFor func(conns int) string, optFns ...func(*rdsauth.Options)) {
	const n = 500
	ctx := context.Background()
	var mints, stsCalls int64
	for b.Loop() {
		b.StopTimer()
		waitBackendsGone(b)
		cfg := sessionConfig(b)
		poolCfg, err := pgxpool.ParseConfig(dsnFor(n))
		if err != nil {
			b.Fatal(err)
		}
		src, err := rdsauth.ConfigurePool(poolCfg, cfg, optFns...)
		if err != nil {
			b.Fatal(err)
		}
		pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
		if err != nil {
			b.Fatal(err)
		}
		sts0 := env.STS.Calls("AssumeRoleWithWebIdentity")
		b.StartTimer()

		conns := make([]*pgxpool.Conn, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { conns[i], errs[i] = pool.Acquire(ctx) })
		}
		wg.Wait()

		b.StopTimer()
		for i, c := range conns {
			if errs[i] != nil {
				b.Fatal(errs[i])
			}
			c.Release()
		}
		mints += src.Mints()
		stsCalls += env.STS.Calls("AssumeRoleWithWebIdentity") - sts0
		pool.Close()
		src.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(mints)/float64(b.N), "mints/storm")
	b.ReportMetric(float64(stsCalls)/float64(b.N), "sts-calls/storm")
}

// waitBackendsGone waits until the server has reaped the sessions of an
// earlier storm, so the next one has max_connections to itself.
func waitBackendsGone(b *testing.B) {
	ctx := context.Background()
	c, err := pgconn.Connect(ctx, pg.ConnString("", ""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close(ctx)
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		res, err := c.Exec(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'").ReadAll()
		if err != nil {
			b.Fatal(err)
		}
		if string(res[0].Rows[0][0]) == "1" {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// BenchmarkConnect measures one new connection (TCP, TLS verify-full,
// startup, authentication, relay to the server's backend) through the same
// TLS front: with an IAM token from a warm TokenSource via the BeforeConnect
// hook, and with a plain password.
func BenchmarkConnect(b *testing.B) {
	ctx := context.Background()
	creds := newSwitchableCreds(b, 24*time.Hour)
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() })
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	hook := rdsauth.BeforeConnect(src)
	iamCfg, err := pgx.ParseConfig(dsn("app", ""))
	if err != nil {
		b.Fatal(err)
	}
	plainCfg, err := pgx.ParseConfig(dsn("plain", "password="+plainPassword))
	if err != nil {
		b.Fatal(err)
	}
	connect := func(b *testing.B, base *pgx.ConnConfig, before func(context.Context, *pgx.ConnConfig) error) {
		b.ReportAllocs()
		for b.Loop() {
			cc := base.Copy()
			if before != nil {
				if err := before(ctx, cc); err != nil {
					b.Fatal(err)
				}
			}
			c, err := pgx.ConnectConfig(ctx, cc)
			if err != nil {
				b.Fatal(err)
			}
			c.Close(ctx)
		}
	}
	// Interleave so drift (server warm-up, page cache) hits both alike.
	for range 2 {
		b.Run("iam", func(b *testing.B) { connect(b, iamCfg, hook) })
		b.Run("password", func(b *testing.B) { connect(b, plainCfg, nil) })
	}
}
