package vault

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"
)

// VaultVersion is the hashicorp/vault release whose aws auth method the
// binary serves; Find refuses a binary built from any other.
const VaultVersion = "v1.21.4"

// BinName is the binary tools/install-vault.sh builds into .tools/bin.
const BinName = "vault-awsauth"

// EnvBin names the environment variable that may point at the binary
// outside the repository's .tools/bin.
const EnvBin = "IRSAKIT_VAULT_AWSAUTH"

// EnvRequire makes a missing binary fail the tests instead of skipping
// them (CI does the same).
const EnvRequire = "IRSAKIT_REQUIRE_VAULT"

// InstallHint names the step that provides the binary.
const InstallHint = "run tools/install-vault.sh from the repository root (make test does this; it builds " +
	BinName + " with hashicorp/vault " + VaultVersion + " from tools/vault into .tools/bin through the Go module proxy, " +
	"several minutes cold)"

// ErrNotInstalled is wrapped by Find's error when no suitable binary exists.
var ErrNotInstalled = errors.New("vault: " + BinName + " not installed")

// sourceDir is the tools module the binary is built from, relative to the
// repository root.
const sourceDir = "tools/vault"

// Find returns the path of a vault-awsauth binary built from hashicorp/vault
// [VaultVersion] and from the current source of tools/vault: $IRSAKIT_VAULT_AWSAUTH
// if set, else .tools/bin/vault-awsauth in the nearest enclosing directory
// of the working directory that has one.
func Find() (string, error) {
	var bin, root string
	if dir, err := os.Getwd(); err == nil {
		for {
			if _, err := os.Stat(filepath.Join(dir, sourceDir, "go.mod")); err == nil {
				root = dir
				break
			}
			parent := filepath.Dir(dir)
			if parent == dir {
				break
			}
			dir = parent
		}
	}
	switch {
	case os.Getenv(EnvBin) != "":
		bin = os.Getenv(EnvBin)
	case root != "":
		bin = filepath.Join(root, ".tools", "bin", BinName)
	default:
		return "", fmt.Errorf("%w: not inside the irsakit repository and %s is not set; %s", ErrNotInstalled, EnvBin, InstallHint)
	}
	if _, err := os.Stat(bin); err != nil {
		return "", fmt.Errorf("%w: %s: %w; %s", ErrNotInstalled, bin, err, InstallHint)
	}
	version, source, err := binVersion(bin)
	if err != nil {
		return "", fmt.Errorf("%w: %w; %s", ErrNotInstalled, err, InstallHint)
	}
	if version != VaultVersion {
		return "", fmt.Errorf("%w: %s is built with hashicorp/vault %s, want %s; %s", ErrNotInstalled, bin, version, VaultVersion, InstallHint)
	}
	if root != "" {
		want, err := SourceHash(filepath.Join(root, sourceDir))
		if err != nil {
			return "", fmt.Errorf("vault: hashing %s: %w", sourceDir, err)
		}
		if source != want {
			return "", fmt.Errorf("%w: %s was built from another version of %s (source %s, now %s); %s", ErrNotInstalled, bin, sourceDir, source, want, InstallHint)
		}
	}
	return bin, nil
}

// binVersion runs bin -version, which prints "VAULTVERSION source HASH".
func binVersion(bin string) (version, source string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "-version")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return "", "", fmt.Errorf("running %s -version: %w", bin, err)
	}
	f := strings.Fields(string(out))
	if len(f) != 3 || f[1] != "source" {
		return "", "", fmt.Errorf("%s -version printed %q, not \"VERSION source HASH\": is it %s?", bin, bytes.TrimSpace(out), BinName)
	}
	return f[0], f[2], nil
}

// SourceHash returns the hash the install script stamps into the binary:
// the hex SHA-256 of, for go.mod, go.sum and each *.go file of dir in byte
// order of their names, the name, a NUL, the content and a NUL.
func SourceHash(dir string) (string, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return "", err
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	names = append(names, "go.mod", "go.sum")
	sort.Strings(names)
	h := sha256.New()
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return "", err
		}
		h.Write([]byte(n))
		h.Write([]byte{0})
		h.Write(b)
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Required reports whether a missing binary must fail the tests rather
// than skip them: when CI or IRSAKIT_REQUIRE_VAULT is set to anything but
// "", "0" or "false".
func Required() bool {
	for _, k := range []string{"CI", EnvRequire} {
		switch os.Getenv(k) {
		case "", "0", "false":
		default:
			return true
		}
	}
	return false
}

// Need skips tb when err (the error starting the server gave) is non-nil,
// or fails it when [Required] says the server must be there.
func Need(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if Required() {
		tb.Fatalf("Vault aws auth server unavailable (CI or %s is set): %v", EnvRequire, err)
	}
	tb.Skipf("Vault aws auth server unavailable: %v", err)
}
