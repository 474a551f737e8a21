package irsa_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/irsa"
)

// BenchmarkCredentials measures credential retrieval on a warm session,
// against the SDK's default chain on the same stand-ins in the same run.
func BenchmarkCredentials(b *testing.B) {
	env := awstest.Start(b)
	env.Setenv(b)
	ctx := context.Background()
	sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) })
	if err != nil {
		b.Fatal(err)
	}
	sdkCfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		b.Fatal(err)
	}
	run := func(b *testing.B, p aws.CredentialsProvider) {
		if _, err := p.Retrieve(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			if _, err := p.Retrieve(ctx); err != nil {
				b.Fatal(err)
			}
		}
	}
	b.Run("warm/irsa", func(b *testing.B) { run(b, sess.Credentials()) })
	b.Run("warm/sdk-default-chain", func(b *testing.B) { run(b, sdkCfg.Credentials) })
}

// BenchmarkColdStorm: 1000 goroutines retrieve credentials from a cold
// session at once; reports the STS calls made per storm (goal 1).
func BenchmarkColdStorm(b *testing.B) {
	env := awstest.Start(b)
	env.Setenv(b)
	ctx := context.Background()
	b.ReportAllocs()
	env.STS.ResetCalls()
	for i := 0; i < b.N; i++ {
		sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) })
		if err != nil {
			b.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := 0; g < 1000; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if _, err := sess.Credentials().Retrieve(ctx); err != nil {
					b.Error(err)
				}
			}()
		}
		close(start)
		wg.Wait()
	}
	b.ReportMetric(float64(env.STS.Calls("AssumeRoleWithWebIdentity"))/float64(b.N), "sts-calls/op")
}
