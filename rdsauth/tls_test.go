package rdsauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/rdsauth"
)

const rdsCABundle = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

// A server whose certificate nobody checks never gets a token: with
// sslmode=require (TLS, any certificate) an impostor on the path would
// receive a password good for 15 minutes. Only an explicit opt-in allows it.
func TestUnverifiedTLSGetsNoToken(t *testing.T) {
	ctx := context.Background()
	// The impostor: a verifying front like the real one, but with a
	// certificate from a CA nobody configured.
	impostor, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM, Region: env.Region})
	require.NoError(t, err)
	defer impostor.Close()
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app", impostor.Port())

	for _, tt := range []struct {
		name, conn string
		want       error
	}{
		{"sslmode=require", base + " sslmode=require", rdsauth.ErrUnverifiedTLS},
		{"ssl=true in a URL", fmt.Sprintf("postgres://app@127.0.0.1:%d/app?ssl=true", impostor.Port()), rdsauth.ErrUnverifiedTLS},
		{"sslmode=prefer", base + " sslmode=prefer", rdsauth.ErrInsecureTransport},
		{"sslmode=allow", base + " sslmode=allow", rdsauth.ErrInsecureTransport},
		{"sslmode=disable", base + " sslmode=disable", rdsauth.ErrInsecureTransport},
		{"no sslmode (libpq default prefer)", base, rdsauth.ErrInsecureTransport},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := impostor.Accepted() + impostor.Rejected()
			pool, err := rdsauth.NewPool(ctx, tt.conn, sessionConfig(t), fakeClock)
			if err == nil {
				defer pool.Close()
				pool.Exec(ctx, "SELECT 1")
			}
			assert.Equal(t, before, impostor.Accepted()+impostor.Rejected(), "a token was sent to a server whose certificate nobody checked")
			require.ErrorIs(t, err, tt.want)
			assert.Contains(t, err.Error(), "sslmode=verify-full")
			assert.Contains(t, err.Error(), rdsCABundle)
			db, err := rdsauth.OpenDB(tt.conn, sessionConfig(t), fakeClock)
			if err == nil {
				db.Close()
			}
			assert.ErrorIs(t, err, tt.want, "OpenDB")
		})
	}

	t.Run("BeforeConnect of a TokenSource", func(t *testing.T) {
		src, err := rdsauth.NewTokenSource(impostor.Addr(), "app", sessionConfig(t).Credentials, fakeClock, func(o *rdsauth.Options) { o.Region = env.Region })
		require.NoError(t, err)
		defer src.Close()
		poolCfg, err := pgxpool.ParseConfig(base + " sslmode=require")
		require.NoError(t, err)
		poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
		pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
		require.NoError(t, err)
		defer pool.Close()
		before := impostor.Accepted() + impostor.Rejected()
		_, err = pool.Exec(ctx, "SELECT 1")
		assert.ErrorIs(t, err, rdsauth.ErrUnverifiedTLS)
		assert.Equal(t, before, impostor.Accepted()+impostor.Rejected(), "a token was sent to a server whose certificate nobody checked")
		assert.Zero(t, src.Mints())
	})

	t.Run("AllowUnverifiedTLS opts in", func(t *testing.T) {
		before := impostor.Accepted()
		pool, err := rdsauth.NewPool(ctx, base+" sslmode=require", sessionConfig(t), fakeClock,
			func(o *rdsauth.Options) { o.AllowUnverifiedTLS = true })
		require.NoError(t, err)
		defer pool.Close()
		_, err = pool.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		assert.Equal(t, before+1, impostor.Accepted())
		_, err = rdsauth.NewPool(ctx, base+" sslmode=prefer", sessionConfig(t), fakeClock,
			func(o *rdsauth.Options) { o.AllowUnverifiedTLS = true })
		assert.ErrorIs(t, err, rdsauth.ErrInsecureTransport, "AllowUnverifiedTLS does not allow plaintext")
	})

	t.Run("AllowInsecure allows anything", func(t *testing.T) {
		for _, mode := range []string{"disable", "prefer", "require"} {
			pool, err := rdsauth.NewPool(ctx, base+" sslmode="+mode, sessionConfig(t), fakeClock,
				func(o *rdsauth.Options) { o.AllowInsecure = true })
			require.NoError(t, err, mode)
			pool.Close()
		}
	})
}

// Verified TLS is accepted, and connects to the front whose CA it names.
func TestVerifiedTLSIsAccepted(t *testing.T) {
	ctx := context.Background()
	base := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app", front.Port())
	roots := x509.NewCertPool()
	require.True(t, roots.AppendCertsFromPEM(front.CAPEM()))
	for _, tt := range []struct {
		name string
		conn string
		opt  func(*rdsauth.Options)
		edit func(*pgxpool.Config)
	}{
		{name: "verify-full", conn: base + " sslmode=verify-full sslrootcert=" + caBundle},
		{name: "verify-ca", conn: base + " sslmode=verify-ca sslrootcert=" + caBundle},
		// libpq and pgx check the chain when a root certificate is given.
		{name: "require with sslrootcert", conn: base + " sslmode=require sslrootcert=" + caBundle},
		{name: "RootCAFile over require", conn: base + " sslmode=require", opt: func(o *rdsauth.Options) { o.RootCAFile = caBundle }},
		{name: "RootCAFile over prefer", conn: base, opt: func(o *rdsauth.Options) { o.RootCAFile = caBundle }},
		{name: "tls.Config with RootCAs", conn: base + " sslmode=require", edit: func(c *pgxpool.Config) {
			c.ConnConfig.TLSConfig = &tls.Config{RootCAs: roots, ServerName: "127.0.0.1"}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			poolCfg, err := pgxpool.ParseConfig(tt.conn)
			require.NoError(t, err)
			if tt.edit != nil {
				tt.edit(poolCfg)
			}
			opts := []func(*rdsauth.Options){fakeClock}
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			src, err := rdsauth.ConfigurePool(poolCfg, sessionConfig(t), opts...)
			require.NoError(t, err)
			defer src.Close()
			pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
			require.NoError(t, err)
			defer pool.Close()
			var user string
			require.NoError(t, pool.QueryRow(ctx, "SELECT current_user").Scan(&user))
			assert.Equal(t, "app", user)
		})
	}

	t.Run("sslrootcert=system", func(t *testing.T) {
		pool, err := rdsauth.NewPool(ctx, "host=mydb.c9akciq32.us-east-1.rds.amazonaws.com user=app sslmode=require sslrootcert=system", sessionConfig(t), fakeClock)
		require.NoError(t, err, "pgx turns sslrootcert=system into verify-full against the system roots")
		pool.Close()
	})
}

// A tls.Config built by hand is judged like the connection string's.
func TestHandBuiltTLSConfigIsChecked(t *testing.T) {
	cfg := sessionConfig(t)
	for _, tt := range []struct {
		name string
		tls  *tls.Config
		want error
	}{
		{"InsecureSkipVerify", &tls.Config{InsecureSkipVerify: true}, rdsauth.ErrUnverifiedTLS},
		{"InsecureSkipVerify with a verifier", &tls.Config{InsecureSkipVerify: true, VerifyConnection: func(tls.ConnectionState) error { return nil }}, nil},
		{"default verification", &tls.Config{ServerName: "mydb.c9akciq32.us-east-1.rds.amazonaws.com"}, nil},
	} {
		t.Run(tt.name, func(t *testing.T) {
			poolCfg, err := pgxpool.ParseConfig("host=mydb.c9akciq32.us-east-1.rds.amazonaws.com user=app sslmode=verify-full")
			require.NoError(t, err)
			poolCfg.ConnConfig.TLSConfig = tt.tls
			src, err := rdsauth.ConfigurePool(poolCfg, cfg)
			if tt.want == nil {
				require.NoError(t, err)
				src.Close()
				return
			}
			assert.ErrorIs(t, err, tt.want)
		})
	}
}

// The advice names the CA bundle of the endpoint's partition.
func TestTLSErrorNamesThePartitionsBundle(t *testing.T) {
	cfg := sessionConfig(t)
	for _, tt := range []struct{ host, url string }{
		{"mydb.c9akciq32.us-east-1.rds.amazonaws.com", rdsCABundle},
		{"mydb.c9akciq32.us-gov-west-1.rds.amazonaws.com", "https://truststore.pki.us-gov-west-1.rds.amazonaws.com/global/global-bundle.pem"},
		{"mydb.c9akciq32.cn-north-1.rds.amazonaws.com.cn", "https://rds-truststore.s3.cn-north-1.amazonaws.com.cn/global/global-bundle.pem"},
	} {
		t.Run(tt.host, func(t *testing.T) {
			_, err := rdsauth.NewPool(context.Background(), "host="+tt.host+" user=app sslmode=require", cfg)
			require.ErrorIs(t, err, rdsauth.ErrUnverifiedTLS)
			assert.Contains(t, err.Error(), tt.url)
			assert.Contains(t, err.Error(), "Options.AllowUnverifiedTLS")
		})
	}
}
