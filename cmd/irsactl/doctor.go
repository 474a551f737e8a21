package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/doctor"
	"github.com/irsakit/irsakit/irsa"
)

// envGlobalSTS overrides the global STS endpoint doctor probes (tests and
// the sandbox point it at a local address).
const envGlobalSTS = "IRSACTL_STS_GLOBAL_ENDPOINT"

func runDoctor(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("doctor", stderr)
	var (
		jsonOut       = fs.Bool("json", false, "print the report as JSON")
		audience      = fs.String("audience", irsa.DefaultAudience, "audience the web identity token must carry")
		globalSTS     = fs.String("sts-global-endpoint", "", "global STS endpoint to probe (default "+doctor.DefaultGlobalSTSEndpoint+", or $"+envGlobalSTS+")")
		skipGlobal    = fs.Bool("skip-global-sts", false, "do not probe the global STS endpoint")
		timeout       = fs.Duration("timeout", 10*time.Second, "timeout of each network probe")
		allowNodeRole = fs.Bool("allow-node-role", false, "in a pod without IRSA, probe with the node's instance role anyway")

		rdsEndpoint = fs.String("rds", "", "probe an RDS/Aurora PostgreSQL endpoint host:port with an IAM login")
		dbUser      = fs.String("db-user", "", "database user for --rds")
		dbName      = fs.String("db-name", "postgres", "database for --rds")
		rdsSSLMode  = fs.String("rds-sslmode", "", "sslmode for --rds (default verify-full with --rds-ca, else require)")
		rdsCA       = fs.String("rds-ca", "", "RDS CA bundle (global-bundle.pem) for --rds")
		rdsRegion   = fs.String("rds-region", "", "region of --rds (default: from its name, else AWS_REGION)")

		redisEndpoint = fs.String("redis", "", "probe an ElastiCache endpoint host:port with IAM AUTH")
		cache         = fs.String("cache", "", "replication group id or serverless cache name for --redis")
		cacheUser     = fs.String("user", "", "ElastiCache user id for --redis")
		serverless    = fs.Bool("serverless", false, "--cache is a serverless cache")
		redisCA       = fs.String("redis-ca", "", "CA bundle verifying the cache's certificate")
		redisNoTLS    = fs.Bool("redis-no-tls", false, "connect to --redis without TLS (fails: IAM needs TLS)")
		redisToken    = fs.String("redis-token-file", "", "diagnose this ElastiCache token instead of minting one")

		s3Target = fs.String("s3", "", "probe s3:ListBucket on bucket[/prefix]")
		secretID = fs.String("secret", "", "probe secretsmanager:GetSecretValue on a secret name or ARN")
	)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: irsactl doctor [flags]\n\nReports the credential mode and why, the token, the trust-policy condition, STS, and optional dependency probes.\nExit status: 0 all checks passed or warned, 1 a check failed, 2 usage error.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := parse(fs, args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "irsactl:", err)
		return 2
	}
	if *rdsEndpoint != "" && *dbUser == "" {
		fmt.Fprintln(stderr, "irsactl doctor: --rds needs --db-user")
		return 2
	}
	if *redisEndpoint != "" && (*cache == "" || *cacheUser == "") {
		fmt.Fprintln(stderr, "irsactl doctor: --redis needs --cache and --user")
		return 2
	}
	endpoint := *globalSTS
	if endpoint == "" {
		endpoint = os.Getenv(envGlobalSTS)
	}
	rep := doctor.Run(ctx, func(o *doctor.Options) {
		o.Audience = *audience
		o.GlobalSTSEndpoint = endpoint
		o.SkipGlobalSTS = *skipGlobal
		o.Timeout = *timeout
		o.AllowNodeRole = *allowNodeRole
		if *rdsEndpoint != "" {
			o.RDS = &doctor.RDSProbe{Endpoint: *rdsEndpoint, User: *dbUser, Database: *dbName, SSLMode: *rdsSSLMode, CAFile: *rdsCA, Region: *rdsRegion}
		}
		if *redisEndpoint != "" {
			o.Redis = &doctor.RedisProbe{Endpoint: *redisEndpoint, CacheName: *cache, User: *cacheUser, Serverless: *serverless,
				CAFile: *redisCA, NoTLS: *redisNoTLS, TokenFile: *redisToken}
		}
		if *s3Target != "" {
			b, p, _ := strings.Cut(strings.TrimPrefix(*s3Target, "s3://"), "/")
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
		fmt.Fprintln(stderr, "irsactl:", err)
		return 1
	}
	if rep.Failed() {
		return 1
	}
	return 0
}
