package secretpassword

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"sync"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/secrets"
)

// Options configure [BeforeConnect]. Every field has a usable zero value.
type Options struct {
	// Logger records the refresh a refused password causes (at Info, or
	// Warn when it fails, finds no new version or the new password is
	// refused too); never a password. Default: slog.Default().
	Logger *slog.Logger
}

// BeforeConnect returns a hook for pgxpool.Config.BeforeConnect (or
// stdlib.OptionBeforeConnect) that applies the database secret id
// (AWSCURRENT) to every new connection: user, password and, when the secret
// names them, host, port and database (see [Apply]).
//
// When the server refuses the password with SQLSTATE 28P01 during the
// login, the secret is refreshed at once (one Secrets Manager call however
// many connections were refused together) and, when that brings a new
// version, the same connect tries the same server once more with it; see
// the package documentation. The hook prepares the one connect it is
// called for: hooks that reorder or replace the hosts (such as
// stdlib.RandomizeHostOrderFunc) must run before it. The returned hook is
// safe for concurrent use.
func BeforeConnect(cache *secrets.Cache, id string, optFns ...func(*Options)) func(context.Context, *pgx.ConnConfig) error {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	h := &hook{cache: cache, id: id, log: o.Logger, flights: map[string]*flight{}}
	return h.beforeConnect
}

type hook struct {
	cache *secrets.Cache
	id    string
	log   *slog.Logger

	mu      sync.Mutex
	flights map[string]*flight // refused version id -> the refresh it caused
}

// flight is one refresh of the secret after a version was refused; the
// connections refused with that version meanwhile share its result.
type flight struct {
	done chan struct{}
	v    secrets.Value
	err  error
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
	h.prepare(ctx, &cc.Config, v.VersionID)
	return nil
}

// refresh returns the secret's current version after the server refused
// the password of version refused: the cached version when another
// refusal already brought a newer one, else Secrets Manager's answer
// (fetched reports that call). Connections refused with the same version
// while a refresh is in flight share it.
func (h *hook) refresh(ctx context.Context, refused string) (v secrets.Value, fetched bool, err error) {
	h.mu.Lock()
	if f := h.flights[refused]; f != nil {
		h.mu.Unlock()
		select {
		case <-f.done:
			return f.v, false, f.err
		case <-ctx.Done():
			return secrets.Value{}, false, ctx.Err()
		}
	}
	f := &flight{done: make(chan struct{})}
	h.flights[refused] = f
	h.mu.Unlock()
	defer func() {
		f.v, f.err = v, err
		h.mu.Lock()
		delete(h.flights, refused)
		h.mu.Unlock()
		close(f.done)
	}()
	if cur, err := h.cache.Get(ctx, h.id); err == nil && cur.VersionID != refused {
		return cur, false, nil
	}
	v, err = h.cache.Refresh(ctx, h.id)
	return v, err == nil, err
}

// Apply sets the user, password and, when the secret has them, host, port
// and database of a pgx connection config (for a pool:
// &poolConfig.ConnConfig.Config). TLS settings are kept; a TLS server name
// that was the old host follows the new host. Fallback configs for other
// hosts are dropped when the secret names the host.
func Apply(cfg *pgconn.Config, creds secrets.RDSCredentials) error {
	if err := usable(creds); err != nil {
		return err
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

// usable checks that creds can log in to PostgreSQL.
func usable(creds secrets.RDSCredentials) error {
	if !creds.IsPostgres() {
		return fmt.Errorf("secretpassword: the secret is for engine %q, not PostgreSQL; name a PostgreSQL secret", creds.Engine)
	}
	if creds.Username == "" {
		return fmt.Errorf("secretpassword: the secret has no username; store it in the RDS layout with \"username\"")
	}
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
