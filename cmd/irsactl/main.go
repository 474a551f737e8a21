// Command irsactl diagnoses and exercises IRSA (IAM Roles for Service
// Accounts) from inside a pod or on a workstation.
//
//	irsactl doctor [--json] [--db-endpoint host:port --db-user U] [--cache-endpoint host:port --cache NAME --cache-user U] [--bucket bucket[/prefix]] [--secret ID]
//	irsactl token rds --db-endpoint host:port --db-user U [--region R]
//	irsactl token dsql --db-endpoint HOST (--admin | --db-user ROLE) [--region R] [--expires D]
//	irsactl token elasticache --cache NAME --cache-user U [--serverless] [--region R]
//	irsactl policy trust|rds|dsql|elasticache|s3|secrets|combined ...
//	irsactl sandbox [--env-file FILE]
//	irsactl --version
//
// Exit status: 0 success, 1 failure (doctor: a check failed), 2 usage error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/version"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `irsactl — IAM Roles for Service Accounts, diagnosed

Usage:
  irsactl doctor [flags]           what identity am I, and why not
  irsactl token rds [flags]        print an RDS IAM auth token for psql
  irsactl token dsql [flags]       print an Aurora DSQL IAM auth token for psql
  irsactl token elasticache [flags] print an ElastiCache IAM auth token for redis-cli
  irsactl policy KIND [flags]      print a least-privilege IAM policy
                                   KIND: trust, rds, dsql, elasticache, s3, secrets, combined
  irsactl sandbox [flags]          run local AWS stand-ins with real PostgreSQL and Redis
  irsactl --version                print the version

"irsactl COMMAND -h" describes each command's flags.
`

// usageError is a command-line mistake: run prints it, then the usage of
// the command it concerns (once), and exits 2.
type usageError struct {
	cmd   string          // "doctor", "token rds", ... ("" for the top level)
	msg   string          // what is wrong and how to fix it
	usage func(io.Writer) // prints the command's usage
}

func (e *usageError) Error() string {
	if e.cmd == "" {
		return "irsactl: " + e.msg
	}
	return "irsactl " + e.cmd + ": " + e.msg
}

// errChecksFailed: doctor reported a failed check (exit 1, the report
// says why).
var errChecksFailed = errors.New("checks failed")

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	topUsage := func(w io.Writer) { fmt.Fprint(w, usage) }
	var err error
	switch {
	case len(args) == 0:
		err = &usageError{msg: "missing command", usage: topUsage}
	case args[0] == "doctor":
		err = runDoctor(ctx, args[1:], stdout, stderr)
	case args[0] == "token":
		err = runToken(ctx, args[1:], stdout, stderr)
	case args[0] == "policy":
		err = runPolicy(args[1:], stdout, stderr)
	case args[0] == "sandbox":
		err = runSandbox(ctx, args[1:], stdout, stderr)
	case args[0] == "version" || args[0] == "--version" || args[0] == "-version":
		_, err = fmt.Fprintln(stdout, version.String())
	case args[0] == "help" || args[0] == "-h" || args[0] == "-help" || args[0] == "--help":
		fmt.Fprint(stdout, usage)
		return 0
	default:
		err = &usageError{msg: fmt.Sprintf("unknown command %q", args[0]), usage: topUsage}
	}
	var ue *usageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return 0
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, ue.Error())
		if ue.usage != nil {
			fmt.Fprintln(stderr)
			ue.usage(stderr)
		}
		return 2
	case errors.Is(err, errChecksFailed):
		return 1
	case errors.Is(err, errUsage):
		// policy's flag set has printed its usage with the flag error.
		fmt.Fprintln(stderr, "irsactl:", err)
		return 2
	default:
		fmt.Fprintln(stderr, "irsactl:", cliMessage(err))
		return 1
	}
}

// command is one subcommand's flag set and usage text.
type command struct {
	name   string // "doctor", "token rds", ...
	fs     *flag.FlagSet
	header string // usage text before the flag list
}

func newCommand(name, header string) *command {
	fs := flag.NewFlagSet("irsactl "+name, flag.ContinueOnError)
	// The flag package would print its own error and usage; run prints
	// both, once.
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return &command{name: name, fs: fs, header: header}
}

// printUsage writes the header and the flags with their help.
func (c *command) printUsage(w io.Writer) {
	fmt.Fprint(w, c.header)
	fmt.Fprint(w, "\nFlags:\n")
	c.fs.SetOutput(w)
	c.fs.PrintDefaults()
	c.fs.SetOutput(io.Discard)
}

// usagef reports a mistake in this command's arguments.
func (c *command) usagef(format string, a ...any) error {
	return &usageError{cmd: c.name, msg: fmt.Sprintf(format, a...), usage: c.printUsage}
}

// parse parses args; -h prints the usage to stdout and returns
// flag.ErrHelp.
func (c *command) parse(args []string, stdout io.Writer) error {
	if err := c.fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			c.printUsage(stdout)
			return err
		}
		return c.usagef("%s", strings.TrimPrefix(err.Error(), "flag "))
	}
	if c.fs.NArg() > 0 {
		return c.usagef("unexpected argument %q", c.fs.Arg(0))
	}
	return nil
}

// errUsage, newFlagSet, parse and usagef serve the policy command, whose
// flag set prints its own usage on a flag error.
var errUsage = errors.New("usage")

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
