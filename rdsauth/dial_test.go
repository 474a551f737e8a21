package rdsauth_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/rdsauth"
)

// forwarder relays every TCP connection it accepts to target, like
// kubectl port-forward or an SSH tunnel: it sees bytes, not TLS.
type forwarder struct {
	ln       net.Listener
	target   string
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    []net.Conn
}

func startForwarder(t *testing.T, target string) *forwarder {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	f := &forwarder{ln: ln, target: target}
	f.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			f.mu.Lock()
			f.conns = append(f.conns, c, up)
			f.mu.Unlock()
			f.wg.Go(func() { io.Copy(up, c); up.Close() })
			f.wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		f.mu.Lock()
		for _, c := range f.conns {
			c.Close()
		}
		f.mu.Unlock()
		f.wg.Wait()
	})
	return f
}

func (f *forwarder) Addr() string { return f.ln.Addr().String() }

// rdsName is the endpoint name the tunnelled front answers to (and its
// certificate is issued for); it does not resolve.
const rdsName = "mydb.c9akciq32.us-east-1.rds.amazonaws.com"

// Tokens are signed for the RDS endpoint while the TCP connection goes to
// a forwarder on another port; the certificate is still checked against
// the endpoint's name.
func TestDialAddressSignsForTheEndpoint(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	var events []pgfront.AuthEvent
	rds, err := pgfront.Start(pgfront.Config{
		Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM, Region: env.Region,
		Hostnames: []string{rdsName},
		OnAuth: func(ev pgfront.AuthEvent) {
			mu.Lock()
			events = append(events, ev)
			mu.Unlock()
		},
	})
	require.NoError(t, err)
	defer rds.Close()
	fwd := startForwarder(t, rds.Addr())
	endpoint := fmt.Sprintf("%s:%d", rdsName, rds.Port())
	conn := fmt.Sprintf("host=%s port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", rdsName, rds.Port(), rds.CAFile())
	viaTunnel := func(o *rdsauth.Options) { o.DialAddress = fwd.Addr() }

	t.Run("NewPool", func(t *testing.T) {
		pool, src := newPool(t, conn+" pool_max_conns=3", sessionConfig(t), viaTunnel)
		for _, c := range acquireAll(ctx, t, pool, 3) {
			var user string
			require.NoError(t, c.QueryRow(ctx, "SELECT current_user").Scan(&user))
			assert.Equal(t, "app", user)
			c.Release()
		}
		assert.Equal(t, int64(3), fwd.accepted.Load(), "connections through the forwarder")
		assert.Equal(t, int64(1), src.Mints())
		tok, err := src.Token(ctx)
		require.NoError(t, err)
		assert.Equal(t, endpoint, tok.Endpoint(), "token signed for")
		assert.Equal(t, "us-east-1", tok.Region(), "region read from the endpoint name")
		mu.Lock()
		defer mu.Unlock()
		require.Len(t, events, 3)
		for _, ev := range events {
			// The front takes the host from the client's SNI: the client
			// asked for the endpoint's name, and the token was for it.
			assert.Equal(t, endpoint, ev.Host)
			assert.NoError(t, ev.Err)
		}
	})

	t.Run("BeforeConnect of a TokenSource", func(t *testing.T) {
		src, err := rdsauth.NewTokenSource(endpoint, "app", sessionConfig(t).Credentials, fakeClock, viaTunnel)
		require.NoError(t, err)
		defer src.Close()
		poolCfg, err := pgxpool.ParseConfig(conn)
		require.NoError(t, err)
		poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
		pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
		require.NoError(t, err)
		defer pool.Close()
		before := fwd.accepted.Load()
		_, err = pool.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		assert.Equal(t, before+1, fwd.accepted.Load())
	})

	t.Run("OpenDB", func(t *testing.T) {
		db, err := rdsauth.OpenDB(conn, sessionConfig(t), fakeClock, viaTunnel)
		require.NoError(t, err)
		defer db.Close()
		before := fwd.accepted.Load()
		require.NoError(t, db.PingContext(ctx))
		assert.Equal(t, before+1, fwd.accepted.Load())
	})

	t.Run("cancel requests take the tunnel too", func(t *testing.T) {
		pool, _ := newPool(t, conn+" pool_max_conns=1", sessionConfig(t), viaTunnel)
		c, err := pool.Acquire(ctx)
		require.NoError(t, err)
		defer c.Release()
		var pid uint32
		require.NoError(t, c.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid))
		t.Cleanup(func() { terminateBackend(t, pid) })
		_, relayed := rds.Cancels()
		before := fwd.accepted.Load()
		qctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() {
			_, err := c.Exec(qctx, "SELECT pg_sleep(3600)")
			done <- err
		}()
		deadline := time.Now().Add(time.Minute)
		for {
			if st, _ := backendState(ctx, t, pid); st == "active" {
				break
			}
			require.True(t, time.Now().Before(deadline), "the query never started")
			time.Sleep(5 * time.Millisecond)
		}
		cancel()
		require.Error(t, <-done)
		for {
			if st, _ := backendState(ctx, t, pid); st != "active" {
				break
			}
			require.True(t, time.Now().Before(deadline.Add(time.Minute)), "the query was not cancelled")
			time.Sleep(5 * time.Millisecond)
		}
		_, relayed2 := rds.Cancels()
		assert.Equal(t, relayed+1, relayed2)
		assert.Equal(t, before+1, fwd.accepted.Load(), "the cancel request went through the forwarder")
	})

	t.Run("the certificate must be the endpoint's", func(t *testing.T) {
		// The tunnel leads to a server whose certificate (valid, from a
		// trusted CA) is for other names: no token reaches it.
		other := startForwarder(t, front.Addr())
		accepted, rejected := front.Accepted(), front.Rejected()
		pool, _ := newPool(t, fmt.Sprintf("host=%s port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", rdsName, front.Port(), caBundle),
			sessionConfig(t), func(o *rdsauth.Options) { o.DialAddress = other.Addr() })
		_, err := pool.Exec(ctx, "SELECT 1")
		require.Error(t, err)
		assert.Contains(t, err.Error(), "certificate is valid for")
		assert.Contains(t, err.Error(), rdsName)
		assert.Equal(t, int64(1), other.accepted.Load(), "the connection went through the tunnel")
		assert.Equal(t, accepted, front.Accepted(), "a token was sent to a server with another name's certificate")
		assert.Equal(t, rejected, front.Rejected(), "a token was sent to a server with another name's certificate")
	})
}

func TestDialAddressErrors(t *testing.T) {
	cfg := sessionConfig(t)
	for _, tt := range []struct {
		name, conn, addr, want string
	}{
		{"no port", "host=" + rdsName + " user=app sslmode=verify-full", "127.0.0.1", "want the host:port"},
		{"port 0", "host=" + rdsName + " user=app sslmode=verify-full", "127.0.0.1:0", "port must be a number"},
		{"a URL", "host=" + rdsName + " user=app sslmode=verify-full", "tcp://127.0.0.1:15432", "want the host:port"},
		{"two hosts", "host=a.c9akciq32.us-east-1.rds.amazonaws.com,b.c9akciq32.us-east-1.rds.amazonaws.com user=app sslmode=verify-full", "127.0.0.1:15432", "names 2 hosts"},
		{"unix socket", "host=/tmp user=app", "127.0.0.1:15432", "unix socket"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rdsauth.NewPool(context.Background(), tt.conn, cfg, func(o *rdsauth.Options) { o.DialAddress = tt.addr })
			require.ErrorIs(t, err, rdsauth.ErrInvalidEndpoint)
			assert.Contains(t, err.Error(), "Options.DialAddress")
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}
