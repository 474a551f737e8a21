package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
	"github.com/irsakit/irsakit/cmd/irsactl/internal/policy"
	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/irsa"
)

const policyUsage = `Usage: irsactl policy KIND [flags]

Prints a least-privilege IAM policy (JSON) for the role of a pod. The
documents are those of the library's generators (irsa.TrustPolicy,
irsa.RoleTrustPolicy, rdsauth.Policy, rdsauth.DSQLPolicy,
elasticacheauth.Policy, s3store.Policy, secrets.Policy).

KIND:
  trust        the role's trust policy: one Kubernetes service account may assume it,
               or (--assumed-by) another role, e.g. of another account, with sts:AssumeRole
  rds          rds-db:connect as database users of one Aurora/RDS cluster or instance
  dsql         dsql:DbConnect / dsql:DbConnectAdmin on one Aurora DSQL cluster
  elasticache  elasticache:Connect to one cache as its IAM-enabled users
  s3           ListBucket under a prefix, object actions on its keys
  secrets      GetSecretValue on named secrets (and kms:Decrypt through Secrets Manager)
  combined     rds or dsql + elasticache + s3 + secrets in one document (the flags of each)

Run irsactl policy KIND -h for the flags of a kind.
`

// policyFlags are every kind's flags; each kind registers the ones it uses.
type policyFlags struct {
	partition, account, region string
	// trust
	providerARN, issuer, namespace, serviceAccount, audience string
	assumedBy, externalID, sourceIdentity                    string
	sessionTags                                              tagFlag
	// rds, dsql
	resourceID, dbUsers string
	// dsql
	cluster, dbEndpoint string
	admin               bool
	// elasticache
	cache, cacheUsers    string
	serverless, memoryDB bool
	// s3
	bucket                   string
	readOnly, abortMultipart bool
	// secrets
	secretList, kmsKeys string

	set map[string]bool // the flags given
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
	fs.StringVar(&pf.partition, "partition", "", "AWS partition: "+partition.IDs()+" (default: the region's, else aws)")
	switch kind {
	case "trust":
		fs.StringVar(&pf.account, "account", "", "AWS account id (12 digits) of the role and its OIDC provider (with --issuer)")
		fs.StringVar(&pf.region, "region", "", "the cluster's region, to pick the partition (with --issuer)")
		fs.StringVar(&pf.providerARN, "oidc-provider-arn", "", "the cluster's IAM OIDC provider ARN (or --account and --issuer)")
		fs.StringVar(&pf.issuer, "issuer", "", "the cluster's OIDC issuer URL (aws eks describe-cluster --name CLUSTER --query cluster.identity.oidc.issuer)")
		fs.StringVar(&pf.namespace, "namespace", "", "Kubernetes namespace of the service account")
		fs.StringVar(&pf.serviceAccount, "service-account", "", "Kubernetes service account name")
		fs.StringVar(&pf.audience, "audience", irsa.DefaultAudience, "token audience the role accepts")
		fs.StringVar(&pf.assumedBy, "assumed-by", "", "instead of a service account, the `ROLE_ARN` that may assume this role with sts:AssumeRole (a pod's role assuming a role of another account)")
		fs.StringVar(&pf.externalID, "external-id", "", "with --assumed-by: the sts:ExternalId `ID` the caller must send")
		fs.StringVar(&pf.sourceIdentity, "source-identity", "", "with --assumed-by: let the caller set a source identity matching `PATTERN` (* and ? match any characters; sts:SetSourceIdentity)")
		fs.Var(&pf.sessionTags, "session-tag", "with --assumed-by: let the caller tag its session `KEY=VALUE` (repeat for more tags; sts:TagSession)")
	case "rds", "dsql", "elasticache", "s3", "secrets", "combined":
		if kind != "s3" {
			fs.StringVar(&pf.account, "account", "", "AWS account id (12 digits) owning the resources")
			fs.StringVar(&pf.region, "region", "", "region of the resources (e.g. us-east-1)")
		}
		if kind == "rds" || kind == "combined" {
			fs.StringVar(&pf.resourceID, "resource-id", "", "the cluster's DbClusterResourceId (cluster-…), an instance's DbiResourceId (db-…) or an RDS Proxy id (prx-…); not its name")
		}
		switch kind {
		case "rds":
			fs.StringVar(&pf.dbUsers, "db-user", "", "database user(s) the role may log in as, comma-separated")
		case "dsql":
			fs.StringVar(&pf.dbUsers, "db-user", "", "database role(s) other than admin the role may connect as (dsql:DbConnect), comma-separated")
		case "combined":
			fs.StringVar(&pf.dbUsers, "db-user", "", "database user(s) (rds) or role(s) other than admin (dsql) the role may connect as, comma-separated")
		}
		if kind == "dsql" || kind == "combined" {
			fs.StringVar(&pf.cluster, "cluster", "", "the Aurora DSQL cluster `ID` (the first label of its endpoint; aws dsql list-clusters)")
			fs.StringVar(&pf.dbEndpoint, "db-endpoint", "", "instead of --cluster: the cluster endpoint `HOST` (CLUSTERID.dsql.REGION.on.aws), which also gives the region")
			fs.BoolVar(&pf.admin, "admin", false, "the role may connect as the admin role (dsql:DbConnectAdmin)")
		}
		if kind == "elasticache" || kind == "combined" {
			fs.StringVar(&pf.cache, "cache", "", "replication group id or serverless cache name (not the endpoint host)")
			fs.StringVar(&pf.cacheUsers, "cache-user", "", "IAM-enabled ElastiCache user id(s), comma-separated (for IAM users the id equals the name)")
			fs.BoolVar(&pf.serverless, "serverless", false, "the cache is an ElastiCache Serverless cache")
			fs.BoolVar(&pf.memoryDB, "memorydb", false, "the cluster is a MemoryDB cluster (memorydb:Connect)")
		}
		if kind == "s3" || kind == "combined" {
			fs.StringVar(&pf.bucket, "bucket", "", "bucket, or bucket/prefix: a prefix is a directory (bucket/notes grants notes/…, not notes-private/…)")
			fs.BoolVar(&pf.readOnly, "read-only", false, "grant only s3:ListBucket and s3:GetObject")
			fs.BoolVar(&pf.abortMultipart, "abort-multipart", false, "also grant s3:AbortMultipartUpload, so a failed multipart upload removes its parts")
			if kind == "s3" {
				fs.StringVar(&pf.region, "region", "", "region of the bucket, to pick the partition (S3 ARNs carry no region)")
			}
		}
		if kind == "secrets" || kind == "combined" {
			fs.StringVar(&pf.secretList, "secret", "", "secret name(s) or ARN(s), comma-separated; NAME* grants a name prefix")
			fs.StringVar(&pf.kmsKeys, "kms-key-arn", "", "customer managed KMS key(s) of the secrets, comma-separated, if any")
		}
	default:
		fmt.Fprint(stderr, policyUsage)
		return usagef("policy: unknown kind %q", kind)
	}
	if err := parse(fs, args[1:]); err != nil {
		return err
	}
	pf.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { pf.set[f.Name] = true })
	if kind == "dsql" || kind == "combined" {
		if err := pf.dsqlCluster(kind); err != nil {
			return err
		}
	}
	out, err := buildPolicy(kind, pf)
	if err != nil {
		if errors.Is(err, errUsage) {
			return err
		}
		return errors.New(policyCLINames.Replace(err.Error()))
	}
	if _, err := stdout.Write(out); err != nil {
		return err
	}
	if pf.cache != "" && !pf.memoryDB {
		fmt.Fprintln(stderr, "note: this is half of the access control; in the cache's RBAC user group, give the user an access string limited to the app's commands and keys, and replace the built-in passwordless \"default\" user with a disabled user named default (see elasticacheauth.Policy).")
	}
	if pf.cluster != "" {
		for _, u := range policy.SplitList(pf.dbUsers) {
			if u != "admin" {
				fmt.Fprintf(stderr, "note: IAM does not name database roles; tie each role other than admin to the IAM role inside the database, as admin: AWS IAM GRANT %s TO 'arn:aws:iam::%s:role/ROLE_NAME';\n", u, pf.account)
			}
		}
	}
	if pf.assumedBy != "" {
		fmt.Fprintf(stderr, "note: this is the trust half; %s also needs an identity policy that allows sts:AssumeRole on the role this trust policy is attached to%s.\n", pf.assumedBy, extraTrustActions(pf))
	}
	return nil
}

// extraTrustActions names the actions besides sts:AssumeRole the caller's
// identity policy needs for the trust policy's tags and source identity.
func extraTrustActions(pf policyFlags) string {
	var extra []string
	if len(pf.sessionTags) > 0 {
		extra = append(extra, "sts:TagSession")
	}
	if pf.sourceIdentity != "" {
		extra = append(extra, "sts:SetSourceIdentity")
	}
	if len(extra) == 0 {
		return ""
	}
	return " (and " + strings.Join(extra, " and ") + ")"
}

// tagFlag collects repeated --session-tag KEY=VALUE flags.
type tagFlag map[string]string

func (t *tagFlag) String() string {
	if t == nil || len(*t) == 0 {
		return ""
	}
	var kv []string
	for k, v := range *t {
		kv = append(kv, k+"="+v)
	}
	sort.Strings(kv)
	return strings.Join(kv, ",")
}

func (t *tagFlag) Set(v string) error {
	k, val, ok := strings.Cut(v, "=")
	if !ok || k == "" {
		return fmt.Errorf("%q: want KEY=VALUE, e.g. team=payments", v)
	}
	if *t == nil {
		*t = tagFlag{}
	}
	if _, dup := (*t)[k]; dup {
		return fmt.Errorf("tag %q given twice", k)
	}
	(*t)[k] = val
	return nil
}

// dsqlCluster sets pf.cluster (and pf.region) from --cluster or
// --db-endpoint and checks the DSQL inputs.
func (pf *policyFlags) dsqlCluster(kind string) error {
	switch {
	case pf.cluster != "" && pf.dbEndpoint != "":
		return usagef("policy %s: give --cluster ID or --db-endpoint HOST, not both", kind)
	case pf.dbEndpoint != "":
		host, id, region, ok := authtoken.SplitDSQLEndpoint(pf.dbEndpoint)
		if !ok {
			return usagef("policy %s: --db-endpoint %q is not an Aurora DSQL cluster endpoint (CLUSTERID.dsql.REGION.on.aws); pass --cluster ID and --region instead", kind, pf.dbEndpoint)
		}
		if pf.region != "" && pf.region != region {
			return usagef("policy %s: --region %s: %s is in %s; drop --region or fix --db-endpoint", kind, pf.region, host, region)
		}
		pf.cluster, pf.region = id, region
	case pf.cluster == "":
		if kind == "dsql" {
			return usagef("policy dsql: need --cluster ID (or --db-endpoint HOST)")
		}
		if pf.admin {
			return usagef("policy combined: --admin needs --cluster ID (or --db-endpoint HOST)")
		}
		return nil
	}
	switch {
	case kind == "combined" && pf.resourceID != "":
		return usagef("policy combined: --resource-id (rds) and --cluster (dsql) would share --db-user; run irsactl policy rds and irsactl policy dsql apart")
	case pf.dbUsers == "" && !pf.admin:
		return usagef("policy %s: need --db-user ROLE[,ROLE...] or --admin (or both)", kind)
	}
	return nil
}

// buildPolicy hands the flags to the library's generators.
func buildPolicy(kind string, pf policyFlags) ([]byte, error) {
	in := policy.Inputs{
		Partition: pf.partition, Account: pf.account, Region: pf.region,
		ResourceID: pf.resourceID, DBUsers: policy.SplitList(pf.dbUsers),
		DSQLCluster: pf.cluster, DSQLAdmin: pf.admin,
		Cache: pf.cache, CacheUsers: policy.SplitList(pf.cacheUsers), Serverless: pf.serverless, MemoryDB: pf.memoryDB,
		ReadOnly: pf.readOnly, AbortMultipart: pf.abortMultipart,
		Secrets: policy.SplitList(pf.secretList), KMSKeys: policy.SplitList(pf.kmsKeys),
	}
	in.Bucket, in.Prefix, _ = strings.Cut(pf.bucket, "/")
	switch kind {
	case "trust":
		return trustPolicy(pf)
	case "rds":
		return policy.RDS(in)
	case "dsql":
		return policy.DSQL(in)
	case "elasticache":
		return policy.ElastiCache(in)
	case "s3":
		return policy.S3(in)
	case "secrets":
		return policy.Secrets(in)
	}
	doc, err := policy.Combined(in)
	if errors.Is(err, policy.ErrNothing) {
		return nil, usagef("policy combined: give the flags of at least one of rds (--resource-id), dsql (--cluster), elasticache (--cache), s3 (--bucket), secrets (--secret)")
	}
	return doc, err
}

// policyCLINames are the options the generators' errors name, and the
// flags that set them.
var policyCLINames = strings.NewReplacer(
	"PolicyOptions.KMSKeyARNs", "--kms-key-arn",
	"PolicyOptions.Partition", "--partition",
)

// trustCLINames are the options irsa's trust-policy errors name, and the
// flags that set them.
var trustCLINames = strings.NewReplacer(
	"RoleTrustPolicyOptions.ExternalID", "--external-id",
	"RoleTrustPolicyOptions.SourceIdentity", "--source-identity",
	"RoleTrustPolicyOptions.SessionTags", "--session-tag",
	"irsa: trusted role: ", "--assumed-by: ",
	"irsa: ", "",
)

// roleTrustPolicy is the trust policy of a role assumed by another role.
func roleTrustPolicy(pf policyFlags) ([]byte, error) {
	for _, f := range []string{"oidc-provider-arn", "issuer", "namespace", "service-account", "audience", "account", "region", "partition"} {
		if pf.set[f] {
			return nil, usagef("policy trust: --assumed-by writes the trust policy of a role assumed by another role; --%s is for a service account's role: drop it", f)
		}
	}
	doc, err := irsa.RoleTrustPolicy(pf.assumedBy, func(o *irsa.RoleTrustPolicyOptions) {
		o.ExternalID, o.SourceIdentity, o.SessionTags = pf.externalID, pf.sourceIdentity, pf.sessionTags
	})
	if err != nil {
		return nil, usagef("policy trust: %s", trustCLINames.Replace(err.Error()))
	}
	return doc, nil
}

func trustPolicy(pf policyFlags) ([]byte, error) {
	if pf.assumedBy != "" {
		return roleTrustPolicy(pf)
	}
	for _, f := range []string{"external-id", "source-identity", "session-tag"} {
		if pf.set[f] {
			return nil, usagef("policy trust: --%s needs --assumed-by ROLE_ARN (it is a condition on sts:AssumeRole by another role)", f)
		}
	}
	arn := pf.providerARN
	if arn == "" {
		if pf.issuer == "" {
			return nil, usagef("policy trust: need --oidc-provider-arn, or --account and --issuer")
		}
		part := pf.partition
		if part == "" {
			part = "aws"
			if pf.region != "" {
				p, err := partition.Resolve("", pf.region)
				if err != nil {
					return nil, usagef("policy trust: --region: %v", err)
				}
				part = p.ID
			}
		}
		var err error
		if arn, err = irsa.OIDCProviderARN(part, pf.account, pf.issuer); err != nil {
			return nil, err
		}
	}
	if pf.namespace == "" || pf.serviceAccount == "" {
		return nil, usagef("policy trust: need --namespace and --service-account")
	}
	return irsa.TrustPolicy(arn, pf.namespace, pf.serviceAccount, func(o *irsa.TrustPolicyOptions) {
		if pf.audience != "" {
			o.Audience = pf.audience
		}
	})
}
