package elasticacheauth

import (
	"fmt"
	"strings"

	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
)

// PolicyOptions configure Policy.
type PolicyOptions struct {
	// Serverless: cacheName is a serverless cache (serverlesscache ARN)
	// rather than a replication group.
	Serverless bool
	// MemoryDB: the policy is for a MemoryDB cluster (memorydb:Connect).
	MemoryDB bool
	// Partition of the ARNs (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b,
	// aws-iso-e, aws-iso-f, aws-eusc). Default: the region's; when set, it
	// must be the region's.
	Partition string
}

// Policy returns the least-privilege identity policy (JSON) that lets a
// role connect to cacheName as each of userIDs with IAM authentication.
// IAM checks elasticache:Connect on both the cache and the user, so both
// ARNs are listed:
//
//	arn:PARTITION:elasticache:REGION:ACCOUNT:replicationgroup:CACHE (or serverlesscache:CACHE)
//	arn:PARTITION:elasticache:REGION:ACCOUNT:user:USERID
//
// For MemoryDB (PolicyOptions.MemoryDB) the action is memorydb:Connect on
// arn:PARTITION:memorydb:REGION:ACCOUNT:cluster/CLUSTER and .../user/USER.
//
// cacheName is the replication group id or serverless cache name, not an
// endpoint host.
//
// The IAM policy is half of the access control; the cache's RBAC user group
// is the other. Least privilege there means: the IAM-authenticated user
// (authentication mode iam, user id = user name) with an access string that
// allows only the commands and keys the application uses (for example
// "on ~app:* -@all +@read +@write +@connection" rather than
// "on ~* +@all"), and a user group that does NOT hold the built-in
// "default" user, which has no password and would let any client in
// without a token. A user group must contain a user named "default": create
// a disabled one (aws elasticache create-user --user-id app-default
// --user-name default --engine redis --access-string "off -@all"
// --authentication-mode Type=no-password-required) and put it in the group
// instead of the built-in one.
func Policy(region, account, cacheName string, userIDs []string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	var o PolicyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Serverless && o.MemoryDB {
		return nil, fmt.Errorf("%w: MemoryDB has no serverless caches", ErrInvalidOptions)
	}
	if !partition.ValidRegion(region) {
		return nil, fmt.Errorf("%w: %s", ErrNoRegion, partition.RegionError("region", region))
	}
	p, err := partition.Resolve(o.Partition, region)
	if err != nil {
		return nil, fmt.Errorf("%w: PolicyOptions.Partition: %v", ErrInvalidOptions, err)
	}
	if !partition.ValidAccount(account) {
		return nil, fmt.Errorf("elasticacheauth: %s", partition.AccountError("account", account))
	}
	name, err := checkCacheName(cacheName)
	if err != nil {
		return nil, err
	}
	if len(userIDs) == 0 {
		return nil, fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	service, kind, action := "elasticache", "replicationgroup", "elasticache:Connect"
	switch {
	case o.Serverless:
		kind = "serverlesscache"
	case o.MemoryDB:
		service, kind, action = "memorydb", "cluster", "memorydb:Connect"
	}
	// ElastiCache ARNs separate type and name with ':', MemoryDB's with '/'.
	sep := ":"
	if o.MemoryDB {
		sep = "/"
	}
	resources := policydoc.List{fmt.Sprintf("arn:%s:%s:%s:%s:%s%s%s", p.ID, service, region, account, kind, sep, name)}
	seen := map[string]bool{}
	for _, u := range userIDs {
		if err := checkUser(u); err != nil {
			return nil, err
		}
		if strings.ContainsAny(u, "*?") {
			return nil, fmt.Errorf("%w: %q: wildcards would grant more than one user", ErrInvalidUser, u)
		}
		if seen[u] {
			continue
		}
		seen[u] = true
		resources = append(resources, fmt.Sprintf("arn:%s:%s:%s:%s:user%s%s", p.ID, service, region, account, sep, u))
	}
	return policydoc.Marshal(policydoc.New(policydoc.Statement{
		Sid:      "ElastiCacheIAMConnect",
		Effect:   "Allow",
		Action:   policydoc.List{action},
		Resource: resources,
	}))
}
