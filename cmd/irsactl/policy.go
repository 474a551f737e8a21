package main

import (
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
	"github.com/irsakit/irsakit/irsa"
)

const policyUsage = `Usage: irsactl policy KIND [flags]

KIND:
  trust        the role's trust policy for one service account
  rds          rds-db:connect for database users
  elasticache  elasticache:Connect for a cache user
  s3           ListBucket on a bucket (or prefix), object actions on its keys
  secrets      GetSecretValue/DescribeSecret on named secrets
  combined     rds + elasticache + s3 + secrets in one document (flags of each)
`

// policyFlags are every kind's flags; each kind checks the ones it needs.
type policyFlags struct {
	scope policy.Scope
	// trust
	providerARN, issuer, namespace, serviceAccount, audience string
	// rds
	resourceID, dbUsers string
	// elasticache
	cache, cacheUser string
	serverless       bool
	// s3
	bucket   string
	readOnly bool
	// secrets
	secretList, kmsKey string
}

func runPolicy(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, policyUsage)
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "-help") {
			return flag.ErrHelp
		}
		return usagef("policy: missing KIND")
	}
	kind := args[0]
	var pf policyFlags
	fs := newFlagSet("policy "+kind, stderr)
	fs.StringVar(&pf.scope.Partition, "partition", "", "AWS partition: aws, aws-cn or aws-us-gov (default: from --region, else aws)")
	fs.StringVar(&pf.scope.Account, "account", "", "AWS account id (12 digits) owning the resources")
	fs.StringVar(&pf.scope.Region, "region", "", "region of the resources (e.g. us-east-1)")
	switch kind {
	case "trust":
		fs.StringVar(&pf.providerARN, "oidc-provider-arn", "", "the cluster's IAM OIDC provider ARN (or --account and --issuer)")
		fs.StringVar(&pf.issuer, "issuer", "", "the cluster's OIDC issuer URL (aws eks describe-cluster --query cluster.identity.oidc.issuer)")
		fs.StringVar(&pf.namespace, "namespace", "", "Kubernetes namespace of the service account")
		fs.StringVar(&pf.serviceAccount, "service-account", "", "Kubernetes service account name")
		fs.StringVar(&pf.audience, "audience", irsa.DefaultAudience, "token audience the role accepts")
	case "rds", "elasticache", "s3", "secrets", "combined":
		if kind == "rds" || kind == "combined" {
			fs.StringVar(&pf.resourceID, "resource-id", "", "DbClusterResourceId (cluster-…) or DbiResourceId (db-…)")
			fs.StringVar(&pf.dbUsers, "db-user", "", "database user(s), comma-separated")
		}
		if kind == "elasticache" || kind == "combined" {
			fs.StringVar(&pf.cache, "cache", "", "replication group id or serverless cache name")
			fs.StringVar(&pf.cacheUser, "user", "", "ElastiCache user id (IAM users: user id = user name)")
			fs.BoolVar(&pf.serverless, "serverless", false, "the cache is an ElastiCache Serverless cache")
		}
		if kind == "s3" || kind == "combined" {
			fs.StringVar(&pf.bucket, "bucket", "", "bucket, or bucket/prefix")
			fs.BoolVar(&pf.readOnly, "read-only", false, "only s3:GetObject on objects")
		}
		if kind == "secrets" || kind == "combined" {
			fs.StringVar(&pf.secretList, "secret", "", "secret name(s) or ARN(s), comma-separated")
			fs.StringVar(&pf.kmsKey, "kms-key-arn", "", "customer managed KMS key of the secrets, if any")
		}
	default:
		fmt.Fprint(stderr, policyUsage)
		return usagef("policy: unknown kind %q", kind)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	out, err := buildPolicy(kind, pf)
	if err != nil {
		return err
	}
	_, err = stdout.Write(out)
	return err
}

func buildPolicy(kind string, pf policyFlags) ([]byte, error) {
	if kind == "trust" {
		arn := pf.providerARN
		if arn == "" {
			if pf.issuer == "" {
				return nil, usagef("policy trust: need --oidc-provider-arn, or --account and --issuer")
			}
			part := pf.scope.Partition
			if part == "" {
				part = "aws"
				if strings.HasPrefix(pf.scope.Region, "cn-") {
					part = "aws-cn"
				} else if strings.HasPrefix(pf.scope.Region, "us-gov-") {
					part = "aws-us-gov"
				}
			}
			var err error
			if arn, err = irsa.OIDCProviderARN(part, pf.scope.Account, pf.issuer); err != nil {
				return nil, err
			}
		}
		if pf.namespace == "" || pf.serviceAccount == "" {
			return nil, usagef("policy trust: need --namespace and --service-account")
		}
		return policy.Trust(arn, pf.namespace, pf.serviceAccount, pf.audience)
	}
	var sts []policy.Statement
	if kind == "rds" || (kind == "combined" && pf.resourceID != "") {
		st, err := policy.RDS(pf.scope, pf.resourceID, splitList(pf.dbUsers)...)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	if kind == "elasticache" || (kind == "combined" && pf.cache != "") {
		st, err := policy.ElastiCache(pf.scope, pf.cache, pf.cacheUser, pf.serverless)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st)
	}
	if kind == "s3" || (kind == "combined" && pf.bucket != "") {
		bucket, prefix, _ := strings.Cut(pf.bucket, "/")
		st, err := policy.S3(pf.scope, bucket, prefix, pf.readOnly)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st...)
	}
	if kind == "secrets" || (kind == "combined" && pf.secretList != "") {
		st, err := policy.Secrets(pf.scope, pf.kmsKey, splitList(pf.secretList)...)
		if err != nil {
			return nil, err
		}
		sts = append(sts, st...)
	}
	if len(sts) == 0 {
		return nil, usagef("policy combined: give the flags of at least one of rds (--resource-id), elasticache (--cache), s3 (--bucket), secrets (--secret)")
	}
	return policy.Marshal(policy.Identity(sts...))
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
