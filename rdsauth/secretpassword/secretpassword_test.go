package secretpassword_test

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/rdsauth/secretpassword"
	"github.com/irsakit/irsakit/secrets"
)

// rotate does what a single-user rotation function does: stage the new
// password as AWSPENDING (createSecret), change it in the database
// (setSecret), then move AWSCURRENT to it (finishSecret). between runs
// after the pending version is stored and before the database changes.
func rotate(t *testing.T, role, name, password, token string, between func()) {
	t.Helper()
	ctx := context.Background()
	rot := rotator(t)
	_, err := rot.PutSecretValue(ctx, &sm.PutSecretValueInput{SecretId: aws.String(name), ClientRequestToken: aws.String(token),
		SecretString: aws.String(secretFor(role, password)), VersionStages: []string{"AWSPENDING"}})
	require.NoError(t, err)
	if between != nil {
		between()
	}
	setPassword(t, role, password)
	desc, err := rot.DescribeSecret(ctx, &sm.DescribeSecretInput{SecretId: aws.String(name)})
	require.NoError(t, err)
	var current string
	for id, stages := range desc.VersionIdsToStages {
		for _, st := range stages {
			if st == "AWSCURRENT" {
				current = id
			}
		}
	}
	require.NotEmpty(t, current)
	_, err = rot.UpdateSecretVersionStage(ctx, &sm.UpdateSecretVersionStageInput{SecretId: aws.String(name), VersionStage: aws.String("AWSCURRENT"),
		MoveToVersionId: aws.String(token), RemoveFromVersionId: aws.String(current)})
	require.NoError(t, err)
}

func newPool(t *testing.T, cache *secrets.Cache, name string, logs *lockedBuffer) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig("host=placeholder.invalid user=placeholder sslmode=disable pool_max_conns=20")
	require.NoError(t, err)
	cfg.BeforeConnect = secretpassword.BeforeConnect(cache, name, func(o *secretpassword.Options) {
		o.Logger = slog.New(slog.NewJSONHandler(logs, nil))
	})
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

func query(t *testing.T, c *pgxpool.Conn) string {
	t.Helper()
	var user string
	require.NoError(t, c.QueryRow(context.Background(), "SELECT current_user").Scan(&user))
	return user
}

// A real rotation, against a PostgreSQL that checks passwords and the
// Secrets Manager stand-in: the pending version is never used, open
// connections keep working, the one new connection that meets the old
// password is refused and refreshes the secret, and the next one connects.
func TestRotation(t *testing.T) {
	ctx := context.Background()
	role, name := newRole(t, "pw-one-Zq9")
	var logs lockedBuffer
	cache := newCache(t) // TTL one hour: only the refusal can bring the rotation in
	pool := newPool(t, cache, name, &logs)

	established, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer established.Release()
	assert.Equal(t, role, query(t, established))
	var held []*pgxpool.Conn // held, so each Acquire opens a new connection
	defer func() {
		for _, c := range held {
			c.Release()
		}
	}()

	token := "7f6e4d3c-2b1a-4f9e-8d7c-6b5a4f3e2d1c"
	rotate(t, role, name, "pw-two-Zq9", token, func() {
		// AWSPENDING is staged; AWSCURRENT is still the old password, even
		// when the cache asks Secrets Manager again.
		v, err := cache.Refresh(ctx, name)
		require.NoError(t, err)
		assert.NotEqual(t, token, v.VersionID, "the pending version was read as current")
		c, err := pool.Acquire(ctx)
		require.NoError(t, err, "a new connection while the rotation is pending")
		held = append(held, c)
	})
	assert.Equal(t, role, query(t, established), "an open connection broke with the rotation")

	fetches := cache.Fetches()
	_, err = pool.Acquire(ctx)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr, "the cached password was not refused")
	assert.Equal(t, "28P01", pgErr.Code)
	assert.Equal(t, fetches+1, cache.Fetches(), "the refusal refreshes the secret once")

	c, err := pool.Acquire(ctx)
	require.NoError(t, err, "the connection after the refusal")
	held = append(held, c)
	assert.Equal(t, role, query(t, c))
	v, err := cache.Get(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, token, v.VersionID)
	assert.Equal(t, fetches+1, cache.Fetches())
	assert.Equal(t, role, query(t, established))

	out := logs.String()
	assert.Contains(t, out, `"level":"INFO","msg":"secretpassword: the database refused the cached password; the secret was refreshed for the next connection"`)
	assert.Contains(t, out, `"version_id":"`+token+`"`)
	assert.NotContains(t, out, "pw-one-Zq9")
	assert.NotContains(t, out, "pw-two-Zq9")
	assert.NotContains(t, err2str(err), "pw-one-Zq9")
}

func err2str(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// Connections refused together refresh the secret once.
func TestConcurrentRefusalsRefreshOnce(t *testing.T) {
	ctx := context.Background()
	role, name := newRole(t, "pw-a-Zq9")
	var logs lockedBuffer
	cache := newCache(t)
	pool := newPool(t, cache, name, &logs)
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	c.Release()
	rotate(t, role, name, "pw-b-Zq9", "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d", nil)

	fetches := cache.Fetches()
	const n = 8
	var wg sync.WaitGroup
	conns := make([]*pgxpool.Conn, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { conns[i], errs[i] = pool.Acquire(ctx) })
	}
	wg.Wait()
	refused := 0
	for i := range n {
		var pgErr *pgconn.PgError
		switch {
		case errs[i] == nil:
			conns[i].Release()
		case errors.As(errs[i], &pgErr) && pgErr.Code == "28P01":
			refused++
		default:
			t.Fatalf("unexpected error: %v", errs[i])
		}
	}
	assert.Positive(t, refused, "no connection met the old password")
	assert.Equal(t, fetches+1, cache.Fetches(), "%d refusals", refused)
	c, err = pool.Acquire(ctx)
	require.NoError(t, err)
	c.Release()
}

// Without a rotation, a refused password (the database changed, the secret
// did not) refreshes, finds the same version and says so.
func TestRefusalWithoutNewVersionIsReported(t *testing.T) {
	ctx := context.Background()
	role, name := newRole(t, "pw-x-Zq9")
	var logs lockedBuffer
	cache := newCache(t)
	pool := newPool(t, cache, name, &logs)
	setPassword(t, role, "pw-y-Zq9")
	_, err := pool.Acquire(ctx)
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	assert.Equal(t, "28P01", pgErr.Code)
	assert.Contains(t, logs.String(), `"level":"WARN","msg":"secretpassword: the database refused the password of the secret's current version`)
	assert.NotContains(t, logs.String(), "pw-")
}

// A query error on an open connection is not a refused login.
func TestQueryErrorsDoNotRefresh(t *testing.T) {
	ctx := context.Background()
	_, name := newRole(t, "pw-q-Zq9")
	var logs lockedBuffer
	cache := newCache(t)
	pool := newPool(t, cache, name, &logs)
	c, err := pool.Acquire(ctx)
	require.NoError(t, err)
	defer c.Release()
	fetches := cache.Fetches()
	_, err = c.Exec(ctx, "DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '28P01'; END $$")
	var pgErr *pgconn.PgError
	require.ErrorAs(t, err, &pgErr)
	require.Equal(t, "28P01", pgErr.Code)
	assert.Equal(t, fetches, cache.Fetches())
	assert.Equal(t, "rot", query(t, c)[:3], "the connection stays usable")
}

func TestApply(t *testing.T) {
	creds := secrets.RDSCredentials{Engine: "postgres", Host: "new.db.internal", Port: 6543, DBName: "app", Username: "app_user"}.WithPassword("p@ss/word")

	pool, err := pgxpool.ParseConfig("host=old.db.internal port=5432 user=x password=y dbname=z sslmode=verify-full")
	require.NoError(t, err)
	require.NoError(t, secretpassword.Apply(&pool.ConnConfig.Config, creds))
	cc := pool.ConnConfig
	assert.Equal(t, "new.db.internal", cc.Host)
	assert.Equal(t, uint16(6543), cc.Port)
	assert.Equal(t, "app_user", cc.User)
	assert.Equal(t, "p@ss/word", cc.Password)
	assert.Equal(t, "app", cc.Database)
	require.NotNil(t, cc.TLSConfig)
	assert.Equal(t, "new.db.internal", cc.TLSConfig.ServerName, "TLS no longer verifies the new host")

	// sslmode=prefer keeps its plaintext fallback, retargeted; other hosts go.
	cfg, err := pgx.ParseConfig("host=a,b port=5432 user=x sslmode=prefer")
	require.NoError(t, err)
	require.NoError(t, secretpassword.Apply(&cfg.Config, creds))
	require.Len(t, cfg.Fallbacks, 1, "want the one plaintext fallback of sslmode=prefer")
	assert.Equal(t, "new.db.internal", cfg.Fallbacks[0].Host)
	assert.Equal(t, uint16(6543), cfg.Fallbacks[0].Port)
	assert.Nil(t, cfg.Fallbacks[0].TLSConfig)

	// An RDS-managed master secret (user and password only) keeps the host.
	cfg, _ = pgx.ParseConfig("host=keep.db port=5432 dbname=keep")
	require.NoError(t, secretpassword.Apply(&cfg.Config, secrets.RDSCredentials{Username: "postgres"}.WithPassword("pw")))
	assert.Equal(t, "keep.db", cfg.Host)
	assert.Equal(t, uint16(5432), cfg.Port)
	assert.Equal(t, "keep", cfg.Database)
	assert.Equal(t, "postgres", cfg.User)

	for _, bad := range []secrets.RDSCredentials{{Engine: "mysql", Username: "u"}, {Engine: "postgres"}} {
		err := secretpassword.Apply(&cfg.Config, bad)
		require.Error(t, err)
		assert.Regexp(t, `^secretpassword: the secret (is for engine "mysql"|has no username)`, err.Error())
	}

	// ConnString round-trips through pgx's parser.
	parsed, err := pgx.ParseConfig(creds.ConnString())
	require.NoError(t, err)
	assert.Equal(t, creds.Host, parsed.Host)
	assert.Equal(t, uint16(6543), parsed.Port)
	assert.Equal(t, creds.Username, parsed.User)
	assert.Equal(t, creds.Password(), parsed.Password)
	assert.Equal(t, "app", parsed.Database)
}

// Without any refusal, the hook follows a rotation once the cache's TTL
// ends, and reports a secret it cannot use by name, never by content.
func TestBeforeConnectErrors(t *testing.T) {
	ctx := context.Background()
	cache := newCache(t)
	cfg, err := pgx.ParseConfig("host=placeholder user=placeholder")
	require.NoError(t, err)
	err = secretpassword.BeforeConnect(cache, "rds/missing")(ctx, cfg.Copy())
	assert.ErrorIs(t, err, secrets.ErrNotFound)

	_, _, err = srv.CreateString("rds/not-json", "Zq9-not-json")
	require.NoError(t, err)
	err = secretpassword.BeforeConnect(cache, "rds/not-json")(ctx, cfg.Copy())
	var de *secrets.DecodeError
	require.ErrorAs(t, err, &de)
	assert.Contains(t, err.Error(), `secretpassword: secret "rds/not-json"`)
	assert.NotContains(t, err.Error(), "Zq9")

	_, _, err = srv.CreateString("rds/mysql", `{"engine":"mysql","username":"u","password":"Zq9-pw"}`)
	require.NoError(t, err)
	err = secretpassword.BeforeConnect(cache, "rds/mysql")(ctx, cfg.Copy())
	require.ErrorContains(t, err, `not PostgreSQL; name a PostgreSQL secret (secret "rds/mysql")`)
	assert.NotContains(t, err.Error(), "Zq9")
}
