package secretpassword_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/rdsauth/secretpassword"
	"github.com/irsakit/irsakit/secrets"
)

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

// database/sql hands BeforeConnect a shallow copy of its configuration for
// every connection: the hook must leave what the copy shares alone.
func TestBeforeConnectLeavesCallerConfig(t *testing.T) {
	ctx := context.Background()
	_, name := newRole(t, "pw-cfg-Zq9")
	cache := newCache(t)
	cfg, err := pgx.ParseConfig("host=a.invalid,b.invalid user=placeholder sslmode=prefer")
	require.NoError(t, err)
	want := make([]pgconn.FallbackConfig, len(cfg.Fallbacks))
	for i, fb := range cfg.Fallbacks {
		want[i] = *fb
	}
	for range 2 {
		shallow := *cfg
		require.NoError(t, secretpassword.BeforeConnect(cache, name)(ctx, &shallow))
		assert.Equal(t, "127.0.0.1", shallow.Host)
	}
	require.Len(t, cfg.Fallbacks, len(want))
	for i, fb := range cfg.Fallbacks {
		assert.Equal(t, want[i], *fb, "fallback %d", i)
	}
	assert.Equal(t, "a.invalid", cfg.Host)
	assert.Nil(t, cfg.AfterNetConnect)
}
