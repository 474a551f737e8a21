package rdsauth_test

import (
	"context"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/rdsauth"
)

// backendState returns the state and query of server backend pid from
// pg_stat_activity, asked over a direct connection ("" when it is gone).
func backendState(ctx context.Context, t *testing.T, pid uint32) (state, query string) {
	t.Helper()
	admin, err := pgconn.Connect(ctx, pg.ConnString("", ""))
	require.NoError(t, err)
	defer admin.Close(ctx)
	res, err := admin.Exec(ctx, "SELECT coalesce(state, ''), query FROM pg_stat_activity WHERE pid = "+strconv.FormatUint(uint64(pid), 10)).ReadAll()
	require.NoError(t, err)
	if len(res[0].Rows) == 0 {
		return "", ""
	}
	return string(res[0].Rows[0][0]), string(res[0].Rows[0][1])
}

// terminateBackend ends server backend pid, so a query a test could not
// cancel does not outlive it.
func terminateBackend(t *testing.T, pid uint32) {
	ctx := context.Background()
	admin, err := pgconn.Connect(ctx, pg.ConnString("", ""))
	if err != nil {
		t.Error(err)
		return
	}
	defer admin.Close(ctx)
	admin.Exec(ctx, "SELECT pg_terminate_backend("+strconv.FormatUint(uint64(pid), 10)+")").ReadAll()
}

// A query whose context is cancelled stops on the server: pgconn's
// CancelRequest goes out through the pool's dialer (the one rdsauth wraps),
// reaches the front and is relayed to PostgreSQL. The query would sleep for
// an hour otherwise.
func TestCancelledQueryStopsOnTheServer(t *testing.T) {
	const query = "SELECT pg_sleep(3600)"
	// How long the server may take to stop the query: far beyond what a
	// relayed cancel takes, far below the query's hour.
	const patience = time.Minute
	tests := []struct {
		name    string
		watcher func(*pgconn.PgConn) ctxwatch.Handler // nil: pgx's default
	}{
		// The default closes the connection, and pgconn sends a cancel
		// request first so the server does not keep running the query.
		{name: "pgx default context watcher"},
		// This one sends the cancel request and keeps the connection; it
		// gives up on the server only after DeadlineDelay.
		{name: "CancelRequestContextWatcherHandler", watcher: func(pc *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * patience}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			poolCfg, err := pgxpool.ParseConfig(dsn("app", "pool_max_conns=1"))
			require.NoError(t, err)
			if tt.watcher != nil {
				poolCfg.ConnConfig.BuildContextWatcherHandler = tt.watcher
			}
			src, err := rdsauth.ConfigurePool(poolCfg, sessionConfig(t), fakeClock)
			require.NoError(t, err)
			t.Cleanup(func() { src.Close() })
			pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
			require.NoError(t, err)
			t.Cleanup(pool.Close)

			conn, err := pool.Acquire(ctx)
			require.NoError(t, err)
			var pid uint32
			done := make(chan error, 1)
			release := sync.OnceFunc(conn.Release)
			t.Cleanup(func() {
				// Whatever happened, end the query and give the
				// connection back so the pool can close.
				terminateBackend(t, pid)
				<-done
				release()
			})
			if err := conn.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				done <- nil
				t.Fatal(err)
			}

			mints, accepted, rejected := src.Mints(), front.Accepted(), front.Rejected()
			_, relayed := front.Cancels()
			qctx, qcancel := context.WithCancel(ctx)
			go func() {
				_, err := conn.Exec(qctx, query)
				done <- err
			}()
			deadline := time.Now().Add(patience)
			for {
				if st, q := backendState(ctx, t, pid); st == "active" && q == query {
					break
				}
				require.True(t, time.Now().Before(deadline), "the query never started")
				time.Sleep(5 * time.Millisecond)
			}
			qcancel()
			deadline = time.Now().Add(patience)

			// On the server the query ends (the backend goes idle, or away
			// once the connection is closed) instead of running on.
			for {
				st, q := backendState(ctx, t, pid)
				if st != "active" || q != query {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the server still runs %q %v after its context was cancelled: the cancel request never reached it", query, patience)
				}
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case err := <-done:
				done <- err // for the cleanup
				require.Error(t, err, "the query was cancelled")
			case <-time.After(patience):
				t.Fatal("the query did not return after the server stopped it")
			}
			_, relayed2 := front.Cancels()
			assert.Equal(t, relayed+1, relayed2, "cancel requests relayed to the server")
			assert.Equal(t, mints, src.Mints(), "a cancel request minted a token")
			assert.Equal(t, accepted, front.Accepted(), "a cancel request logged in")
			assert.Equal(t, rejected, front.Rejected(), "a cancel request was refused as a login")

			// The pool goes on serving queries (on the same connection, or
			// a new one where pgx closed it).
			release()
			var one int
			require.NoError(t, pool.QueryRow(ctx, "SELECT 1").Scan(&one))
			assert.Equal(t, 1, one)
		})
	}
}
