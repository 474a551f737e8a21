package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/irsa"
)

// envGlobalSTS overrides the global STS endpoint --global-sts probes (the
// sandbox points it at its STS stand-in).
const envGlobalSTS = "IRSACTL_STS_GLOBAL_ENDPOINT"

const doctorHeader = `Usage: irsactl doctor [flags]

Reports how this environment gets AWS credentials and why, the projected
token, the trust-policy condition it needs, STS, and the dependencies named
by the flags below. Each finding has a status, a cause and a fix.

Doctor connects only to the endpoints this environment names (AWS_REGION,
AWS_ENDPOINT_URL_*, the credential source) and to those given as flags; the
instance metadata service only when the credential chain itself would use it
(--allow-node-role). Each network check gives up after --timeout.

With --assume ROLE_ARN it then assumes that role with the credentials STS
accepted (sts:AssumeRole, as an application reaching a role of another
account does) and, when STS refuses, prints the trust policy the role needs.

The report ends with the counters of the caches doctor used: the
session's credentials, the assumed role's, and the RDS and ElastiCache
token sources (fetches, early refreshes, failures, served stale, last
refresh, expiry); never a credential or token.

Check names (stable, for --json): credential-mode, env:VARIABLE, region,
token-file, token-claims, trust-policy, sts, sts-global, assume-role, rds,
elasticache, s3, secret.

Exit status: 0 all checks passed or warned, 1 a check failed, 2 usage error.
`

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	c := newCommand("doctor", doctorHeader)
	fs := c.fs
	var (
		jsonOut       = fs.Bool("json", false, "print the report as JSON (fields: status ok|warn|fail, mode, why, env, identity, checks, stats)")
		audience      = fs.String("audience", irsa.DefaultAudience, "audience the web identity token must carry")
		globalSTS     = fs.Bool("global-sts", false, "also probe the global STS endpoint (irsakit never calls it; other tools in the pod may)")
		globalSTSURL  = fs.String("global-sts-endpoint", "", "`URL` of the global STS endpoint for --global-sts (default "+doctor.DefaultGlobalSTSEndpoint+", or $"+envGlobalSTS+")")
		timeout       = fs.Duration("timeout", doctor.DefaultTimeout, "how long each network check may take")
		allowNodeRole = fs.Bool("allow-node-role", false, "in a pod without IRSA, check with the node's instance role anyway")
		assume        = fs.String("assume", "", "then assume the role `ROLE_ARN` (e.g. of another account) with these credentials, sts:AssumeRole")
		externalID    = fs.String("external-id", "", "the sts:ExternalId `ID` to send with --assume, when the role's trust policy requires one")
		region        = fs.String("region", "", "`REGION` the RDS and ElastiCache tokens are signed for (default: from the --db-endpoint name, else AWS_REGION)")

		dbEndpoint = fs.String("db-endpoint", "", "log in to this RDS / Aurora PostgreSQL endpoint `HOST:PORT` with an IAM token")
		dbUser     = fs.String("db-user", "", "database `USER` for --db-endpoint (created WITH LOGIN and GRANT rds_iam)")
		dbName     = fs.String("db-name", "postgres", "`DATABASE` for --db-endpoint")
		dbSSLMode  = fs.String("db-sslmode", "verify-full", "`SSLMODE` for --db-endpoint: verify-full checks the certificate and the host name against --db-ca (else the system roots), verify-ca the certificate only; require checks no certificate (a warning: irsakit applications refuse it unless they opt in)")
		dbCA       = fs.String("db-ca", "", "the RDS CA bundle `FILE` verifying --db-endpoint (global-bundle.pem, from "+doctor.RDSCABundleURL+"); default: the system roots, which trust Aurora DSQL but not RDS")

		cacheEndpoint = fs.String("cache-endpoint", "", "AUTH with an IAM token and PING this ElastiCache (Redis OSS / Valkey) endpoint `HOST:PORT`")
		cache         = fs.String("cache", "", "replication group id or serverless cache `NAME` for --cache-endpoint (not the endpoint host)")
		cacheUser     = fs.String("cache-user", "", "IAM-enabled ElastiCache `USER_ID` for --cache-endpoint")
		serverless    = fs.Bool("serverless", false, "--cache is an ElastiCache Serverless cache")
		cacheCA       = fs.String("cache-ca", "", "CA bundle `FILE` verifying --cache-endpoint (default: the system roots, which trust ElastiCache)")
		cacheNoTLS    = fs.Bool("cache-no-tls", false, "connect to --cache-endpoint without TLS (reported as a failure: IAM needs TLS)")
		cacheToken    = fs.String("cache-token-file", "", "diagnose the ElastiCache token in `FILE` instead of minting one")

		bucket   = fs.String("bucket", "", "list one key of `BUCKET[/PREFIX]` (s3:ListBucket)")
		secretID = fs.String("secret", "", "read the secret `NAME_OR_ARN` (secretsmanager:GetSecretValue; the value is never shown)")
	)
	if err := c.parse(args, stdout); err != nil {
		return err
	}
	switch {
	case *dbEndpoint != "" && *dbUser == "":
		return c.usagef("--db-endpoint needs --db-user")
	case *dbEndpoint == "" && *dbUser != "":
		return c.usagef("--db-user needs --db-endpoint HOST:PORT")
	case *cacheEndpoint != "" && (*cache == "" || *cacheUser == ""):
		return c.usagef("--cache-endpoint needs --cache and --cache-user")
	case *cacheEndpoint == "" && (*cache != "" || *cacheUser != ""):
		return c.usagef("--cache and --cache-user need --cache-endpoint HOST:PORT")
	case *timeout <= 0:
		return c.usagef("--timeout must be positive, e.g. 3s")
	case *externalID != "" && *assume == "":
		return c.usagef("--external-id needs --assume ROLE_ARN")
	}
	if *assume != "" {
		if _, _, err := irsa.ParseRoleARN(*assume); err != nil {
			return c.usagef("--assume: %s", strings.TrimPrefix(err.Error(), "irsa: "))
		}
	}
	endpoint := *globalSTSURL
	if endpoint == "" {
		endpoint = os.Getenv(envGlobalSTS)
	}
	rep := doctor.Run(ctx, func(o *doctor.Options) {
		o.Audience = *audience
		o.GlobalSTS = *globalSTS || *globalSTSURL != ""
		o.GlobalSTSEndpoint = endpoint
		o.Timeout = *timeout
		o.AllowNodeRole = *allowNodeRole
		if *assume != "" {
			o.AssumeRole = &doctor.AssumeRoleProbe{RoleARN: *assume, ExternalID: *externalID}
		}
		if *dbEndpoint != "" {
			o.RDS = &doctor.RDSProbe{Endpoint: *dbEndpoint, User: *dbUser, Database: *dbName, SSLMode: *dbSSLMode, CAFile: *dbCA, Region: *region}
		}
		if *cacheEndpoint != "" {
			o.Redis = &doctor.RedisProbe{Endpoint: *cacheEndpoint, CacheName: *cache, User: *cacheUser, Serverless: *serverless,
				CAFile: *cacheCA, NoTLS: *cacheNoTLS, TokenFile: *cacheToken, Region: *region}
		}
		if *bucket != "" {
			b, p, _ := strings.Cut(strings.TrimPrefix(*bucket, "s3://"), "/")
			o.S3 = &doctor.S3Probe{Bucket: b, Prefix: p}
		}
		if *secretID != "" {
			o.Secret = &doctor.SecretProbe{SecretID: *secretID}
		}
	})
	var err error
	if *jsonOut {
		err = rep.WriteJSON(stdout)
	} else {
		err = rep.WriteText(stdout)
	}
	if err != nil {
		return fmt.Errorf("doctor: writing the report: %w", err)
	}
	if rep.Failed() {
		return errChecksFailed
	}
	return nil
}
