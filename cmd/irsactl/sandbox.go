package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/sandbox"
)

func runSandbox(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("sandbox", stderr)
	envFile := fs.String("env-file", "", "also write the export lines to this file (written last: its presence means ready)")
	region := fs.String("region", "us-east-1", "region of the stand-ins")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: irsactl sandbox [flags]\n\nRuns the local AWS stand-ins (OIDC issuer, STS, IAM, PostgreSQL behind an RDS IAM front,\nRedis behind an ElastiCache IAM front, Secrets Manager, S3) until interrupted, and prints\nthe environment of a pod using them.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
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
	fmt.Fprint(stdout, "# irsactl sandbox is running; in another shell:\n")
	fmt.Fprint(stdout, exports)
	fmt.Fprintf(stdout, "# database: IAM user %s; cache: IAM user %s; S3: %s (path-style). Ctrl-C stops it.\n", "app", "app", sb.BucketURI())
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
