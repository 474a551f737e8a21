package versitygw

import (
	"bytes"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"time"
)

// Version is the versitygw release the harness is written against. The
// install script builds exactly this version; Find refuses any other, since
// error codes and IAM semantics differ between releases.
const Version = "v1.8.0"

// InstallHint names the step that provides the binary.
const InstallHint = "run tools/install-versitygw.sh from the repository root (make test does this; " +
	"it builds versitygw " + Version + " into .tools/bin through the Go module proxy, a few minutes cold)"

// EnvBin names the environment variable that may point at a versitygw
// binary outside the repository's .tools/bin.
const EnvBin = "IRSAKIT_VERSITYGW"

// ErrNotInstalled is wrapped by Find's error when no suitable binary exists.
var ErrNotInstalled = errors.New("versitygw: binary not installed")

var versionLine = regexp.MustCompile(`(?m)^Version\s*:\s*(\S+)\s*$`)

// Find returns the path of a versitygw binary of [Version]: $IRSAKIT_VERSITYGW
// if set, else .tools/bin/versitygw in the nearest enclosing directory of the
// working directory that has one, else versitygw on PATH.
func Find() (string, error) {
	var candidates []string
	if p := os.Getenv(EnvBin); p != "" {
		candidates = append(candidates, p)
	} else {
		if dir, err := os.Getwd(); err == nil {
			for {
				p := filepath.Join(dir, ".tools", "bin", "versitygw")
				if _, err := os.Stat(p); err == nil {
					candidates = append(candidates, p)
					break
				}
				parent := filepath.Dir(dir)
				if parent == dir {
					break
				}
				dir = parent
			}
		}
		if p, err := exec.LookPath("versitygw"); err == nil {
			candidates = append(candidates, p)
		}
	}
	if len(candidates) == 0 {
		return "", fmt.Errorf("%w: %s", ErrNotInstalled, InstallHint)
	}
	var errs []error
	for _, p := range candidates {
		v, err := binVersion(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if v != Version {
			errs = append(errs, fmt.Errorf("%s is version %s, want %s", p, v, Version))
			continue
		}
		return p, nil
	}
	return "", fmt.Errorf("%w: %w; %s", ErrNotInstalled, errors.Join(errs...), InstallHint)
}

// binVersion reads the versitygw module version from the binary's build
// information (go install …@v1.8.0 and the tools module's go build both
// record it), falling back to what --version prints.
func binVersion(path string) (string, error) {
	if info, err := buildinfo.ReadFile(path); err == nil {
		const mod = "github.com/versity/versitygw"
		if info.Main.Path == mod && info.Main.Version != "" && info.Main.Version != "(devel)" {
			return info.Main.Version, nil
		}
		for _, d := range info.Deps {
			if d.Path == mod {
				if d.Replace != nil {
					return "", fmt.Errorf("%s is built from a replaced %s (%s)", path, mod, d.Replace.Path)
				}
				return d.Version, nil
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Env = []string{"PATH=/usr/bin:/bin"}
	out, err := cmd.Output()
	if err != nil {
		return "", fmt.Errorf("running %s --version: %w", path, err)
	}
	m := versionLine.FindSubmatch(out)
	if m == nil {
		return "", fmt.Errorf("%s --version printed no version: %q", path, bytes.TrimSpace(out))
	}
	return string(m[1]), nil
}

// Required reports whether a missing versitygw or network namespace must
// fail the tests rather than skip them: when CI or IRSAKIT_REQUIRE_VERSITYGW
// is set to anything but "", "0" or "false".
func Required() bool {
	for _, k := range []string{"CI", "IRSAKIT_REQUIRE_VERSITYGW"} {
		switch os.Getenv(k) {
		case "", "0", "false":
		default:
			return true
		}
	}
	return false
}
