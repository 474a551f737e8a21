package versitygw

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// IssuerIP is the address the OIDC issuer takes inside the private network
// namespace. versitygw refuses to fetch JWKS from loopback or private
// addresses (its SSRF guard), so the issuer needs a public-looking one; this
// is TEST-NET-2 (RFC 5737), never routed, and exists only on the namespace's
// own loopback interface.
const IssuerIP = "198.51.100.7"

// envChild marks the re-executed test binary running inside the namespace.
const envChild = "IRSAKIT_VERSITYGW_NETNS"

// Main is the body of a TestMain for packages whose tests use versitygw.
// It runs the test binary again inside a private user + network namespace
// (only loopback, with IssuerIP added to it), starts an [Env] there, hands it
// to use, runs the tests, tears the Env down and returns the exit code.
//
// When the binary is missing or a namespace cannot be created, use receives
// the error: with [Required] true (CI, IRSAKIT_REQUIRE_VERSITYGW) Main prints
// it with the install step and returns 1; otherwise tests run and those
// calling [Need] skip.
func Main(m *testing.M, use func(*Env, error), optFns ...func(*Options)) int {
	for _, a := range os.Args[1:] {
		// Fuzzing workers run only fuzz targets; they get no servers.
		if strings.HasPrefix(a, "-test.fuzzworker") {
			use(nil, errors.New("versitygw: not started in a fuzzing worker"))
			return m.Run()
		}
	}
	if os.Getenv(envChild) != "1" {
		if _, err := Find(); err != nil {
			return unavailable(m, use, err)
		}
		code, err := reexecInNetns()
		if err != nil {
			return unavailable(m, use, err)
		}
		return code
	}

	if err := setupLoopback(); err != nil {
		return unavailable(m, use, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	env, err := Start(ctx, optFns...)
	cancel()
	if err != nil {
		return unavailable(m, use, err)
	}
	// An interrupted run still removes the servers' data.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		s, ok := <-sigs
		if !ok {
			return
		}
		_ = env.Close()
		fmt.Fprintf(os.Stderr, "versitygw: stopped by %v\n", s)
		os.Exit(1)
	}()
	use(env, nil)
	code := m.Run()
	signal.Stop(sigs)
	close(sigs)
	if err := env.Close(); err != nil {
		fmt.Fprintf(os.Stderr, "versitygw: shutdown: %v\n", err)
	}
	return code
}

func unavailable(m *testing.M, use func(*Env, error), err error) int {
	if Required() {
		fmt.Fprintf(os.Stderr, "FAIL: versitygw environment unavailable (CI or IRSAKIT_REQUIRE_VERSITYGW is set): %v\n", err)
		return 1
	}
	use(nil, err)
	return m.Run()
}

// Need skips tb when err (the error Main handed over) is non-nil, or fails
// it when [Required] says the environment must be there.
func Need(tb testing.TB, err error) {
	tb.Helper()
	if err == nil {
		return
	}
	if Required() {
		tb.Fatalf("versitygw environment unavailable: %v", err)
	}
	tb.Skipf("versitygw environment unavailable: %v", err)
}

// reexecInNetns runs os.Args again in new user and network namespaces and
// returns its exit code. Signals that end the test run are forwarded, and
// the child is killed if this process dies.
func reexecInNetns() (int, error) {
	exe, err := os.Executable()
	if err != nil {
		return 0, fmt.Errorf("versitygw: locating the test binary: %w", err)
	}
	cmd := exec.Command(exe, os.Args[1:]...)
	cmd.Env = append(os.Environ(), envChild+"=1")
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNET,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		Pdeathsig:   syscall.SIGKILL,
	}
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	if err := cmd.Start(); err != nil {
		return 0, fmt.Errorf("versitygw: cannot create a private network namespace (user+net, as `unshare -rn` does): %w", err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				_ = cmd.Process.Signal(s)
			case <-done:
				return
			}
		}
	}()
	err = cmd.Wait()
	close(done)
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 1, fmt.Errorf("versitygw: test binary in namespace: %w", err)
	}
	return 0, nil
}

// setupLoopback brings lo up and gives it IssuerIP.
func setupLoopback() error {
	ip, err := exec.LookPath("ip")
	if err != nil {
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"} {
			if _, e := os.Stat(p); e == nil {
				ip, err = p, nil
				break
			}
		}
	}
	if err != nil {
		return fmt.Errorf("versitygw: the ip command is missing: install the Debian package iproute2")
	}
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"addr", "add", IssuerIP + "/32", "dev", "lo"},
	} {
		if out, err := exec.Command(ip, args...).CombinedOutput(); err != nil {
			return fmt.Errorf("versitygw: ip %v: %w: %s", args, err, out)
		}
	}
	return nil
}
