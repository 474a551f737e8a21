package secrets

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// RDSCredentials is the content of a database secret in the layout RDS and
// the Secrets Manager console use:
//
//	{"engine": "postgres", "host": "db.example.com", "port": 5432,
//	 "dbname": "app", "username": "app", "password": "..."}
//
// Secrets RDS manages itself (ManageMasterUserPassword) hold only username
// and password. Printing RDSCredentials (String, GoString, any fmt verb,
// slog, encoding/json) redacts the password.
type RDSCredentials struct {
	Username string
	Password string
	// Engine is e.g. "postgres", "aurora-postgresql", "mysql".
	Engine string
	Host   string
	// Port is 0 when the secret has none. The secret may store it as a
	// number or as a string; both decode.
	Port   int
	DBName string
	// DBInstanceIdentifier / DBClusterIdentifier, when the secret names
	// its database.
	DBInstanceIdentifier string
	DBClusterIdentifier  string
}

// RDS reads a database secret (see [RDSCredentials]).
func (c *Cache) RDS(ctx context.Context, id string, optFns ...func(*GetOptions)) (RDSCredentials, error) {
	return JSON[RDSCredentials](ctx, c, id, optFns...)
}

// BeforeConnect returns a pgxpool.Config.BeforeConnect hook that applies the
// database secret id to every new connection, so a pool picks up a rotated
// password without a restart (as soon as the cache has the new version).
//
//	cfg, _ := pgxpool.ParseConfig("sslmode=verify-full sslrootcert=/etc/rds/ca.pem")
//	cfg.BeforeConnect = cache.BeforeConnect("prod/app/db")
func (c *Cache) BeforeConnect(id string, optFns ...func(*GetOptions)) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cfg *pgx.ConnConfig) error {
		creds, err := c.RDS(ctx, id, optFns...)
		if err != nil {
			return err
		}
		return creds.ApplyTo(&cfg.Config)
	}
}

// UnmarshalJSON decodes the RDS layout, accepting port as a number or a
// string. Its errors name fields, never values.
func (r *RDSCredentials) UnmarshalJSON(b []byte) error {
	var raw struct {
		Username             *string         `json:"username"`
		Password             *string         `json:"password"`
		Engine               string          `json:"engine"`
		Host                 string          `json:"host"`
		Port                 json.RawMessage `json:"port"`
		DBName               string          `json:"dbname"`
		DBInstanceIdentifier string          `json:"dbInstanceIdentifier"`
		DBClusterIdentifier  string          `json:"dbClusterIdentifier"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return err
	}
	if raw.Username == nil || *raw.Username == "" {
		return &FieldError{Field: "username", Reason: "missing or empty"}
	}
	if raw.Password == nil {
		return &FieldError{Field: "password", Reason: "missing"}
	}
	port := 0
	if p := bytes.TrimSpace(raw.Port); len(p) > 0 && string(p) != "null" {
		s := string(p)
		if uq, err := strconv.Unquote(s); err == nil {
			s = uq
		}
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n < 1 || n > 65535 {
			return &FieldError{Field: "port", Reason: "must be a TCP port number (1-65535), as a number or a string"}
		}
		port = n
	}
	*r = RDSCredentials{
		Username: *raw.Username, Password: *raw.Password, Engine: raw.Engine, Host: raw.Host, Port: port,
		DBName: raw.DBName, DBInstanceIdentifier: raw.DBInstanceIdentifier, DBClusterIdentifier: raw.DBClusterIdentifier,
	}
	return nil
}

// MarshalJSON writes the RDS layout with the password redacted.
func (r RDSCredentials) MarshalJSON() ([]byte, error) {
	type out struct {
		Username             string `json:"username"`
		Password             string `json:"password"`
		Engine               string `json:"engine,omitempty"`
		Host                 string `json:"host,omitempty"`
		Port                 int    `json:"port,omitempty"`
		DBName               string `json:"dbname,omitempty"`
		DBInstanceIdentifier string `json:"dbInstanceIdentifier,omitempty"`
		DBClusterIdentifier  string `json:"dbClusterIdentifier,omitempty"`
	}
	return json.Marshal(out{r.Username, redacted, r.Engine, r.Host, r.Port, r.DBName, r.DBInstanceIdentifier, r.DBClusterIdentifier})
}

// IsPostgres reports whether the secret is for PostgreSQL (or names no
// engine).
func (r RDSCredentials) IsPostgres() bool {
	switch r.Engine {
	case "", "postgres", "postgresql", "aurora-postgresql":
		return true
	}
	return false
}

// ApplyTo sets the user, password and, when the secret has them, host,
// port and database of a pgx connection config (for a pool:
// &poolConfig.ConnConfig.Config). TLS settings are kept; a TLS server name
// that was the old host follows the new host. Fallback configs for other
// hosts are dropped when the secret names the host.
func (r RDSCredentials) ApplyTo(cfg *pgconn.Config) error {
	if !r.IsPostgres() {
		return fmt.Errorf("secrets: the secret is for engine %q, not PostgreSQL", r.Engine)
	}
	if r.Username == "" {
		return fmt.Errorf("secrets: the secret has no username")
	}
	cfg.User, cfg.Password = r.Username, r.Password
	if r.DBName != "" {
		cfg.Database = r.DBName
	}
	if r.Host == "" && r.Port == 0 {
		return nil
	}
	oldHost, oldPort := cfg.Host, cfg.Port
	host, port := oldHost, oldPort
	if r.Host != "" {
		host = r.Host
	}
	if r.Port != 0 {
		port = uint16(r.Port)
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

// ConnString returns a postgres:// URL for pgx.Connect or pgxpool.New.
// It contains the password: do not log it. Append TLS parameters
// (sslmode=verify-full&sslrootcert=...) as your deployment needs.
func (r RDSCredentials) ConnString() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(r.Username, r.Password), Host: r.Host}
	if r.Port != 0 {
		u.Host = net.JoinHostPort(r.Host, strconv.Itoa(r.Port))
	}
	if r.DBName != "" {
		u.Path = "/" + r.DBName
	}
	return u.String()
}

// String returns the redacted form.
func (r RDSCredentials) String() string {
	return fmt.Sprintf("secrets.RDSCredentials{Engine: %q, Host: %q, Port: %d, DBName: %q, Username: %q, Password: %s}",
		r.Engine, r.Host, r.Port, r.DBName, r.Username, redacted)
}

// GoString returns the redacted form, for %#v.
func (r RDSCredentials) GoString() string { return r.String() }

// Format writes the redacted form for every verb.
func (r RDSCredentials) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(r.String())) }

// LogValue makes slog record everything but the password.
func (r RDSCredentials) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("engine", r.Engine), slog.String("host", r.Host), slog.Int("port", r.Port),
		slog.String("dbname", r.DBName), slog.String("username", r.Username), slog.String("password", redacted),
	)
}

var (
	_ fmt.Stringer     = RDSCredentials{}
	_ fmt.GoStringer   = RDSCredentials{}
	_ fmt.Formatter    = RDSCredentials{}
	_ slog.LogValuer   = RDSCredentials{}
	_ json.Unmarshaler = (*RDSCredentials)(nil)
)
