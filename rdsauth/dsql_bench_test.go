package rdsauth_test

import (
	"context"
	"fmt"
	"testing"
	"time"

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
	poolStorm(b, func(n int) string { return dsqlDSN("admin", fmt.Sprintf("pool_max_conns=%d", n)) }, fakeClock, toDSQLFront)
}
