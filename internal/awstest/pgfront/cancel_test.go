package pgfront_test

import (
	"context"
	"errors"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// serverState returns the state and query of the server backend pid, as
// pg_stat_activity shows it ("" when there is no such backend).
func serverState(ctx context.Context, t *testing.T, pid uint32) (state, query string) {
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

// waitActive waits until the server runs query on backend pid.
func waitActive(ctx context.Context, t *testing.T, pid uint32, query string) {
	t.Helper()
	for {
		if st, q := serverState(ctx, t, pid); st == "active" && q == query {
			return
		}
		require.NoError(t, ctx.Err(), "the query never started on the server")
		time.Sleep(5 * time.Millisecond)
	}
}

// rawCancel sends a CancelRequest for pid/secret to the front over plain
// TCP, as libpq does for an unencrypted session, and waits until the front
// has handled it (it closes the connection when done).
func rawCancel(t *testing.T, pid uint32, secret []byte) {
	t.Helper()
	c, err := net.Dial("tcp", front.Addr())
	require.NoError(t, err)
	defer c.Close()
	buf, err := (&pgproto3.CancelRequest{ProcessID: pid, SecretKey: secret}).Encode(nil)
	require.NoError(t, err)
	_, err = c.Write(buf)
	require.NoError(t, err)
	require.NoError(t, c.SetReadDeadline(time.Now().Add(30*time.Second)))
	n, err := io.Copy(io.Discard, c)
	require.NoError(t, err, "the front did not close the cancel connection")
	assert.Zero(t, n, "a CancelRequest gets no answer")
}

// The client sees a cancel key of the front's, not the server's; only that
// key cancels, and the front relays it with the server's key.
func TestCancelKeyIsMappedToTheServers(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "require")
	require.NoError(t, err)
	defer c.Close(context.Background())

	res, err := c.Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	require.NoError(t, err)
	serverPID64, err := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32)
	require.NoError(t, err)
	serverPID := uint32(serverPID64)
	require.NotEqual(t, serverPID, c.PID(), "the client was given the server's own process id")
	require.Len(t, c.SecretKey(), 4, "PostgreSQL 15 speaks protocol 3.0: 4-byte secret keys")

	const query = "SELECT pg_sleep(3600)"
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, query).ReadAll()
		done <- err
	}()
	waitActive(ctx, t, serverPID, query)

	wrong := append([]byte(nil), c.SecretKey()...)
	wrong[0] ^= 0xff
	for _, tt := range []struct {
		name   string
		pid    uint32
		secret []byte
	}{
		{"wrong secret", c.PID(), wrong},
		{"the server's pid with the front's secret", serverPID, c.SecretKey()},
		{"unknown pid", c.PID() ^ 1, c.SecretKey()},
	} {
		t.Run(tt.name, func(t *testing.T) {
			in, out := front.Cancels()
			rawCancel(t, tt.pid, tt.secret)
			in2, out2 := front.Cancels()
			assert.Equal(t, in+1, in2, "request received")
			assert.Equal(t, out, out2, "request relayed to the server")
			st, q := serverState(ctx, t, serverPID)
			assert.Equal(t, "active", st)
			assert.Equal(t, query, q)
		})
	}

	in, out := front.Cancels()
	rawCancel(t, c.PID(), c.SecretKey())
	in2, out2 := front.Cancels()
	assert.Equal(t, in+1, in2)
	assert.Equal(t, out+1, out2, "the client's own key was not relayed")
	err = <-done
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "err = %v, want the server's query_canceled", err)
	assert.Equal(t, "57014", pgErr.Code)
	st, _ := serverState(ctx, t, serverPID)
	assert.Equal(t, "idle", st)

	// The session goes on after its query was cancelled.
	res, err = c.Exec(ctx, "SELECT 1").ReadAll()
	require.NoError(t, err)
	assert.Equal(t, "1", string(res[0].Rows[0][0]))
}

// pgconn sends its CancelRequest over TLS when the session uses TLS (as
// libpq 17 does); the front relays it just the same.
func TestCancelRequestOverTLS(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "verify-full")
	require.NoError(t, err)
	defer c.Close(context.Background())
	res, err := c.Exec(ctx, "SELECT pg_backend_pid()").ReadAll()
	require.NoError(t, err)
	pid, err := strconv.ParseUint(string(res[0].Rows[0][0]), 10, 32)
	require.NoError(t, err)

	const query = "SELECT pg_sleep(3600)"
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, query).ReadAll()
		done <- err
	}()
	waitActive(ctx, t, uint32(pid), query)
	_, out := front.Cancels()
	require.NoError(t, c.CancelRequest(ctx))
	err = <-done
	var pgErr *pgconn.PgError
	require.True(t, errors.As(err, &pgErr), "err = %v, want query_canceled", err)
	assert.Equal(t, "57014", pgErr.Code)
	_, out2 := front.Cancels()
	assert.Equal(t, out+1, out2)
}
