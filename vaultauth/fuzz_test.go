package vaultauth_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/vaultauth"
)

// An accepted Vault address is an http(s) URL without user info, query or
// fragment, plain http only on loopback unless allowed, and accepting it
// again gives the same address.
func FuzzParseAddress(f *testing.F) {
	for _, s := range []string{
		"https://vault.example.com:8200", "http://127.0.0.1:8200/", "http://localhost:8100", "https://vault/proxy/",
		"http://[::1]:8200", "vault:8200", "", "https://user:pw@vault", "https://vault/?a=b", "https://vault#x",
		"http://vault.example.com", "https://:8200", "https://vault:0", "https://vault:65536", "HTTPS://VAULT",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, addr string, allowHTTP bool) {
		got, err := vaultauth.ParseAddress(addr, allowHTTP)
		if err != nil {
			require.True(t, errors.Is(err, vaultauth.ErrInvalidAddress) || errors.Is(err, vaultauth.ErrInsecureTransport), err.Error())
			assert.True(t, strings.HasPrefix(err.Error(), "vaultauth: "))
			return
		}
		u, err := url.Parse(got)
		require.NoError(t, err)
		assert.Contains(t, []string{"http", "https"}, u.Scheme)
		assert.NotEmpty(t, u.Hostname())
		assert.Nil(t, u.User)
		assert.Empty(t, u.RawQuery)
		assert.Empty(t, u.Fragment)
		assert.False(t, strings.HasSuffix(u.Path, "/"))
		if u.Scheme == "http" && !allowHTTP {
			assert.True(t, u.Hostname() == "localhost" || strings.HasPrefix(u.Hostname(), "127.") || u.Hostname() == "::1", got)
		}
		again, err := vaultauth.ParseAddress(got, allowHTTP)
		require.NoError(t, err)
		assert.Equal(t, got, again)
	})
}

// Any answer decodes without panicking; an error answer is a *VaultError
// with its status, and a successful answer that cannot be read is never
// quoted in the error (it would hold the token).
func FuzzDecodeAnswer(f *testing.F) {
	f.Add(200, "application/json", []byte(`{"auth":{"client_token":"hvs.x","lease_duration":3600,"renewable":true}}`))
	f.Add(400, "application/json", []byte(`{"errors":["entry for role x not found"]}`))
	f.Add(403, "application/json", []byte(`{"errors":["permission denied"]}`))
	f.Add(502, "text/html", []byte(`<html>bad gateway</html>`))
	f.Add(200, "text/plain", []byte(`hvs.secret-token-that-is-not-json`))
	f.Add(204, "", []byte{})
	f.Fuzz(func(t *testing.T, status int, contentType string, raw []byte) {
		err := vaultauth.DecodeAnswer(status, contentType, raw)
		if status < 200 || status > 299 {
			var ve *vaultauth.VaultError
			require.ErrorAs(t, err, &ve)
			assert.Equal(t, status, ve.StatusCode)
			assert.NotEmpty(t, ve.Messages)
			return
		}
		if err != nil {
			require.ErrorIs(t, err, vaultauth.ErrUnexpectedResponse)
			if len(raw) >= 16 {
				assert.NotContains(t, err.Error(), string(raw))
			}
		}
	})
}
