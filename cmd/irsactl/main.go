// Command irsactl diagnoses and exercises IRSA (IAM Roles for Service
// Accounts) from inside a pod or on a workstation.
//
//	irsactl doctor [--json] [--rds host:port --db-user U] [--redis host:port --cache NAME --user U] [--s3 bucket[/prefix]] [--secret ID]
//	irsactl token rds --endpoint host:port --user U [--region R]
//	irsactl token elasticache --cache NAME --user U [--serverless] [--region R]
//	irsactl policy trust|rds|elasticache|s3|secrets|combined ...
//	irsactl sandbox [--env-file FILE]
//
// doctor exits 1 when a check fails, 2 on a usage error; the other
// commands exit 1 on error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `irsactl — IAM Roles for Service Accounts, diagnosed

Usage:
  irsactl doctor [flags]        what identity am I, and why not (irsactl doctor -h)
  irsactl token rds|elasticache  print an IAM auth token for psql / redis-cli
  irsactl policy KIND [flags]   print a least-privilege IAM policy
                                KIND: trust, rds, elasticache, s3, secrets, combined
  irsactl sandbox [flags]       run local AWS stand-ins with real PostgreSQL and Redis
`

// errUsage marks a command-line mistake (exit code 2).
var errUsage = errors.New("usage")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "doctor":
		return runDoctor(ctx, args[1:], stdout, stderr)
	case "token":
		err = runToken(ctx, args[1:], stdout, stderr)
	case "policy":
		err = runPolicy(args[1:], stdout, stderr)
	case "sandbox":
		err = runSandbox(ctx, args[1:], stdout, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		fmt.Fprintf(stderr, "irsactl: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	switch {
	case err == nil:
		return 0
	case errors.Is(err, flag.ErrHelp):
		return 0
	case errors.Is(err, errUsage):
		fmt.Fprintln(stderr, "irsactl:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "irsactl:", err)
		return 1
	}
}

func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("irsactl "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parse parses flags and turns a flag error into errUsage (flag has
// already printed it).
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return fmt.Errorf("%w: %s", errUsage, fs.Name())
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("%w: %s: unexpected argument %q", errUsage, fs.Name(), fs.Arg(0))
	}
	return nil
}

// usagef reports a command-line mistake.
func usagef(format string, a ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUsage}, a...)...)
}
