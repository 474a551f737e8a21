// Package procs starts the real servers the stand-ins front (PostgreSQL,
// Redis) in temporary directories on random loopback ports, and stops them.
package procs

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"time"
)

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// WaitTCP waits until addr accepts a TCP connection or ctx ends.
func WaitTCP(ctx context.Context, addr string) error {
	var d net.Dialer
	for {
		c, err := d.DialContext(ctx, "tcp", addr)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("procs: %s did not accept connections: %w", addr, err)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// LookBin finds a server binary on PATH or in the Debian package locations
// (e.g. /usr/lib/postgresql/*/bin), with an error that names the package to
// install.
func LookBin(name, debPackage string, globs ...string) (string, error) {
	if p, err := exec.LookPath(name); err == nil {
		return p, nil
	}
	for _, g := range globs {
		m, _ := filepath.Glob(g)
		for i := len(m) - 1; i >= 0; i-- {
			if st, err := os.Stat(m[i]); err == nil && st.Mode()&0o111 != 0 {
				return m[i], nil
			}
		}
	}
	return "", fmt.Errorf("procs: %s not found: install the Debian package %s (make test does so when run as root)", name, debPackage)
}
