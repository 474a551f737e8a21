package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
	"github.com/irsakit/irsakit/irsa"
)

const tokenUsage = `Usage:
  irsactl token rds --endpoint host:port --user U [--region R]
  irsactl token elasticache --cache NAME --user U [--serverless] [--region R]

Prints an IAM authentication token (valid 15 minutes, or less if the
credentials expire sooner) signed with the environment's credentials:
  PGPASSWORD="$(irsactl token rds ...)" psql "host=... port=5432 user=U sslmode=verify-full sslrootcert=global-bundle.pem"
  redis-cli --tls -h HOST --user U --pass "$(irsactl token elasticache ...)"
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, tokenUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return usagef("token: want rds or elasticache")
	}
	kind := args[0]
	fs := newFlagSet("token "+kind, stderr)
	region := fs.String("region", "", "region the token is signed for (default: from the RDS endpoint name, else AWS_REGION)")
	user := fs.String("user", "", "database user (rds) or ElastiCache user id (elasticache)")
	var endpoint, cache *string
	var serverless *bool
	switch kind {
	case "rds":
		endpoint = fs.String("endpoint", "", "RDS/Aurora endpoint host:port")
	case "elasticache":
		cache = fs.String("cache", "", "replication group id or serverless cache name (not the endpoint host)")
		serverless = fs.Bool("serverless", false, "the cache is serverless")
	default:
		fmt.Fprint(stderr, tokenUsage)
		return usagef("token: unknown kind %q: want rds or elasticache", kind)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	if *user == "" {
		return usagef("token %s: --user is required", kind)
	}
	if kind == "rds" {
		if *endpoint == "" {
			return usagef("token rds: --endpoint host:port is required")
		}
		// Fail on a port-less endpoint before touching credentials.
		host, _, err := authtoken.SplitRDSEndpoint(*endpoint)
		if err != nil {
			return err
		}
		if *region == "" {
			*region = authtoken.RDSRegion(host)
		}
	} else if *cache == "" {
		return usagef("token elasticache: --cache is required")
	}
	sess, err := irsa.Load(ctx, func(o *irsa.Options) {
		o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.Region = *region
		o.RoleSessionName = "irsactl-token"
	})
	if err != nil {
		return err
	}
	var tok string
	if kind == "rds" {
		tok, err = authtoken.RDS(ctx, sess.Credentials(), *endpoint, *user, sess.Region())
	} else {
		tok, err = authtoken.ElastiCache(ctx, sess.Credentials(), *cache, *user, sess.Region(), *serverless)
	}
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}
