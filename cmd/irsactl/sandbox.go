package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/sandbox"
)

const sandboxHeader = `Usage: irsactl sandbox [flags]

Runs local AWS stand-ins until interrupted: an EKS-like OIDC issuer and
projected token, STS, IAM, a real PostgreSQL behind an RDS IAM front, a real
Redis behind an ElastiCache IAM front, Secrets Manager and S3, all on
127.0.0.1. It prints the environment of a pod using them (export lines) and
ready-to-paste irsactl doctor, psql and redis-cli commands.
Needs PostgreSQL (postgres, initdb) and redis-server installed.
`

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("sandbox", sandboxHeader)
	envFile := c.fs.String("env-file", "", "also write the export lines to `FILE` (written last: its presence means ready)")
	region := c.fs.String("region", "us-east-1", "`REGION` of the stand-ins")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	startCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	sb, err := sandbox.Start(startCtx, func(o *sandbox.Options) { o.Region = *region })
	cancel()
	if err != nil {
		return fmt.Errorf("sandbox: %w", err)
	}
	defer sb.Close()
	exports := sb.Exports()
	fmt.Fprint(stdout, "# irsactl sandbox is running; Ctrl-C stops it. The environment of a pod using it:\n")
	fmt.Fprint(stdout, exports)
	fmt.Fprint(stdout, "\n# Then, in a shell with those exports:\n")
	fmt.Fprint(stdout, sb.TryCommands())
	if *envFile != "" {
		tmp := *envFile + ".tmp"
		if err := os.WriteFile(tmp, []byte(exports), 0o600); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		if err := os.Rename(tmp, *envFile); err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		defer os.Remove(*envFile)
	}
	<-ctx.Done()
	fmt.Fprintln(stderr, "irsactl sandbox: stopping")
	return sb.Close()
}
