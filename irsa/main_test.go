package irsa_test

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

// The real PostgreSQL the end-to-end tests connect to through the RDS
// front, started once for the package on first use.
var (
	pgOnce sync.Once
	pgProc *procs.Postgres
	pgErr  error
)

func postgres(t testing.TB) *procs.Postgres {
	t.Helper()
	pgOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if pgProc, pgErr = procs.StartPostgres(ctx); pgErr != nil {
			return
		}
		pgErr = pgProc.CreateRole(ctx, "app")
	})
	if pgErr != nil {
		t.Fatalf("postgres: %v", pgErr)
	}
	return pgProc
}

func TestMain(m *testing.M) {
	code := m.Run()
	if pgProc != nil {
		if err := pgProc.Close(); err != nil {
			fmt.Fprintln(os.Stderr, "irsa tests: stopping postgres:", err)
		}
	}
	os.Exit(code)
}
