package secretpassword_test

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/procs"
)

// placeholder is a connection string whose host, user and database the
// secret replaces.
const placeholder = "host=placeholder.invalid user=placeholder sslmode=disable"

const (
	msgRetry     = `"level":"INFO","msg":"secretpassword: the database refused the cached password; the secret was refreshed and the connection retries with its new version"`
	msgSame      = `"level":"WARN","msg":"secretpassword: the database refused the password of the secret's current version; the password may be changed before AWSCURRENT moves to it"`
	msgRetryToo  = `"level":"WARN","msg":"secretpassword: the database refused the refreshed password too"`
	refusedForPw = "password authentication failed for user"
)

func currentUser(t *testing.T, c interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}) string {
	t.Helper()
	var user string
	require.NoError(t, c.QueryRow(context.Background(), "SELECT current_user").Scan(&user))
	return user
}

// holder keeps acquired connections until the test ends, so that every
// Acquire opens a new connection.
type holder struct {
	t    *testing.T
	pool *pgxpool.Pool
}

func hold(t *testing.T, pool *pgxpool.Pool) holder { return holder{t, pool} }

func (h holder) acquire(ctx context.Context) (*pgxpool.Conn, error) {
	c, err := h.pool.Acquire(ctx)
	if err == nil {
		h.t.Cleanup(c.Release)
	}
	return c, err
}

// pgErrors lists every *pgconn.PgError in err's tree, in order.
func pgErrors(err error) []*pgconn.PgError {
	var out []*pgconn.PgError
	var walk func(error)
	walk = func(err error) {
		if pe, ok := err.(*pgconn.PgError); ok {
			out = append(out, pe)
		}
		switch u := err.(type) {
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		}
	}
	walk(err)
	return out
}

// A real rotation, against a PostgreSQL that checks passwords and the
// Secrets Manager stand-in staging AWSPENDING then AWSCURRENT: the pending
// version is never used, open connections keep working, and the first new
// connection after the rotation succeeds: the server refuses the cached
// password once, the secret is refreshed once and the same connect retries
// once with the new version.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-one-Zq9")
	pool := hold(t, f.pool(placeholder))

	established, err := pool.acquire(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.role, currentUser(t, established))

	r := f.rotate("pw-two-Zq9")
	// AWSPENDING is staged; AWSCURRENT is still the old password, even
	// when the cache asks Secrets Manager again.
	v, err := f.cache.Refresh(ctx, f.name)
	require.NoError(t, err)
	assert.NotEqual(t, r.token, v.VersionID, "the pending version was read as current")
	before := f.counts()
	_, err = pool.acquire(ctx)
	require.NoError(t, err, "a new connection while the rotation is pending")
	assert.Equal(t, counts{dials: 1}, f.since(before), "a connection that is not refused dials once")

	r.setSecret()
	r.finishSecret()
	assert.Equal(t, f.role, currentUser(t, established), "an open connection broke with the rotation")

	before = f.counts()
	c, err := pool.acquire(ctx)
	require.NoError(t, err, "the first new connection after the rotation")
	assert.Equal(t, f.role, currentUser(t, c))
	assert.Equal(t, counts{fetches: 1, dials: 2, refused: 1}, f.since(before), "one refresh, one retry, one refused login")
	v, err = f.cache.Get(ctx, f.name)
	require.NoError(t, err)
	assert.Equal(t, r.token, v.VersionID)

	before = f.counts()
	c, err = pool.acquire(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.role, currentUser(t, c))
	assert.Equal(t, counts{dials: 1}, f.since(before), "the connections after it use the new password at once")
	assert.Equal(t, f.role, currentUser(t, established))

	out := f.logs.String()
	assert.Contains(t, out, msgRetry)
	assert.Contains(t, out, `"version_id":"`+r.token+`"`)
	assert.NotContains(t, out, "pw-one-Zq9")
	assert.NotContains(t, out, "pw-two-Zq9")
}

// The same through database/sql (stdlib.OptionBeforeConnect).
func TestRotationDatabaseSQL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-sql1-Zq9")
	cc, err := pgx.ParseConfig(placeholder)
	require.NoError(t, err)
	cc.DialFunc = f.dial
	db := stdlib.OpenDB(*cc, stdlib.OptionBeforeConnect(f.hook()))
	t.Cleanup(func() { db.Close() })
	user := func(c interface {
		QueryRowContext(context.Context, string, ...any) *sql.Row
	}) string {
		var u string
		require.NoError(t, c.QueryRowContext(ctx, "SELECT current_user").Scan(&u))
		return u
	}

	established, err := db.Conn(ctx)
	require.NoError(t, err)
	defer established.Close()
	assert.Equal(t, f.role, user(established))

	f.rotate("pw-sql2-Zq9").all()
	before := f.counts()
	c, err := db.Conn(ctx) // established is held: a new connection
	require.NoError(t, err, "the first new connection after the rotation")
	defer c.Close()
	assert.Equal(t, f.role, user(c))
	assert.Equal(t, counts{fetches: 1, dials: 2, refused: 1}, f.since(before), "one refresh, one retry, one refused login")
	assert.Equal(t, f.role, user(established), "an open connection broke with the rotation")
}

// A rotation function between setSecret and finishSecret: the database
// has the new password, AWSCURRENT still the old one. A new connection is
// refused, refreshes once, finds no new version and fails with 28P01
// naming the secret: no retry with AWSPENDING, no loop. Once AWSCURRENT
// moves, the next connection succeeds.
func TestRotationBeforeAWSCURRENTMoves(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-w1-Zq9")
	pool := hold(t, f.pool(placeholder))
	_, err := pool.acquire(ctx)
	require.NoError(t, err)
	old, err := f.cache.Get(ctx, f.name)
	require.NoError(t, err)

	r := f.rotate("pw-w2-Zq9")
	r.setSecret()
	for i := range 2 {
		before := f.counts()
		_, err := pool.acquire(ctx)
		var pgErr *pgconn.PgError
		require.ErrorAs(t, err, &pgErr, "attempt %d", i)
		assert.Equal(t, "28P01", pgErr.Code)
		assert.Contains(t, err.Error(), fmt.Sprintf(`secret %q version %s`, f.name, old.VersionID))
		assert.NotContains(t, err.Error(), "pw-w")
		assert.Equal(t, counts{fetches: 1, dials: 1, refused: 1}, f.since(before), "attempt %d: one refresh, no retry", i)
	}
	assert.Contains(t, f.logs.String(), msgSame)

	r.finishSecret()
	before := f.counts()
	c, err := pool.acquire(ctx)
	require.NoError(t, err, "the first new connection after AWSCURRENT moved")
	assert.Equal(t, f.role, currentUser(t, c))
	assert.Equal(t, counts{fetches: 1, dials: 2, refused: 1}, f.since(before))
	assert.NotContains(t, f.logs.String(), "pw-w")
}

// A new version whose password the database refuses too (the rotation
// went wrong) ends the connect with the server's 28P01, naming the secret
// and both versions, after one refresh and one retry; the next connection
// refreshes once more and does not retry.
func TestRetryRefusedToo(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-r1-Zq9")
	pool := hold(t, f.pool(placeholder))
	_, err := pool.acquire(ctx)
	require.NoError(t, err)
	old, err := f.cache.Get(ctx, f.name)
	require.NoError(t, err)

	r := f.rotate("pw-r2-Zq9")
	setPassword(t, f.role, "pw-r3-Zq9") // not the password the secret got
	r.finishSecret()

	before := f.counts()
	_, err = pool.acquire(ctx)
	require.Error(t, err)
	assert.Equal(t, counts{fetches: 1, dials: 2, refused: 2}, f.since(before), "one refresh, one retry")
	pgErrs := pgErrors(err)
	require.Len(t, pgErrs, 2, "%v", err)
	for _, pe := range pgErrs {
		assert.Equal(t, "28P01", pe.Code, "a refusal is reported as what the server said")
	}
	msg := err.Error()
	// pgconn renders each attempt's error when the attempt ends: the text
	// must say what the fields say.
	assert.Equal(t, 2, strings.Count(msg, "(SQLSTATE 28P01"), "%s", msg)
	assert.NotContains(t, msg, "SQLSTATE 28000")
	assert.Contains(t, msg, fmt.Sprintf(`secret %q version %s`, f.name, old.VersionID))
	assert.Contains(t, msg, fmt.Sprintf(`secret %q version %s`, f.name, r.token))
	assert.NotContains(t, msg, "pw-r")
	assert.Contains(t, f.logs.String(), msgRetryToo)

	before = f.counts()
	_, err = pool.acquire(ctx)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "28P01", pgErr.Code)
	assert.Equal(t, counts{fetches: 1, dials: 1, refused: 1}, f.since(before), "the new version is refused: no retry")
	assert.NotContains(t, f.logs.String(), "pw-r")
}

// Connections refused together refresh the secret once, and each retries
// once.
func TestConcurrentRefusals(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a bound, not a measurement
	defer cancel()
	f := newFixture(t, "pw-c1-Zq9")
	pool := hold(t, f.pool(placeholder))
	_, err := pool.acquire(ctx) // caches the old version
	require.NoError(t, err)
	f.rotate("pw-c2-Zq9").all()

	// The first dial of each connection waits for the others, so that all
	// of them use the old password and are refused together.
	const n = 8
	var arrived atomic.Int64
	together := make(chan struct{})
	f.gate = func(ctx context.Context) error {
		k := arrived.Add(1)
		if k == n {
			close(together)
		}
		if k > n {
			return nil
		}
		select {
		case <-together:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	before := f.counts()
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = pool.acquire(ctx) })
	}
	wg.Wait()
	for i := range n {
		require.NoError(t, errs[i], "connection %d", i)
	}
	assert.Equal(t, counts{fetches: 1, dials: 2 * n, refused: n}, f.since(before), "one refresh; each connection refused once and retried once")
	assert.Equal(t, 1, strings.Count(f.logs.String(), msgRetry), "the refresh is logged once")
}

// A connect that fails for any other reason than a refused password
// neither refreshes the secret nor dials again.
func TestNoRetryWithoutRefusedPassword(t *testing.T) {
	ctx := context.Background()
	dead, err := procs.FreePort()
	require.NoError(t, err)
	at := func(port int, dbname string) func(role, password string) string {
		return func(role, password string) string {
			if dbname == "" {
				dbname = role
			}
			return fmt.Sprintf(`{"engine":"postgres","host":"127.0.0.1","port":%d,"dbname":%q,"username":%q,"password":%q}`, port, dbname, role, password)
		}
	}
	for _, tc := range []struct {
		name   string
		layout func(role, password string) string
		conn   string
		setup  func(t *testing.T, role string)
		want   string // "": connects; "dial": a network error; else the SQLSTATE
	}{
		{name: "connects", layout: secretFor, conn: placeholder},
		{name: "server down", layout: at(dead, ""), conn: placeholder, want: "dial"},
		{name: "server refuses TLS (sslmode=require)", layout: secretFor,
			conn: "host=placeholder.invalid user=placeholder sslmode=require", want: "dial"},
		{name: "role may not log in (28000, pgx tries its next config)", layout: secretFor, conn: placeholder, want: "28000",
			setup: func(t *testing.T, role string) {
				require.NoError(t, pg.Exec(ctx, "ALTER ROLE "+role+" NOLOGIN"))
			}},
		{name: "no such database (3D000)", layout: at(pg.Port, "nosuchdb"), conn: placeholder, want: "3D000"},
		{name: "unix socket", layout: masterSecretFor, conn: fmt.Sprintf("host=%s port=%d user=placeholder", pg.SocketDir(), pg.Port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, "pw-n-Zq9", tc.layout)
			if tc.setup != nil {
				tc.setup(t, f.role)
			}
			pool := hold(t, f.pool(tc.conn))
			_, err := f.cache.Get(ctx, f.name)
			require.NoError(t, err)
			before := f.counts()
			_, err = pool.acquire(ctx)
			switch tc.want {
			case "":
				require.NoError(t, err)
			case "dial":
				require.Error(t, err)
				assert.Empty(t, pgErrors(err), "%v", err)
			default:
				var pgErr *pgconn.PgError
				require.ErrorAs(t, err, &pgErr)
				assert.Equal(t, tc.want, pgErr.Code)
			}
			assert.Equal(t, counts{dials: 1}, f.since(before), "one dial, no refresh: %v", err)
			assert.NotContains(t, f.logs.String(), "secretpassword")
		})
	}
}

// The retry follows the attempt that was refused, whatever pgx tried
// before it: TLS then plaintext (sslmode=prefer), plaintext then TLS
// (allow), a host that is down, a name with several addresses, a server
// pgx must connect to again (target_session_attrs=prefer-standby). A
// connection without rotation dials as often as pgx alone would.
func TestRotationFallbacks(t *testing.T) {
	ctx := context.Background()
	dead, err := procs.FreePort()
	require.NoError(t, err)
	const name = "db.rotation.test"
	named := func(role, password string) string {
		return fmt.Sprintf(`{"engine":"postgres","host":%q,"port":%d,"dbname":%q,"username":%q,"password":%q}`, name, pg.Port, role, role, password)
	}
	for _, tc := range []struct {
		name          string
		layout        func(role, password string) string
		conn          func(f *fixture) string
		edit          func(*pgxpool.Config)
		happy, rotate int // dials
	}{
		{name: "sslmode=prefer, server without TLS", layout: secretFor, happy: 2, rotate: 3,
			conn: func(*fixture) string { return "host=placeholder.invalid user=placeholder sslmode=prefer" }},
		{name: "sslmode=allow", layout: secretFor, happy: 1, rotate: 2,
			conn: func(*fixture) string { return "host=placeholder.invalid user=placeholder sslmode=allow" }},
		{name: "first host down", layout: masterSecretFor, happy: 2, rotate: 3,
			conn: func(f *fixture) string {
				return fmt.Sprintf("host=127.0.0.1,127.0.0.1 port=%d,%d dbname=%s user=placeholder sslmode=disable", dead, pg.Port, f.role)
			}},
		{name: "a name with two addresses, the first down", layout: named, happy: 2, rotate: 4,
			conn: func(*fixture) string { return placeholder },
			edit: resolve(map[string][]string{name: {fmt.Sprintf("127.0.0.1:%d", dead), fmt.Sprintf("127.0.0.1:%d", pg.Port)}})},
		{name: "first host does not resolve", layout: masterSecretFor, happy: 1, rotate: 2,
			conn: func(f *fixture) string {
				return fmt.Sprintf("host=unknown.rotation.test,%s port=%d dbname=%s user=placeholder sslmode=disable", name, pg.Port, f.role)
			},
			edit: resolve(map[string][]string{name: {"127.0.0.1"}})},
		{name: "target_session_attrs=prefer-standby on a primary", layout: secretFor, happy: 2, rotate: 3,
			conn: func(*fixture) string { return placeholder + " target_session_attrs=prefer-standby" }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixtureWith(t, "pw-f1-Zq9", tc.layout)
			var edits []func(*pgxpool.Config)
			if tc.edit != nil {
				edits = append(edits, tc.edit)
			}
			pool := hold(t, f.pool(tc.conn(f), edits...))
			_, err := f.cache.Get(ctx, f.name)
			require.NoError(t, err)

			before := f.counts()
			c, err := pool.acquire(ctx)
			require.NoError(t, err)
			assert.Equal(t, f.role, currentUser(t, c))
			assert.Equal(t, counts{dials: tc.happy}, f.since(before), "without rotation")

			f.rotate("pw-f2-Zq9").all()
			before = f.counts()
			c, err = pool.acquire(ctx)
			require.NoError(t, err, "the first new connection after the rotation")
			assert.Equal(t, f.role, currentUser(t, c))
			assert.Equal(t, counts{fetches: 1, dials: tc.rotate, refused: 1}, f.since(before), "after the rotation")
		})
	}
}

// resolve makes a pool look host names up in names.
func resolve(names map[string][]string) func(*pgxpool.Config) {
	return func(c *pgxpool.Config) {
		c.ConnConfig.LookupFunc = func(_ context.Context, host string) ([]string, error) {
			addrs, ok := names[host]
			if !ok {
				return nil, &net.DNSError{Err: "no such host", Name: host, IsNotFound: true}
			}
			return addrs, nil
		}
	}
}

// With target_session_attrs=prefer-standby and only a primary, pgx logs
// in, sets the session aside and connects to the primary again after its
// other attempts. When the password is rotated in between, that last
// attempt is refused with no attempt after it: the connect fails with the
// server's 28P01 and the next connection uses the new version.
func TestRefusedOnLastAttempt(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-l1-Zq9")
	pool := hold(t, f.pool(placeholder+" target_session_attrs=prefer-standby"))
	_, err := f.cache.Get(ctx, f.name)
	require.NoError(t, err)
	r := f.rotate("pw-l2-Zq9")
	f.gate = func(context.Context) error {
		if f.dials.Load() == 2 { // pgx's second login to the primary
			r.all()
		}
		return nil
	}

	before := f.counts()
	_, err = pool.acquire(ctx)
	require.Error(t, err)
	assert.Equal(t, counts{fetches: 1, dials: 2, refused: 1}, f.since(before))
	pgErrs := pgErrors(err)
	require.Len(t, pgErrs, 1, "%v", err)
	assert.Equal(t, "28P01", pgErrs[0].Code)
	assert.Contains(t, err.Error(), "(SQLSTATE 28P01)")
	assert.Contains(t, err.Error(), "the next connection uses version "+r.token)

	f.gate = nil
	before = f.counts()
	c, err := pool.acquire(ctx)
	require.NoError(t, err)
	assert.Equal(t, f.role, currentUser(t, c))
	assert.Equal(t, counts{dials: 2}, f.since(before))
}

// A query error on an open connection is not a refused login.
func TestQueryErrorsDoNotRefresh(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "pw-q-Zq9")
	c, err := hold(t, f.pool(placeholder)).acquire(ctx)
	require.NoError(t, err)
	before := f.counts()
	_, err = c.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '28P01'; END $$")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "28P01", pgErr.Code)
	assert.Equal(t, "x", pgErr.Message, "a query's error is left as the server sent it")
	assert.Equal(t, counts{}, f.since(before))
	assert.Equal(t, f.role, currentUser(t, c), "the connection stays usable")
}
