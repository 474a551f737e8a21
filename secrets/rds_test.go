package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/irsakit/irsakit/secrets"
)

func TestRDSCredentialsDecode(t *testing.T) {
	cases := []struct {
		name, json string
		want       secrets.RDSCredentials
		errField   string
	}{
		{"console layout, numeric port", `{"engine":"postgres","host":"h","port":5432,"dbname":"d","username":"u","password":"p","dbInstanceIdentifier":"i"}`,
			secrets.RDSCredentials{Engine: "postgres", Host: "h", Port: 5432, DBName: "d", Username: "u", Password: "p", DBInstanceIdentifier: "i"}, ""},
		{"string port", `{"engine":"aurora-postgresql","host":"h","port":"6432","username":"u","password":"p","dbClusterIdentifier":"c"}`,
			secrets.RDSCredentials{Engine: "aurora-postgresql", Host: "h", Port: 6432, Username: "u", Password: "p", DBClusterIdentifier: "c"}, ""},
		{"RDS-managed master secret", `{"username":"postgres","password":"p"}`, secrets.RDSCredentials{Username: "postgres", Password: "p"}, ""},
		{"no username", `{"password":"p"}`, secrets.RDSCredentials{}, "username"},
		{"no password", `{"username":"u"}`, secrets.RDSCredentials{}, "password"},
		{"port out of range", `{"username":"u","password":"p","port":70000}`, secrets.RDSCredentials{}, "port"},
		{"port not a number", `{"username":"u","password":"p","port":"five"}`, secrets.RDSCredentials{}, "port"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var got secrets.RDSCredentials
			err := json.Unmarshal([]byte(tc.json), &got)
			if tc.errField != "" {
				var fe *secrets.FieldError
				if !errors.As(err, &fe) || fe.Field != tc.errField {
					t.Fatalf("err = %v, want a FieldError on %s", err, tc.errField)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %#v (password %q), %v", got, got.Password, err)
			}
		})
	}
}

func TestRDSCredentialsConfigurePgx(t *testing.T) {
	creds := secrets.RDSCredentials{Engine: "postgres", Host: "new.db.internal", Port: 6543, DBName: "app", Username: "app_user", Password: "p@ss/word"}

	pool, err := pgxpool.ParseConfig("host=old.db.internal port=5432 user=x password=y dbname=z sslmode=verify-full")
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.ApplyTo(&pool.ConnConfig.Config); err != nil {
		t.Fatal(err)
	}
	cc := pool.ConnConfig
	if cc.Host != "new.db.internal" || cc.Port != 6543 || cc.User != "app_user" || cc.Password != "p@ss/word" || cc.Database != "app" {
		t.Fatalf("config after ApplyTo: host=%s port=%d user=%s db=%s", cc.Host, cc.Port, cc.User, cc.Database)
	}
	if cc.TLSConfig == nil || cc.TLSConfig.ServerName != "new.db.internal" {
		t.Fatalf("TLS no longer verifies the new host: %+v", cc.TLSConfig)
	}

	// sslmode=prefer keeps its plaintext fallback, retargeted; other hosts go.
	cfg, err := pgx.ParseConfig("host=a,b port=5432 user=x sslmode=prefer")
	if err != nil {
		t.Fatal(err)
	}
	if err := creds.ApplyTo(&cfg.Config); err != nil {
		t.Fatal(err)
	}
	for _, fb := range cfg.Fallbacks {
		if fb.Host != "new.db.internal" || fb.Port != 6543 {
			t.Fatalf("fallback to %s:%d kept", fb.Host, fb.Port)
		}
	}
	if len(cfg.Fallbacks) != 1 || cfg.Fallbacks[0].TLSConfig != nil {
		t.Fatalf("want the one plaintext fallback of sslmode=prefer, got %d", len(cfg.Fallbacks))
	}

	// An RDS-managed master secret (user and password only) keeps the host.
	cfg, _ = pgx.ParseConfig("host=keep.db port=5432 dbname=keep")
	if err := (secrets.RDSCredentials{Username: "postgres", Password: "pw"}).ApplyTo(&cfg.Config); err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "keep.db" || cfg.Port != 5432 || cfg.Database != "keep" || cfg.User != "postgres" || cfg.Password != "pw" {
		t.Fatalf("master secret changed host/db: %s:%d/%s", cfg.Host, cfg.Port, cfg.Database)
	}

	if err := (secrets.RDSCredentials{Engine: "mysql", Username: "u"}).ApplyTo(&cfg.Config); err == nil {
		t.Fatal("a MySQL secret configured pgx")
	}

	// ConnString round-trips through pgx's parser.
	parsed, err := pgx.ParseConfig(creds.ConnString())
	if err != nil {
		t.Fatal(err)
	}
	if parsed.Host != creds.Host || parsed.Port != 6543 || parsed.User != creds.Username || parsed.Password != creds.Password || parsed.Database != "app" {
		t.Fatalf("ConnString parsed to %s:%d user=%s db=%s", parsed.Host, parsed.Port, parsed.User, parsed.Database)
	}
}

// The BeforeConnect hook puts the secret's current version on each new
// connection.
func TestBeforeConnectFollowsRotation(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "rds/")
	create(t, name, `{"engine":"postgres","host":"db1","port":5432,"dbname":"app","username":"app","password":"first"}`)
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk })
	pool, err := pgxpool.ParseConfig("host=placeholder user=placeholder")
	if err != nil {
		t.Fatal(err)
	}
	pool.BeforeConnect = c.BeforeConnect(name)
	connect := func() *pgx.ConnConfig {
		cc := pool.ConnConfig.Copy()
		if err := pool.BeforeConnect(ctx, cc); err != nil {
			t.Fatal(err)
		}
		return cc
	}
	if cc := connect(); cc.Password != "first" || cc.Host != "db1" || cc.User != "app" {
		t.Fatalf("first connection: %s@%s", cc.User, cc.Host)
	}
	rotate(t, name, `{"engine":"postgres","host":"db1","port":5432,"dbname":"app","username":"app","password":"second"}`)
	clk.Advance(secrets.DefaultTTL)
	if cc := connect(); cc.Password != "second" {
		t.Fatal("a connection after rotation and TTL did not get the new password")
	}
	if err := c.BeforeConnect("rds/missing")(ctx, pool.ConnConfig.Copy()); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("missing secret: %v", err)
	}
}

// Nothing that prints or encodes a secret value shows it.
func TestRedaction(t *testing.T) {
	const password = "Pa55-w0rd-zz"
	cache, _ := secrets.NewFromClient(fixedClient{value: `{"username":"u","password":"` + password + `","host":"h","port":5432}`})
	defer cache.Close()
	ctx := context.Background()
	v, err := cache.Get(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	creds, err := cache.RDS(ctx, "x")
	if err != nil {
		t.Fatal(err)
	}
	for _, obj := range []any{v, &v, creds, &creds, []any{v, creds}, map[string]any{"v": v, "c": creds}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			if s := fmt.Sprintf(verb, obj); strings.Contains(s, password) || strings.Contains(s, fmt.Sprintf("%x", password)) {
				t.Fatalf("%s of %T shows the secret: %s", verb, obj, s)
			}
		}
		b, err := json.Marshal(obj)
		if err != nil || bytes.Contains(b, []byte(password)) {
			t.Fatalf("json of %T: %s, %v", obj, b, err)
		}
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			slog.New(h).Info("m", "obj", obj)
		}
		if strings.Contains(buf.String(), password) {
			t.Fatalf("slog of %T: %s", obj, buf.String())
		}
	}
	for _, s := range []string{v.GoString(), creds.GoString(), v.String(), creds.String()} {
		if strings.Contains(s, password) || !strings.Contains(s, "[REDACTED]") {
			t.Fatalf("not redacted: %s", s)
		}
	}
	if creds.Password != password || !strings.Contains(v.SecretString(), password) {
		t.Fatal("the value itself is not reachable on purpose")
	}
}

// Decoding errors never quote the secret (encoding/json's would).
func TestDecodeErrorsDoNotQuoteTheSecret(t *testing.T) {
	ctx := context.Background()
	for _, content := range []string{`{"port": 987654321}`, `secret-but-not-json`, `{"username":"u","password":"p","port":"x9x9x9x9"}`, `{"port": "987654321"}`} {
		cache, _ := secrets.NewFromClient(fixedClient{value: content})
		_, err := secrets.JSON[struct{ Port string }](ctx, cache, "id")
		_, err2 := cache.RDS(ctx, "id")
		cache.Close()
		for _, e := range []error{err, err2} {
			if e == nil {
				continue
			}
			var de *secrets.DecodeError
			if !errors.As(e, &de) {
				t.Fatalf("%q: %v is not a DecodeError", content, e)
			}
			for _, piece := range []string{"987654321", "secret-but", "x9x9"} {
				if strings.Contains(e.Error(), piece) {
					t.Fatalf("%q: error quotes the content: %v", content, e)
				}
			}
		}
	}
}

func FuzzRDSCredentials(f *testing.F) {
	for _, s := range []string{
		`{"engine":"postgres","host":"h","port":5432,"dbname":"d","username":"u","password":"Zq9-secret"}`,
		`{"username":"u","password":"Zq9-secret","port":"5432"}`, `{"port":null}`, `[]`, `"x"`, `{"password":"Zq9-secret","port":1e3}`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data string) {
		cache, _ := secrets.NewFromClient(fixedClient{value: data})
		defer cache.Close()
		creds, err := cache.RDS(context.Background(), "id")
		if err != nil {
			var de *secrets.DecodeError
			if !errors.As(err, &de) {
				t.Fatalf("not a DecodeError: %v", err)
			}
			// The message may name fields but not quote numbers or text
			// from the content longer than the field names themselves.
			if strings.Contains(err.Error(), "Zq9-secret") {
				t.Fatalf("error quotes the content: %v", err)
			}
			return
		}
		if creds.Username == "" || creds.Port < 0 || creds.Port > 65535 {
			t.Fatalf("accepted %#v", creds)
		}
		if len(creds.Password) >= 8 && !strings.Contains(creds.Username+creds.Host+creds.DBName+creds.Engine, creds.Password) &&
			!strings.Contains("secrets.RDSCredentials{Engine: Host: Port: DBName: Username: Password: [REDACTED]}", creds.Password) {
			if s := fmt.Sprint(creds) + fmt.Sprintf("%#v", creds); strings.Contains(s, creds.Password) {
				t.Fatalf("printed password: %s", s)
			}
		}
	})
}
