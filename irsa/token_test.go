package irsa_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

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
	if err != nil {
		t.Fatal(err)
	}
	ns, sa, ok := c.ServiceAccount()
	if !ok || ns != "mcp" || sa != "mcp-server" || !c.HasAudience("sts.amazonaws.com") || !c.Expiry.Equal(now.Add(time.Hour)) || c.Algorithm != "RS256" || c.KeyID != "k1" {
		t.Fatalf("claims %+v", c)
	}
	single := goodClaims()
	single["aud"] = "sts.amazonaws.com"
	if c, err := irsa.ParseTokenClaims(jwt(t, single)); err != nil || !c.HasAudience("sts.amazonaws.com") {
		t.Fatalf("string aud: %+v %v", c, err)
	}
	for _, bad := range []string{"", "abc", "a.b", "!!!.e30.x", "e30.!!!.x", "e30.W10.x"} {
		if _, err := irsa.ParseTokenClaims(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
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
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckTokenFile(t *testing.T) {
	expired := goodClaims()
	expired["exp"] = now.Add(-time.Minute).Unix()
	wrongAud := goodClaims()
	wrongAud["aud"] = []string{"vault"}
	cases := []struct {
		name    string
		path    string
		want    error
		mention string
	}{
		{"missing", filepath.Join(t.TempDir(), "nope"), irsa.ErrTokenMissing, "eks.amazonaws.com/role-arn"},
		{"empty", writeToken(t, "\n", 0o600), irsa.ErrTokenEmpty, "kubelet"},
		{"not a jwt", writeToken(t, "hello", 0o600), irsa.ErrTokenMalformed, "projected"},
		{"expired", writeToken(t, jwt(t, expired), 0o600), irsa.ErrTokenExpired, "expired at"},
		{"audience", writeToken(t, jwt(t, wrongAud), 0o600), irsa.ErrTokenAudience, "sts.amazonaws.com"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := irsa.CheckTokenFile(c.path, irsa.TokenCheck{Now: now})
			var tfe *irsa.TokenFileError
			if !errors.Is(err, c.want) || !errors.As(err, &tfe) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if !strings.Contains(err.Error(), c.path) || !strings.Contains(err.Error(), c.mention) {
				t.Fatalf("error %q does not name the path and %q", err, c.mention)
			}
		})
	}
	tok := jwt(t, goodClaims())
	c, err := irsa.CheckTokenFile(writeToken(t, tok, 0o600), irsa.TokenCheck{Now: now})
	if err != nil || c.Subject != "system:serviceaccount:mcp:mcp-server" {
		t.Fatalf("good token: %+v %v", c, err)
	}
	_, err = irsa.CheckTokenFile(writeToken(t, jwt(t, wrongAud), 0o600), irsa.TokenCheck{Now: now, Audience: "vault"})
	if err != nil {
		t.Fatalf("configured audience not honoured: %v", err)
	}
	// No error ever carries the token.
	_, err = irsa.CheckTokenFile(writeToken(t, jwt(t, expired), 0o600), irsa.TokenCheck{Now: now})
	if strings.Contains(err.Error(), jwt(t, expired)[:20]) {
		t.Fatal("error contains the token")
	}
}

// Permission errors need a non-root reader: as root, re-run this test as
// the nobody user.
func TestCheckTokenFileUnreadable(t *testing.T) {
	if os.Getenv("IRSA_TEST_UNREADABLE") != "" {
		_, err := irsa.CheckTokenFile(os.Getenv("IRSA_TEST_UNREADABLE"), irsa.TokenCheck{Now: now})
		if !errors.Is(err, irsa.ErrTokenUnreadable) || !strings.Contains(err.Error(), "fsGroup") {
			t.Fatalf("got %v, want ErrTokenUnreadable naming fsGroup", err)
		}
		return
	}
	dir, err := os.MkdirTemp("", "irsa-token")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	os.Chmod(dir, 0o755)
	p := filepath.Join(dir, "token")
	if err := os.WriteFile(p, []byte(jwt(t, goodClaims())), 0o600); err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() != 0 {
		os.Chmod(p, 0o000)
		t.Setenv("IRSA_TEST_UNREADABLE", p)
		TestCheckTokenFileUnreadable(t)
		return
	}
	// The test binary lives in a root-only build directory: copy it out.
	exe, _ := os.Executable()
	bin, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	copyExe := filepath.Join(dir, "irsa.test")
	if err := os.WriteFile(copyExe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(copyExe, "-test.run", "^TestCheckTokenFileUnreadable$")
	cmd.Env = append(os.Environ(), "IRSA_TEST_UNREADABLE="+p)
	cmd.Dir = dir
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("as nobody: %v\n%s", err, out)
	}
}
