package rdsauth_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/rdsauth"
)

// BenchmarkDSQLToken measures a cache hit of an Aurora DSQL token source,
// serially and from all Ps.
func BenchmarkDSQLToken(b *testing.B) {
	ctx := context.Background()
	creds := newSwitchableCreds(b, time.Hour)
	host := dsqlHost()
	src, err := rdsauth.NewDSQLTokenSource(host, "admin", creds, fakeClock)
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Token(ctx); err != nil {
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
			if _, err := src.TokenFor(ctx, host, 5432, "admin"); err != nil {
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
}

// BenchmarkDSQLStorm opens 500 connections at once on a new pool with a
// new session (cold credentials and token caches) to the DSQL cluster
// endpoint, through the verifying DSQL front to the real server, and
// reports how many tokens were minted and STS calls made per storm.
func BenchmarkDSQLStorm(b *testing.B) {
	const n = 500
	ctx := context.Background()
	var mints, stsCalls int64
	for b.Loop() {
		b.StopTimer()
		waitServerIdle(b)
		cfg := sessionConfig(b)
		poolCfg, err := pgxpool.ParseConfig(dsqlDSN("admin", fmt.Sprintf("pool_max_conns=%d", n)))
		if err != nil {
			b.Fatal(err)
		}
		src, err := rdsauth.ConfigurePool(poolCfg, cfg, fakeClock, toDSQLFront)
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

// waitServerIdle waits until the server has reaped the sessions of an
// earlier storm, so the next one has max_connections to itself.
func waitServerIdle(b *testing.B) {
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
