package secretpassword_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/rdsauth/secretpassword"
)

// What the hook costs a new connection when the secret is cached: reading
// it, applying it and preparing the retry (no network).
func BenchmarkBeforeConnect(b *testing.B) {
	ctx := context.Background()
	cache := newCache(b)
	_, _, err := srv.CreateString("rds/bench", secretFor("bench", "pw-bench-Zq9"))
	require.NoError(b, err)
	for _, conn := range []string{"host=placeholder.invalid user=placeholder sslmode=disable", "host=placeholder.invalid user=placeholder sslmode=prefer"} {
		cfg, err := pgx.ParseConfig(conn)
		require.NoError(b, err)
		hook := secretpassword.BeforeConnect(cache, "rds/bench")
		require.NoError(b, hook(ctx, cfg.Copy()))
		b.Run(conn[len("host=placeholder.invalid user=placeholder "):], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				shallow := *cfg
				if err := hook(ctx, &shallow); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
