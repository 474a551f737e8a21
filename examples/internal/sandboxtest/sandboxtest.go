// Package sandboxtest builds irsactl and runs `irsactl sandbox` for the
// examples' tests: the same local AWS stand-ins (STS, IAM, PostgreSQL behind
// an RDS IAM front, Redis behind an ElastiCache IAM front, Secrets Manager,
// S3) that make demo uses.
package sandboxtest

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// BuildIrsactl builds cmd/irsactl into dir and returns its path.
func BuildIrsactl(dir string) (string, error) {
	bin := filepath.Join(dir, "irsactl")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/irsakit/irsakit/cmd/irsactl").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("go build irsactl: %v\n%s", err, out)
	}
	return bin, nil
}

// Sandbox is a running `irsactl sandbox`.
type Sandbox struct {
	// Vars are the exported variables (AWS_ROLE_ARN, DATABASE_ENDPOINT, ...).
	Vars   map[string]string
	cmd    *exec.Cmd
	stderr bytes.Buffer
}

// Start runs `irsactl sandbox` and waits until it is ready.
func Start(ctx context.Context, irsactl, dir string) (*Sandbox, error) {
	envFile := filepath.Join(dir, "sandbox.env")
	s := &Sandbox{Vars: map[string]string{}}
	s.cmd = exec.Command(irsactl, "sandbox", "--env-file", envFile)
	s.cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + dir}
	s.cmd.Stderr = &s.stderr
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for {
		b, err := os.ReadFile(envFile)
		if err == nil {
			sc := bufio.NewScanner(bytes.NewReader(b))
			for sc.Scan() {
				if kv, ok := strings.CutPrefix(sc.Text(), "export "); ok {
					k, v, _ := strings.Cut(kv, "=")
					s.Vars[k] = strings.Trim(v, "'")
				}
			}
			return s, nil
		}
		select {
		case <-ctx.Done():
			s.cmd.Process.Kill()
			s.cmd.Wait()
			return nil, fmt.Errorf("irsactl sandbox not ready: %v\n%s", ctx.Err(), s.stderr.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// Environ returns the sandbox's variables as KEY=VALUE.
func (s *Sandbox) Environ() []string {
	var out []string
	for k, v := range s.Vars {
		out = append(out, k+"="+v)
	}
	return out
}

// Stop sends SIGTERM and waits for a clean exit.
func (s *Sandbox) Stop() error {
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- s.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("irsactl sandbox: %v\n%s", err, s.stderr.String())
		}
		return nil
	case <-time.After(30 * time.Second):
		s.cmd.Process.Kill()
		return errors.New("irsactl sandbox did not stop within 30s of SIGTERM")
	}
}
