package irsa_test

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/irsa"
)

var now = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

func jwt(t testing.TB, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(map[string]string{"alg": "RS256", "kid": "k1"})
	c, _ := json.Marshal(claims)
	enc := base64.RawURLEncoding.EncodeToString
	return enc(h) + "." + enc(c) + "." + enc([]byte("signature-not-checked"))
}

func goodClaims() map[string]any {
	return map[string]any{
		"iss": "https://oidc.eks.us-east-1.amazonaws.com/id/EXAMPLE",
		"sub": "system:serviceaccount:mcp:mcp-server",
		"aud": []string{"sts.amazonaws.com"},
		"exp": now.Add(time.Hour).Unix(),
		"iat": now.Add(-time.Minute).Unix(),
	}
}

func TestParseTokenClaims(t *testing.T) {
	c, err := irsa.ParseTokenClaims(jwt(t, goodClaims()) + "\n")
	require.NoError(t, err)
	ns, sa, ok := c.ServiceAccount()
	assert.True(t, ok)
	assert.Equal(t, "mcp", ns)
	assert.Equal(t, "mcp-server", sa)
	assert.True(t, c.HasAudience("sts.amazonaws.com"))
	assert.True(t, c.Expiry.Equal(now.Add(time.Hour)), "exp %v", c.Expiry)
	assert.Equal(t, "RS256", c.Algorithm)
	assert.Equal(t, "k1", c.KeyID)
	single := goodClaims()
	single["aud"] = "sts.amazonaws.com"
	c, err = irsa.ParseTokenClaims(jwt(t, single))
	require.NoError(t, err)
	assert.True(t, c.HasAudience("sts.amazonaws.com"), "string aud")
	for _, bad := range []string{"", "abc", "a.b", "!!!.e30.x", "e30.!!!.x", "e30.W10.x"} {
		_, err := irsa.ParseTokenClaims(bad)
		assert.Error(t, err, "accepted %q", bad)
	}
}

func FuzzParseTokenClaims(f *testing.F) {
	f.Add(jwt(f, goodClaims()))
	f.Add("e30.e30.e30")
	f.Add("eyJhbGciOiJub25lIn0.eyJhdWQiOjF9.")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := irsa.ParseTokenClaims(s)
		if err != nil {
			if strings.Contains(err.Error(), s) && len(s) > 8 {
				t.Fatalf("error echoes the token: %v", err)
			}
			return
		}
		if strings.Count(strings.TrimSpace(s), ".") != 2 {
			t.Fatalf("accepted %q without 3 parts", s)
		}
		_ = c.HasAudience("x")
	})
}

func writeToken(t *testing.T, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "token")
	require.NoError(t, os.WriteFile(p, []byte(content), mode))
	return p
}

func TestCheckTokenFile(t *testing.T) {
	expired := goodClaims()
	expired["exp"] = now.Add(-time.Minute).Unix()
	wrongAud := goodClaims()
	wrongAud["aud"] = []string{"vault"}
	podClaims := goodClaims()
	podClaims["aud"] = []string{irsa.PodIdentityAudience}
	cases := []struct {
		name    string
		mode    irsa.Mode
		path    string
		want    error
		mention string
	}{
		{"missing", irsa.WebIdentity, filepath.Join(t.TempDir(), "nope"), irsa.ErrTokenMissing, "eks.amazonaws.com/role-arn"},
		{"empty", irsa.WebIdentity, writeToken(t, "\n", 0o600), irsa.ErrTokenEmpty, "kubelet"},
		{"not a jwt", irsa.WebIdentity, writeToken(t, "hello", 0o600), irsa.ErrTokenMalformed, "projected"},
		{"expired", irsa.WebIdentity, writeToken(t, jwt(t, expired), 0o600), irsa.ErrTokenExpired, "expired at"},
		{"audience", irsa.WebIdentity, writeToken(t, jwt(t, wrongAud), 0o600), irsa.ErrTokenAudience, "sts.amazonaws.com"},
		{"pod identity missing", irsa.PodIdentity, filepath.Join(t.TempDir(), "nope"), irsa.ErrTokenMissing, "pod identity association"},
		{"pod identity expired", irsa.PodIdentity, writeToken(t, jwt(t, expired), 0o600), irsa.ErrTokenExpired, "expired at"},
		{"pod identity given the IRSA token", irsa.PodIdentity, writeToken(t, jwt(t, goodClaims()), 0o600), irsa.ErrTokenAudience, irsa.PodIdentityAudience},
		{"IRSA given the pod identity token", irsa.WebIdentity, writeToken(t, jwt(t, podClaims), 0o600), irsa.ErrTokenAudience, irsa.DefaultAudience},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := irsa.CheckTokenFile(c.path, irsa.TokenCheck{Mode: c.mode, Now: now})
			var tfe *irsa.TokenFileError
			require.ErrorIs(t, err, c.want)
			require.ErrorAs(t, err, &tfe)
			assert.Equal(t, c.mode, tfe.Mode)
			assert.Contains(t, err.Error(), c.path)
			assert.Contains(t, err.Error(), c.mention)
		})
	}
	tok := jwt(t, goodClaims())
	c, err := irsa.CheckTokenFile(writeToken(t, tok, 0o600), irsa.TokenCheck{Now: now})
	require.NoError(t, err)
	assert.Equal(t, "system:serviceaccount:mcp:mcp-server", c.Subject)
	_, err = irsa.CheckTokenFile(writeToken(t, jwt(t, podClaims), 0o600), irsa.TokenCheck{Mode: irsa.PodIdentity, Now: now})
	assert.NoError(t, err, "a Pod Identity token")
	_, err = irsa.CheckTokenFile(writeToken(t, jwt(t, wrongAud), 0o600), irsa.TokenCheck{Now: now, Audience: "vault"})
	assert.NoError(t, err, "configured audience not honoured")
	// No error ever carries the token.
	_, err = irsa.CheckTokenFile(writeToken(t, jwt(t, expired), 0o600), irsa.TokenCheck{Now: now})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), jwt(t, expired)[:20])
}

// Permission errors need a non-root reader: as root, re-run this test as
// the nobody user.
func TestCheckTokenFileUnreadable(t *testing.T) {
	if p := os.Getenv("IRSA_TEST_UNREADABLE"); p != "" {
		for _, mode := range []irsa.Mode{irsa.WebIdentity, irsa.PodIdentity} {
			_, err := irsa.CheckTokenFile(p, irsa.TokenCheck{Mode: mode, Now: now})
			assert.ErrorIs(t, err, irsa.ErrTokenUnreadable, "mode %s", mode)
			if assert.Error(t, err) {
				assert.Contains(t, err.Error(), "fsGroup", "mode %s", mode)
			}
		}
		return
	}
	dir, err := os.MkdirTemp("", "irsa-token")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o755))
	p := filepath.Join(dir, "token")
	require.NoError(t, os.WriteFile(p, []byte(jwt(t, goodClaims())), 0o600))
	if os.Geteuid() != 0 {
		require.NoError(t, os.Chmod(p, 0o000))
		t.Setenv("IRSA_TEST_UNREADABLE", p)
		TestCheckTokenFileUnreadable(t)
		return
	}
	// The test binary lives in a root-only build directory: copy it out.
	exe, _ := os.Executable()
	bin, err := os.ReadFile(exe)
	require.NoError(t, err)
	copyExe := filepath.Join(dir, "irsa.test")
	require.NoError(t, os.WriteFile(copyExe, bin, 0o755))
	cmd := exec.Command(copyExe, "-test.run", "^TestCheckTokenFileUnreadable$")
	cmd.Env = append(os.Environ(), "IRSA_TEST_UNREADABLE="+p)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "as nobody:\n%s", out)
}
