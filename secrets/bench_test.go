package secrets_test

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/secrets"
)

// Reading a secret through the cache against a plain SDK GetSecretValue per
// read, both against the same Secrets Manager stand-in over HTTP.
// (aws-secretsmanager-caching-go is not available through the module proxy
// here, so the SDK call is the baseline.)
func BenchmarkSecretRead(b *testing.B) {
	ctx := context.Background()
	name := secretName(b, "app/")
	create(b, name, "bench-value")

	b.Run("cache-hit", func(b *testing.B) {
		c := newCache(b)
		if _, err := c.String(ctx, name); err != nil {
			b.Fatal(err)
		}
		calls := srv.Calls(standin.OpGetSecretValue)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := c.String(ctx, name); err != nil {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(srv.Calls(standin.OpGetSecretValue)-calls)/float64(b.N), "calls/op")
	})

	b.Run("cache-hit-parallel", func(b *testing.B) {
		c := newCache(b)
		if _, err := c.String(ctx, name); err != nil {
			b.Fatal(err)
		}
		calls := srv.Calls(standin.OpGetSecretValue)
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.String(ctx, name); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(srv.Calls(standin.OpGetSecretValue)-calls)/float64(b.N), "calls/op")
	})

	b.Run("sdk-GetSecretValue", func(b *testing.B) {
		client := sm.NewFromConfig(awsConfig(b))
		in := &sm.GetSecretValueInput{SecretId: aws.String(name)}
		if _, err := client.GetSecretValue(ctx, in); err != nil {
			b.Fatal(err)
		}
		calls := srv.Calls(standin.OpGetSecretValue)
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			out, err := client.GetSecretValue(ctx, in)
			if err != nil || aws.ToString(out.SecretString) != "bench-value" {
				b.Fatal(err)
			}
		}
		b.StopTimer()
		b.ReportMetric(float64(srv.Calls(standin.OpGetSecretValue)-calls)/float64(b.N), "calls/op")
	})
}

// A cache of many secrets, read round-robin: the LRU bookkeeping of
// switching entries on the hit path.
func BenchmarkCacheHitManySecrets(b *testing.B) {
	ctx := context.Background()
	const n = 64
	names := make([]string, n)
	for i := range names {
		names[i] = secretName(b, "app/many")
		create(b, names[i], "v")
	}
	c := newCache(b, func(o *secrets.Options) { o.MaxEntries = n })
	for _, nm := range names {
		if _, err := c.String(ctx, nm); err != nil {
			b.Fatal(err)
		}
	}
	fetches := c.Fetches()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := c.String(ctx, names[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	if c.Fetches() != fetches {
		b.Fatalf("%d fetches during hits", c.Fetches()-fetches)
	}
}
