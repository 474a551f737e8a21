package secretpassword

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/secrets"
)

// codeInvalidPassword is the SQLSTATE of a refused password.
const codeInvalidPassword = "28P01"

// Options configure [BeforeConnect]. Every field has a usable zero value.
type Options struct {
	// Logger records the refresh a refused password causes (at Info, or
	// Warn when it fails or finds no new version); never a password.
	// Default: slog.Default().
	Logger *slog.Logger
}

// BeforeConnect returns a hook for pgxpool.Config.BeforeConnect (or
// stdlib.OptionBeforeConnect) that applies the database secret id
// (AWSCURRENT) to every new connection: user, password and, when the secret
// names them, host, port and database (see [Apply]). When the server
// refuses the password with 28P01, the secret is refreshed before the
// connect returns, so the next connection uses the rotated password (see the
// package documentation for why it cannot be this one).
func BeforeConnect(cache *secrets.Cache, id string, optFns ...func(*Options)) func(context.Context, *pgx.ConnConfig) error {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &hook{cache: cache, id: id, log: o.Logger, one: make(chan struct{}, 1)}
	return h.beforeConnect
}

type hook struct {
	cache *secrets.Cache
	id    string
	log   *slog.Logger
	one   chan struct{} // one refusal handled at a time
}

func (h *hook) beforeConnect(ctx context.Context, cc *pgx.ConnConfig) error {
	if cc == nil {
		return fmt.Errorf("secretpassword: nil pgx.ConnConfig")
	}
	v, err := h.cache.Get(ctx, h.id)
	if err != nil {
		return err
	}
	creds, err := v.RDS()
	if err != nil {
		return fmt.Errorf("secretpassword: secret %q: %w", h.id, err)
	}
	if err := Apply(&cc.Config, creds); err != nil {
		return fmt.Errorf("%w (secret %q)", err, h.id)
	}
	version := v.VersionID
	// Only a refusal during the login counts: once the connection is
	// validated, OnPgError sees the application's query errors.
	var connected atomic.Bool
	onErr := cc.OnPgError
	cc.OnPgError = func(pc *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		if pgErr != nil && pgErr.Code == codeInvalidPassword && !connected.Load() {
			h.refused(ctx, version)
		}
		if onErr != nil {
			return onErr(pc, pgErr)
		}
		return true
	}
	validate := cc.ValidateConnect
	cc.ValidateConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		if validate != nil {
			if err := validate(ctx, pc); err != nil {
				return err
			}
		}
		connected.Store(true)
		return nil
	}
	return nil
}

// refused refreshes the secret after the server refused the password of
// version, unless the cache already holds another version (refreshed for a
// connection refused at the same time).
func (h *hook) refused(ctx context.Context, version string) {
	// Refusals of one version arrive together when a pool opens several
	// connections at once: the first refreshes, the others then find the
	// new version cached.
	select {
	case h.one <- struct{}{}:
		defer func() { <-h.one }()
	case <-ctx.Done():
		return
	}
	if cur, err := h.cache.Get(ctx, h.id); err == nil && cur.VersionID != version {
		return
	}
	nv, err := h.cache.Refresh(ctx, h.id)
	switch {
	case err != nil:
		h.log.Warn("secretpassword: the database refused the password and refreshing the secret failed",
			"secret_id", h.id, "version_id", version, "err", err)
	case nv.VersionID == version:
		h.log.Warn("secretpassword: the database refused the password of the secret's current version; the password may be changed before AWSCURRENT moves to it",
			"secret_id", h.id, "version_id", version)
	default:
		h.log.Info("secretpassword: the database refused the cached password; the secret was refreshed for the next connection",
			"secret_id", h.id, "old_version_id", version, "version_id", nv.VersionID)
	}
}

// Apply sets the user, password and, when the secret has them, host, port
// and database of a pgx connection config (for a pool:
// &poolConfig.ConnConfig.Config). TLS settings are kept; a TLS server name
// that was the old host follows the new host. Fallback configs for other
// hosts are dropped when the secret names the host.
func Apply(cfg *pgconn.Config, creds secrets.RDSCredentials) error {
	if !creds.IsPostgres() {
		return fmt.Errorf("secretpassword: the secret is for engine %q, not PostgreSQL; name a PostgreSQL secret", creds.Engine)
	}
	if creds.Username == "" {
		return fmt.Errorf("secretpassword: the secret has no username; store it in the RDS layout with \"username\"")
	}
	cfg.User, cfg.Password = creds.Username, creds.Password()
	if creds.DBName != "" {
		cfg.Database = creds.DBName
	}
	if creds.Host == "" && creds.Port == 0 {
		return nil
	}
	oldHost, oldPort := cfg.Host, cfg.Port
	host, port := oldHost, oldPort
	if creds.Host != "" {
		host = creds.Host
	}
	if creds.Port != 0 {
		port = uint16(creds.Port)
	}
	cfg.Host, cfg.Port = host, port
	cfg.TLSConfig = retarget(cfg.TLSConfig, oldHost, host)
	var fbs []*pgconn.FallbackConfig
	for _, fb := range cfg.Fallbacks {
		// Keep the TLS variants of the primary host (sslmode=prefer/allow).
		if fb.Host != oldHost || fb.Port != oldPort {
			continue
		}
		fbs = append(fbs, &pgconn.FallbackConfig{Host: host, Port: port, TLSConfig: retarget(fb.TLSConfig, oldHost, host)})
	}
	cfg.Fallbacks = fbs
	return nil
}

// retarget returns t, or a clone of it verifying host when it verified
// oldHost.
func retarget(t *tls.Config, oldHost, host string) *tls.Config {
	if t == nil || t.ServerName == "" || t.ServerName != oldHost || host == oldHost {
		return t
	}
	t = t.Clone()
	t.ServerName = host
	return t
}
