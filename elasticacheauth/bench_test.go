package elasticacheauth_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/elasticacheauth"
)

// BenchmarkToken compares a cache hit with minting a token per connection
// (what a CredentialsProviderContext without a cache does).
func BenchmarkToken(b *testing.B) {
	ctx := context.Background()
	src, err := elasticacheauth.NewTokenSource("orders", userID, cfg.Credentials, func(o *elasticacheauth.Options) { o.Region = env.Region })
	if err != nil {
		b.Fatal(err)
	}
	defer src.Close()
	if _, err := src.Token(ctx); err != nil {
		b.Fatal(err)
	}
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.Token(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := src.Token(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
	b.Run("mint-per-connection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := src.Mint(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkConnectionStorm opens 200 connections at once on a fresh client
// and token source per iteration, and reports the tokens minted per storm.
func BenchmarkConnectionStorm(b *testing.B) {
	ctx := context.Background()
	const n = 200
	for _, mode := range []string{"cached", "mint-per-connection"} {
		b.Run(mode, func(b *testing.B) {
			var mints int64
			storms := 0
			for b.Loop() {
				src := stormSource(b)
				provider := elasticacheauth.CredentialsProviderContext(src)
				if mode == "mint-per-connection" {
					provider = func(ctx context.Context) (string, string, error) {
						t, err := src.Mint(ctx)
						return userID, t.Value(), err
					}
				}
				rdb := redis.NewClient(stormOptions(standalone.Front, func(o *redis.Options) { o.CredentialsProviderContext = provider }))
				for _, c := range storm(b, ctx, rdb, n) {
					c.Close()
				}
				rdb.Close()
				mints += src.Mints()
				storms++
				src.Close()
			}
			b.ReportMetric(float64(mints)/float64(storms), "mints/storm")
		})
	}
}

// BenchmarkCommands compares SET+GET throughput of an IAM client with a
// password client through the same front and server.
func BenchmarkCommands(b *testing.B) {
	ctx := context.Background()
	iamClient, err := elasticacheauth.NewClient(ctx, standalone.Addr(), "orders", userID, cfg, trustFront, func(o *elasticacheauth.ClientOptions) {
		o.Redis = func(ro *redis.Options) { ro.PoolSize = 16 }
	})
	if err != nil {
		b.Fatal(err)
	}
	defer iamClient.Close()
	pwClient := redis.NewClient(&redis.Options{
		Addr: standalone.Addr(), TLSConfig: standalone.ClientTLS(), Username: pwUser, Password: pwSecret, PoolSize: 16,
	})
	defer pwClient.Close()
	// Interleaved, one command pair on each client per iteration, so that
	// the machine's load hits both alike; reports IAM time / password time.
	b.Run("interleaved", func(b *testing.B) {
		var iamTime, pwTime time.Duration
		for b.Loop() {
			for _, c := range []struct {
				rdb redis.Cmdable
				d   *time.Duration
			}{{pwClient, &pwTime}, {iamClient, &iamTime}} {
				start := time.Now()
				if err := c.rdb.Set(ctx, "bench-i", "v", 0).Err(); err != nil {
					b.Fatal(err)
				}
				if err := c.rdb.Get(ctx, "bench-i").Err(); err != nil {
					b.Fatal(err)
				}
				*c.d += time.Since(start)
			}
		}
		b.ReportMetric(float64(iamTime)/float64(pwTime), "iam/password-time")
		b.ReportMetric(float64(pwTime)/float64(iamTime), "iam-throughput/password")
	})
	for _, c := range []struct {
		name string
		rdb  redis.Cmdable
	}{{"password", pwClient}, {"iam", iamClient}} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var id int
			b.RunParallel(func(pb *testing.PB) {
				id++
				key := "bench-" + c.name + strconv.Itoa(id)
				for pb.Next() {
					if err := c.rdb.Set(ctx, key, "v", 0).Err(); err != nil {
						b.Fatal(err)
					}
					if err := c.rdb.Get(ctx, key).Err(); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
