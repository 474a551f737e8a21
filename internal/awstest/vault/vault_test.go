package vault_test

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/vault"
)

const serverID = "vault.irsakit.test"

var (
	env      *awstest.Env
	srv      *vault.Server
	startErr error
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = awstest.New()
	if err != nil {
		fmt.Fprintln(os.Stderr, "vault tests:", err)
		return 1
	}
	defer env.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	srv, startErr = vault.Start(ctx, func(o *vault.Options) {
		o.STSEndpoint = env.STS.URL()
		o.STSRegion = env.Region
		o.ServerID = serverID
	})
	if startErr != nil {
		if vault.Required() {
			fmt.Fprintf(os.Stderr, "FAIL: %v\n", startErr)
			return 1
		}
	} else {
		defer srv.Close()
		for name, arn := range map[string]string{
			"app":   env.RoleARN,
			"other": "arn:aws:iam::" + env.Account + ":role/someone-else",
		} {
			if err := srv.Write(ctx, "role/"+name, vault.RoleIAM(arn, []string{"app-read"}, map[string]any{"token_ttl": "1h", "token_max_ttl": "4h"})); err != nil {
				fmt.Fprintln(os.Stderr, "vault tests:", err)
				return 1
			}
		}
		if err := srv.Write(ctx, "role/batch", vault.RoleIAM(env.RoleARN, nil, map[string]any{"token_type": "batch", "token_ttl": "20m"})); err != nil {
			fmt.Fprintln(os.Stderr, "vault tests:", err)
			return 1
		}
	}
	return m.Run()
}

// signed is a GetCallerIdentity request signed by the IRSA role's
// credentials, and the parts a login sends.
type signed struct {
	url     string
	body    string
	headers http.Header
}

type signOpts struct {
	url      string // default: the STS stand-in's URL with path "/"
	body     string // default Action=GetCallerIdentity&Version=2011-06-15
	serverID string // X-Vault-AWS-IAM-Server-ID, "" for none
	extra    http.Header
}

func sign(t *testing.T, o signOpts) signed {
	t.Helper()
	if o.url == "" {
		o.url = env.STS.URL() + "/"
	}
	if o.body == "" {
		o.body = "Action=GetCallerIdentity&Version=2011-06-15"
	}
	provider, err := env.SessionCredentials(time.Hour)
	require.NoError(t, err)
	creds, err := provider.Retrieve(context.Background())
	require.NoError(t, err)
	req, err := http.NewRequest(http.MethodPost, o.url, strings.NewReader(o.body))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if o.serverID != "" {
		req.Header.Set("X-Vault-AWS-IAM-Server-ID", o.serverID)
	}
	for k, vs := range o.extra {
		req.Header[k] = vs
	}
	sum := sha256.Sum256([]byte(o.body))
	require.NoError(t, v4.NewSigner().SignHTTP(context.Background(), creds, req, hex.EncodeToString(sum[:]), "sts", env.Region, time.Now()))
	return signed{url: o.url, body: o.body, headers: req.Header}
}

func (s signed) data(role string) map[string]any {
	h, err := json.Marshal(s.headers)
	if err != nil {
		panic(err)
	}
	return map[string]any{
		"role":                    role,
		"iam_http_request_method": "POST",
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(s.url)),
		"iam_request_body":        base64.StdEncoding.EncodeToString([]byte(s.body)),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(h),
	}
}

func login(t *testing.T, data map[string]any) (map[string]any, error) {
	t.Helper()
	return srv.Do(context.Background(), http.MethodPost, "auth/"+srv.Mount+"/login", "", data)
}

func auth(t *testing.T, out map[string]any) map[string]any {
	t.Helper()
	a, ok := out["auth"].(map[string]any)
	require.True(t, ok, "answer has no auth: %v", out)
	return a
}

// A login signed by the IRSA role's credentials and bound to its ARN gets
// a token with the role's policies and lease, which renews, looks up and
// revokes like a Vault token.
func TestLoginAccepted(t *testing.T) {
	vault.Need(t, startErr)
	ctx := context.Background()
	before := env.STS.Calls("GetCallerIdentity")
	out, err := login(t, sign(t, signOpts{serverID: serverID}).data("app"))
	require.NoError(t, err)
	a := auth(t, out)
	tok, _ := a["client_token"].(string)
	assert.True(t, strings.HasPrefix(tok, "hvs."), "service token")
	assert.Equal(t, []any{"app-read", "default"}, a["policies"])
	assert.EqualValues(t, 3600, a["lease_duration"])
	assert.Equal(t, true, a["renewable"])
	assert.Equal(t, "service", a["token_type"])
	assert.Equal(t, before+1, env.STS.Calls("GetCallerIdentity"), "Vault asked STS once")

	l, err := srv.LookupSelf(ctx, tok)
	require.NoError(t, err)
	assert.Equal(t, []string{"app-read", "default"}, l.Policies)
	assert.InDelta(t, time.Hour.Seconds(), l.TTL.Seconds(), 5)
	assert.NotEmpty(t, l.Meta["role_id"])

	out, err = srv.Do(ctx, http.MethodPut, "auth/token/renew-self", tok, map[string]any{})
	require.NoError(t, err)
	assert.Equal(t, tok, auth(t, out)["client_token"])
	assert.EqualValues(t, 3600, auth(t, out)["lease_duration"])

	require.NoError(t, srv.RevokeSelf(ctx, tok))
	_, err = srv.LookupSelf(ctx, tok)
	var ve *vault.Error
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, http.StatusForbidden, ve.StatusCode)
	assert.Equal(t, []string{"permission denied"}, ve.Errors)
}

// Vault's own checks refuse what a forged, replayed or misdirected login
// carries, each with its message.
func TestLoginRefused(t *testing.T) {
	vault.Need(t, startErr)
	good := func() signed { return sign(t, signOpts{serverID: serverID}) }
	cases := []struct {
		name string
		data func() map[string]any
		msg  string
	}{
		{"no server id", func() map[string]any { return sign(t, signOpts{}).data("app") },
			`error validating X-Vault-AWS-IAM-Server-ID header: missing header "X-Vault-AWS-IAM-Server-ID"`},
		{"wrong server id", func() map[string]any { return sign(t, signOpts{serverID: "other.example"}).data("app") },
			`error validating X-Vault-AWS-IAM-Server-ID header: expected "vault.irsakit.test" but got "other.example"`},
		{"server id not signed", func() map[string]any {
			s := sign(t, signOpts{})
			s.headers.Set("X-Vault-AWS-IAM-Server-ID", serverID)
			return s.data("app")
		}, "vault header wasn't signed"},
		{"query string on POST", func() map[string]any {
			return sign(t, signOpts{serverID: serverID, url: env.STS.URL() + "/?Action=GetCallerIdentity"}).data("app")
		}, "invalid request"},
		{"X-Amz-Expires header", func() map[string]any {
			return sign(t, signOpts{serverID: serverID, extra: http.Header{"X-Amz-Expires": {"60"}}}).data("app")
		}, "invalid request header: X-Amz-Expires"},
		{"another action", func() map[string]any {
			return sign(t, signOpts{serverID: serverID, body: "Action=AssumeRole&Version=2011-06-15"}).data("app")
		}, "iam request body is invalid"},
		{"body changed after signing", func() map[string]any {
			s := good()
			s.body = "Version=2011-06-15&Action=GetCallerIdentity"
			return s.data("app")
		}, "SignatureDoesNotMatch"},
		{"signature tampered", func() map[string]any {
			s := good()
			a := s.headers.Get("Authorization")
			s.headers.Set("Authorization", a[:len(a)-8]+"00000000")
			return s.data("app")
		}, "SignatureDoesNotMatch"},
		{"unknown role", func() map[string]any { return good().data("nope") }, "entry for role nope not found"},
		{"role bound to another ARN", func() map[string]any { return good().data("other") },
			`does not belong to the role "other"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := login(t, tc.data())
			var ve *vault.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, http.StatusBadRequest, ve.StatusCode)
			assert.Contains(t, strings.Join(ve.Errors, "\n"), tc.msg)
		})
	}
}

// Token store rules: batch tokens cannot be renewed; a renewal follows the
// role's current TTLs, and the max TTL counts from the login.
func TestTokenRules(t *testing.T) {
	vault.Need(t, startErr)
	ctx := context.Background()

	out, err := login(t, sign(t, signOpts{serverID: serverID}).data("batch"))
	require.NoError(t, err)
	a := auth(t, out)
	batch, _ := a["client_token"].(string)
	assert.True(t, strings.HasPrefix(batch, "hvb."), "batch token")
	assert.Equal(t, false, a["renewable"])
	assert.EqualValues(t, 1200, a["lease_duration"])
	_, err = srv.Do(ctx, http.MethodPut, "auth/token/renew-self", batch, map[string]any{})
	var ve *vault.Error
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, []string{"batch tokens cannot be renewed"}, ve.Errors)

	require.NoError(t, srv.Write(ctx, "role/capped", vault.RoleIAM(env.RoleARN, nil, map[string]any{"token_ttl": "1h", "token_max_ttl": "2h"})))
	out, err = login(t, sign(t, signOpts{serverID: serverID}).data("capped"))
	require.NoError(t, err)
	tok, _ := auth(t, out)["client_token"].(string)
	require.NoError(t, srv.Write(ctx, "role/capped", map[string]any{"token_ttl": "10m", "token_max_ttl": "10m"}))
	out, err = srv.Do(ctx, http.MethodPut, "auth/token/renew-self", tok, map[string]any{})
	require.NoError(t, err)
	lease, _ := auth(t, out)["lease_duration"].(float64)
	assert.LessOrEqual(t, lease, 600.0)
	assert.Greater(t, lease, 590.0)
}

func TestRoutes(t *testing.T) {
	vault.Need(t, startErr)
	ctx := context.Background()
	cases := []struct {
		name, method, path, token string
		status                    int
		msg                       string
	}{
		{"other mount", http.MethodPost, "auth/other/login", "", http.StatusNotFound, `no handler for route "auth/other/login"`},
		{"role without token", http.MethodGet, "auth/aws/role/app", "", http.StatusForbidden, "permission denied"},
		{"role with a login token", http.MethodGet, "auth/aws/role/app", "hvs.not-root", http.StatusForbidden, "permission denied"},
		{"renew an unknown token", http.MethodPut, "auth/token/renew-self", "hvs.unknown", http.StatusForbidden, "permission denied"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := srv.Do(ctx, tc.method, tc.path, tc.token, map[string]any{})
			var ve *vault.Error
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, tc.status, ve.StatusCode)
			assert.Contains(t, strings.Join(ve.Errors, "\n"), tc.msg)
		})
	}
	role, err := srv.Read(ctx, "role/app")
	require.NoError(t, err)
	assert.Equal(t, []any{env.RoleARN}, role["bound_iam_principal_arn"])
}

// Find refuses binaries that are not vault-awsauth, are built from another
// Vault release, or from another version of tools/vault.
func TestFindRefuses(t *testing.T) {
	hash, err := vault.SourceHash(filepath.Join("..", "..", "..", "tools", "vault"))
	require.NoError(t, err)
	dir := t.TempDir()
	script := func(name, out string) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, []byte("#!/bin/sh\necho '"+out+"'\n"), 0o755))
		return p
	}
	cases := []struct {
		name, bin, msg string
	}{
		{"missing", filepath.Join(dir, "absent"), "no such file"},
		{"not vault-awsauth", script("other", "hello"), "not \"VERSION source HASH\""},
		{"other Vault release", script("old", "v1.20.0 source "+hash), "built with hashicorp/vault v1.20.0, want " + vault.VaultVersion},
		{"stale source", script("stale", vault.VaultVersion+" source 0123"), "built from another version of tools/vault"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(vault.EnvBin, tc.bin)
			_, err := vault.Find()
			require.ErrorIs(t, err, vault.ErrNotInstalled)
			assert.Contains(t, err.Error(), tc.msg)
			assert.Contains(t, err.Error(), "tools/install-vault.sh")
		})
	}
	t.Run("current", func(t *testing.T) {
		t.Setenv(vault.EnvBin, script("current", vault.VaultVersion+" source "+hash))
		_, err := vault.Find()
		assert.NoError(t, err)
	})
}
