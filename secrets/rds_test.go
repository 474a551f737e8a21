package secrets_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"go/build"
	"log/slog"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/secrets"
)

func TestRDSCredentialsDecode(t *testing.T) {
	cases := []struct {
		name, json string
		want       secrets.RDSCredentials
		errField   string
	}{
		{"console layout, numeric port", `{"engine":"postgres","host":"h","port":5432,"dbname":"d","username":"u","password":"p","dbInstanceIdentifier":"i"}`,
			secrets.RDSCredentials{Engine: "postgres", Host: "h", Port: 5432, DBName: "d", Username: "u", DBInstanceIdentifier: "i"}.WithPassword("p"), ""},
		{"string port", `{"engine":"aurora-postgresql","host":"h","port":"6432","username":"u","password":"p","dbClusterIdentifier":"c"}`,
			secrets.RDSCredentials{Engine: "aurora-postgresql", Host: "h", Port: 6432, Username: "u", DBClusterIdentifier: "c"}.WithPassword("p"), ""},
		{"RDS-managed master secret", `{"username":"postgres","password":"p"}`, secrets.RDSCredentials{Username: "postgres"}.WithPassword("p"), ""},
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
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tc.errField, fe.Field)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.want.Password(), got.Password())
			assert.Equal(t, tc.want.WithPassword(""), got.WithPassword(""), "the other fields")
		})
	}
}

// A Value decodes as a database secret without another read.
func TestValueRDS(t *testing.T) {
	ctx := context.Background()
	cache, err := secrets.NewFromClient(fixedClient{value: `{"username":"u","password":"Zq9-pw","port":"5432"}`})
	require.NoError(t, err)
	defer cache.Close()
	v, err := cache.Get(ctx, "x")
	require.NoError(t, err)
	creds, err := v.RDS()
	require.NoError(t, err)
	assert.Equal(t, "Zq9-pw", creds.Password())
	assert.Equal(t, secrets.RDSCredentials{Username: "u", Port: 5432}, creds.WithPassword(""))

	bad, err := secrets.NewFromClient(fixedClient{value: `{"username":"u","password":"Zq9-pw","port":"Zq9x"}`})
	require.NoError(t, err)
	defer bad.Close()
	v, err = bad.Get(ctx, "x")
	require.NoError(t, err)
	_, err = v.RDS()
	var de *secrets.DecodeError
	require.ErrorAs(t, err, &de)
	assert.NotContains(t, err.Error(), "Zq9")
}

// Importing secrets compiles no database driver: the pgx hook lives in
// rdsauth/secretpassword.
func TestNoDatabaseDriverDependency(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(build.Default.GOROOT, "bin", "go")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	require.NoError(t, err)
	deps := strings.Fields(string(out))
	require.Contains(t, deps, "github.com/irsakit/irsakit/secrets")
	require.Contains(t, deps, "github.com/aws/aws-sdk-go-v2/service/secretsmanager", "the listing is not of secrets")
	for _, d := range deps {
		assert.False(t, strings.HasPrefix(d, "github.com/jackc/"), "secrets depends on %s", d)
		assert.NotContains(t, d, "database/sql")
	}
}

// Nothing that prints or encodes a secret value shows it.
func TestRedaction(t *testing.T) {
	const password = "Pa55-w0rd-zz"
	cache, _ := secrets.NewFromClient(fixedClient{value: `{"username":"u","password":"` + password + `","host":"h","port":5432}`})
	defer cache.Close()
	ctx := context.Background()
	v, err := cache.Get(ctx, "x")
	require.NoError(t, err)
	creds, err := cache.RDS(ctx, "x")
	require.NoError(t, err)
	for _, obj := range []any{v, &v, creds, &creds, []any{v, creds}, map[string]any{"v": v, "c": creds}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v"} {
			s := fmt.Sprintf(verb, obj)
			assert.NotContains(t, s, password, "%s of %T", verb, obj)
			assert.NotContains(t, s, fmt.Sprintf("%x", password), "%s of %T", verb, obj)
		}
		b, err := json.Marshal(obj)
		require.NoError(t, err)
		assert.False(t, bytes.Contains(b, []byte(password)), "json of %T: %s", obj, b)
		var buf bytes.Buffer
		for _, h := range []slog.Handler{slog.NewJSONHandler(&buf, nil), slog.NewTextHandler(&buf, nil)} {
			slog.New(h).Info("m", "obj", obj)
		}
		assert.NotContains(t, buf.String(), password, "slog of %T", obj)
	}
	for _, s := range []string{v.GoString(), creds.GoString(), v.String(), creds.String()} {
		assert.NotContains(t, s, password)
		assert.Contains(t, s, "[REDACTED]")
	}
	assert.Equal(t, password, creds.Password(), "the value itself is reachable on purpose")
	assert.Contains(t, v.SecretString(), password)
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
			require.ErrorAs(t, e, &de, content)
			for _, piece := range []string{"987654321", "secret-but", "x9x9"} {
				assert.NotContains(t, e.Error(), piece, "%q: error quotes the content", content)
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
			require.ErrorAs(t, err, &de)
			// The message may name fields but not quote numbers or text
			// from the content longer than the field names themselves.
			require.NotContains(t, err.Error(), "Zq9-secret", "error quotes the content")
			return
		}
		require.NotEmpty(t, creds.Username)
		require.True(t, creds.Port >= 0 && creds.Port <= 65535, "accepted port %d", creds.Port)
		if pw := creds.Password(); len(pw) >= 8 && !strings.Contains(creds.Username+creds.Host+creds.DBName+creds.Engine, pw) &&
			!strings.Contains("secrets.RDSCredentials{Engine: Host: Port: DBName: Username: Password: [REDACTED]}", pw) {
			s := fmt.Sprint(creds) + fmt.Sprintf("%#v", creds)
			require.NotContains(t, s, pw, "printed password")
		}
	})
}
