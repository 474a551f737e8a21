package elasticacheauth

import (
	"encoding/json"
	"fmt"
	"strings"
)

// PolicyOptions configure Policy.
type PolicyOptions struct {
	// Serverless: cacheName is a serverless cache (serverlesscache ARN)
	// rather than a replication group.
	Serverless bool
	// MemoryDB: the policy is for a MemoryDB cluster (memorydb:Connect).
	MemoryDB bool
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
func Policy(region, account, cacheName string, userIDs []string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	var o PolicyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Serverless && o.MemoryDB {
		return nil, fmt.Errorf("%w: MemoryDB has no serverless caches", ErrInvalidOptions)
	}
	if !validRegion(region) {
		return nil, fmt.Errorf("%w: region %q is not a region name like us-east-1", ErrNoRegion, region)
	}
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return nil, fmt.Errorf("elasticacheauth: account %q is not a 12-digit AWS account id", account)
	}
	name, err := checkCacheName(cacheName)
	if err != nil {
		return nil, err
	}
	if len(userIDs) == 0 {
		return nil, fmt.Errorf("%w: no user id", ErrInvalidUser)
	}
	partition := "aws"
	switch {
	case strings.HasPrefix(region, "cn-"):
		partition = "aws-cn"
	case strings.HasPrefix(region, "us-gov-"):
		partition = "aws-us-gov"
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
	resources := []string{fmt.Sprintf("arn:%s:%s:%s:%s:%s%s%s", partition, service, region, account, kind, sep, name)}
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
		resources = append(resources, fmt.Sprintf("arn:%s:%s:%s:%s:user%s%s", partition, service, region, account, sep, u))
	}
	type statement struct {
		Sid      string   `json:"Sid"`
		Effect   string   `json:"Effect"`
		Action   string   `json:"Action"`
		Resource []string `json:"Resource"`
	}
	doc := struct {
		Version   string      `json:"Version"`
		Statement []statement `json:"Statement"`
	}{
		Version: "2012-10-17",
		Statement: []statement{{
			Sid:      "ElastiCacheIAMConnect",
			Effect:   "Allow",
			Action:   action,
			Resource: resources,
		}},
	}
	return json.MarshalIndent(doc, "", "  ")
}
