package vaultauth_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/irsakit/irsakit/vaultauth"
)

// Token on a source holding a fresh token, against a login per call (what
// code without a cache does), both against Vault's aws auth method and the
// STS stand-in over HTTP.
func BenchmarkToken(b *testing.B) {
	needVault(b)
	ctx := context.Background()
	cfg := roleConfig(b, 24*time.Hour)

	b.Run("cached", func(b *testing.B) {
		src, err := vaultauth.NewTokenSource(srv.URL, "app", cfg, opts()...)
		if err != nil {
			b.Fatal(err)
		}
		defer src.Close()
		if _, err := src.Token(ctx); err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := src.Token(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64(src.Logins())/float64(b.N), "logins/op")
	})

	b.Run("login-per-call", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			if _, err := vaultauth.Login(ctx, srv.URL, "app", cfg, opts()...); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// Signing a login request locally (no network).
func BenchmarkBuildLogin(b *testing.B) {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: aws.NewCredentialsCache(credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")),
	}
	ctx := context.Background()
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := vaultauth.BuildLogin(ctx, cfg, "app"); err != nil {
			b.Fatal(err)
		}
	}
}
