package secrets

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/irsakit/irsakit/internal/redact"
)

// RDSCredentials is the content of a database secret in the layout RDS and
// the Secrets Manager console use:
//
//	{"engine": "postgres", "host": "db.example.com", "port": 5432,
//	 "dbname": "app", "username": "app", "password": "..."}
//
// Secrets RDS manages itself (ManageMasterUserPassword) hold only username
// and password. The password is reachable only through
// [RDSCredentials.Password]: printing RDSCredentials (String, GoString, any
// fmt verb, slog, encoding/json, even from an unexported field of another
// struct) shows "[REDACTED]" in its place. The package
// github.com/irsakit/irsakit/rdsauth/secretpassword applies a database
// secret to every new pgx connection; this package imports no database
// driver.
type RDSCredentials struct {
	Username string
	password redact.String
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

// Password returns the database password. Never log it.
func (r RDSCredentials) Password() string { return r.password.Value() }

// WithPassword returns r with its password set to pw, for credentials
// built by hand.
func (r RDSCredentials) WithPassword(pw string) RDSCredentials {
	r.password = redact.NewString(pw)
	return r
}

// RDS reads a database secret (see [RDSCredentials]).
func (c *Cache) RDS(ctx context.Context, id string, optFns ...func(*GetOptions)) (RDSCredentials, error) {
	return JSON[RDSCredentials](ctx, c, id, optFns...)
}

// RDS decodes v as a database secret (see [RDSCredentials]). Its errors
// never quote the content.
func (v Value) RDS() (RDSCredentials, error) {
	var creds RDSCredentials
	if v.binary {
		return creds, ErrBinary
	}
	err := decodeJSON([]byte(v.str.Value()), &creds)
	return creds, err
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
		Username: *raw.Username, password: redact.NewString(*raw.Password), Engine: raw.Engine, Host: raw.Host, Port: port,
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

// ConnString returns a postgres:// URL for pgx.Connect or pgxpool.New.
// It contains the password: do not log it. Append TLS parameters
// (sslmode=verify-full&sslrootcert=...) as your deployment needs.
func (r RDSCredentials) ConnString() string {
	u := url.URL{Scheme: "postgres", User: url.UserPassword(r.Username, r.Password()), Host: r.Host}
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
