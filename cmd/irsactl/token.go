package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

const tokenUsage = `Usage:
  irsactl token rds --db-endpoint HOST:PORT --db-user USER [--region REGION]
  irsactl token dsql --db-endpoint HOST (--admin | --db-user ROLE) [--region REGION] [--expires DURATION]
  irsactl token elasticache --cache NAME --cache-user USER_ID [--serverless] [--region REGION]

Prints an IAM authentication token (valid 15 minutes, or less if the
credentials expire sooner) signed with this environment's credentials.
"irsactl token KIND -h" lists the flags of each kind.
`

const tokenRDSHeader = `Usage: irsactl token rds --db-endpoint HOST:PORT --db-user USER [--region REGION]

Prints an RDS / Aurora PostgreSQL IAM authentication token for USER at
HOST:PORT (the token signs both: connect to exactly that host and port).
The user needs GRANT rds_iam, the role rds-db:connect on it
(irsactl policy rds). For psql:

  export PGPASSWORD="$(irsactl token rds --db-endpoint HOST:5432 --db-user USER)"
  psql "host=HOST port=5432 dbname=DB user=USER sslmode=verify-full sslrootcert=global-bundle.pem"

(global-bundle.pem: https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem)
`

const tokenDSQLHeader = `Usage: irsactl token dsql --db-endpoint HOST (--admin | --db-user ROLE) [--region REGION] [--expires DURATION]

Prints an Aurora DSQL IAM authentication token for the cluster endpoint
HOST (CLUSTERID.dsql.REGION.on.aws) and a database role: admin gets a
DbConnectAdmin token (the role needs dsql:DbConnectAdmin), any other role a
DbConnect token (dsql:DbConnect, and inside the database
AWS IAM GRANT ROLE TO 'IAM_ROLE_ARN'); irsactl policy dsql prints the IAM
policy. What the token is for goes to stderr. For psql (PostgreSQL 16+ for
sslrootcert=system: Aurora DSQL's certificates chain to public roots):

  export PGPASSWORD="$(irsactl token dsql --db-endpoint HOST --admin)"
  psql "host=HOST user=admin dbname=postgres sslmode=verify-full sslrootcert=system"
`

const tokenElastiCacheHeader = `Usage: irsactl token elasticache --cache NAME --cache-user USER_ID [--serverless] [--region REGION]

Prints an ElastiCache (Redis OSS / Valkey) IAM authentication token for the
IAM-enabled user USER_ID on the replication group or serverless cache NAME
(the cache's name, not its endpoint host). The role needs
elasticache:Connect on both (irsactl policy elasticache). For redis-cli
(REDISCLI_AUTH keeps the token out of the process list; IAM needs TLS):

  export REDISCLI_AUTH="$(irsactl token elasticache --cache NAME --cache-user USER_ID)"
  redis-cli --tls --cacert /etc/ssl/certs/ca-certificates.crt -h HOST -p 6379 --user USER_ID ping
`

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	printTokenUsage := func(w io.Writer) { fmt.Fprint(w, tokenUsage) }
	if len(args) == 0 {
		return &usageError{cmd: "token", msg: "missing kind: rds, dsql or elasticache", usage: printTokenUsage}
	}
	switch args[0] {
	case "-h", "-help", "--help", "help":
		printTokenUsage(stdout)
		return flag.ErrHelp
	case "rds":
		return runTokenRDS(ctx, args[1:], stdout, stderr)
	case "dsql":
		return runTokenDSQL(ctx, args[1:], stdout, stderr)
	case "elasticache":
		return runTokenElastiCache(ctx, args[1:], stdout, stderr)
	}
	return &usageError{cmd: "token", msg: fmt.Sprintf("unknown kind %q: want rds, dsql or elasticache", args[0]), usage: printTokenUsage}
}

func runTokenRDS(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("token rds", tokenRDSHeader)
	endpoint := c.fs.String("db-endpoint", "", "the cluster or instance endpoint `HOST:PORT` you connect to (port required, normally 5432)")
	user := c.fs.String("db-user", "", "the database `USER` (created WITH LOGIN and GRANT rds_iam)")
	region := c.fs.String("region", "", "`REGION` the token is signed for (default: from the endpoint's name, e.g. ….us-east-1.rds.amazonaws.com, else AWS_REGION)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *endpoint == "":
		return c.usagef("--db-endpoint HOST:PORT is required")
	case *user == "":
		return c.usagef("--db-user is required")
	}
	// A port-less endpoint fails before touching credentials.
	host, _, err := authtoken.SplitRDSEndpoint(*endpoint)
	if err != nil {
		return err
	}
	if *region == "" {
		*region = authtoken.RDSRegion(host)
	}
	sess, err := tokenSession(ctx, *region, stderr)
	if err != nil {
		return err
	}
	tok, err := authtoken.RDS(ctx, sess.Credentials(), *endpoint, *user, sess.Region())
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func runTokenDSQL(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("token dsql", tokenDSQLHeader)
	endpoint := c.fs.String("db-endpoint", "", "the cluster endpoint `HOST` (CLUSTERID.dsql.REGION.on.aws; :5432 may follow)")
	admin := c.fs.Bool("admin", false, "sign for the admin role (a DbConnectAdmin token)")
	role := c.fs.String("db-user", "", "the database `ROLE` other than admin (a DbConnect token)")
	region := c.fs.String("region", "", "`REGION` the token is signed for (default: from the endpoint's name, else AWS_REGION)")
	expires := c.fs.Duration("expires", 15*time.Minute, "how long (`DURATION`, e.g. 1h) Aurora DSQL accepts the token, at most "+rdsauth.MaxDSQLTokenLifetime.String()+" (a week); never longer than the credentials that sign it")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *endpoint == "":
		return c.usagef("--db-endpoint HOST is required (the cluster endpoint, CLUSTERID.dsql.REGION.on.aws)")
	case *admin && *role != "" && *role != "admin":
		return c.usagef("--admin and --db-user %s name two roles: give one", *role)
	case !*admin && *role == "":
		return c.usagef("--admin or --db-user ROLE is required")
	case *expires <= time.Minute || *expires > rdsauth.MaxDSQLTokenLifetime:
		return c.usagef("--expires %s: give a duration from 2m to %s (a week), e.g. 1h", *expires, rdsauth.MaxDSQLTokenLifetime)
	}
	if *admin {
		*role = "admin"
	}
	host, _, derived, named := authtoken.SplitDSQLEndpoint(*endpoint)
	switch {
	case named && *region != "" && *region != derived:
		return c.usagef("--region %s: %s is in %s; drop --region or fix --db-endpoint", *region, host, derived)
	case named:
		*region = derived
	}
	sess, err := tokenSession(ctx, *region, stderr)
	if err != nil {
		return err
	}
	tok, until, err := authtoken.DSQL(ctx, sess.Credentials(), *endpoint, *role, sess.Region(), *expires)
	if err != nil {
		return err
	}
	if in, err := authtoken.Inspect(tok); err == nil {
		fmt.Fprintf(stderr, "Aurora DSQL token for role %s on %s: Action %s, region %s, valid until %s (%s)",
			*role, in.Host, in.Action, in.Region, until.UTC().Format(time.RFC3339), until.Sub(in.SignedAt).Round(time.Second))
		if until.Before(in.Expires) {
			fmt.Fprintf(stderr, ": the credentials that sign it expire before the %s asked", in.Expires.Sub(in.SignedAt))
		}
		fmt.Fprintln(stderr)
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func runTokenElastiCache(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("token elasticache", tokenElastiCacheHeader)
	cache := c.fs.String("cache", "", "the replication group id or serverless cache `NAME` (not the endpoint host)")
	user := c.fs.String("cache-user", "", "the IAM-enabled ElastiCache `USER_ID` (for IAM users the user id equals the user name)")
	serverless := c.fs.Bool("serverless", false, "NAME is an ElastiCache Serverless cache")
	region := c.fs.String("region", "", "`REGION` of the cache (default AWS_REGION)")
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *cache == "":
		return c.usagef("--cache NAME is required")
	case *user == "":
		return c.usagef("--cache-user is required")
	}
	sess, err := tokenSession(ctx, *region, stderr)
	if err != nil {
		return err
	}
	tok, err := authtoken.ElastiCache(ctx, sess.Credentials(), *cache, *user, sess.Region(), *serverless)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func tokenSession(ctx context.Context, region string, stderr io.Writer) (*irsa.Session, error) {
	return irsa.Load(ctx, func(o *irsa.Options) {
		o.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
		o.Region = region
		o.RoleSessionName = "irsactl-token"
	})
}
