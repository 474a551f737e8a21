package rdsauth

import (
	"fmt"
	"strings"

	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
)

// PolicyOptions configure [Policy]. The zero value is the usual choice.
type PolicyOptions struct {
	// Partition of the ARNs (aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b,
	// aws-iso-e, aws-iso-f, aws-eusc). Default: the region's; when set, it
	// must be the region's.
	Partition string
}

// Policy returns the least-privilege IAM identity policy (JSON) that lets a
// role connect as each of users to one database: rds-db:connect on
// arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCEID/USER, nothing else.
//
// resourceID is the instance's DbiResourceId ("db-…", from
// `aws rds describe-db-instances --query 'DBInstances[].DbiResourceId'`),
// the Aurora cluster's resource id ("cluster-…", DbClusterResourceId) or an
// RDS Proxy's ("prx-…"); not the instance name. Wildcards are refused: they
// would not be least privilege. Errors wrap [ErrInvalidPolicyInput].
func Policy(region, account, resourceID string, users []string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	p, err := policyPartition(region, account, optFns)
	if err != nil {
		return nil, err
	}
	if err := checkResourceID(resourceID); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: no database user", ErrInvalidPolicyInput)
	}
	resources := make(policydoc.List, 0, len(users))
	seen := map[string]bool{}
	for _, u := range users {
		if err := checkPolicyUser(u); err != nil {
			return nil, err
		}
		if seen[u] {
			continue
		}
		seen[u] = true
		resources = append(resources, fmt.Sprintf("arn:%s:rds-db:%s:%s:dbuser:%s/%s", p.ID, region, account, resourceID, u))
	}
	return policydoc.Marshal(policydoc.New(policydoc.Statement{
		Sid:      "RDSIAMConnect",
		Effect:   "Allow",
		Action:   policydoc.List{"rds-db:connect"},
		Resource: resources,
	}))
}

// policyPartition checks the region and account both generators share and
// returns the ARNs' partition.
func policyPartition(region, account string, optFns []func(*PolicyOptions)) (partition.Partition, error) {
	var o PolicyOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if !partition.ValidRegion(region) {
		return partition.Partition{}, fmt.Errorf("%w: %s", ErrInvalidPolicyInput, partition.RegionError("region", region))
	}
	p, err := partition.Resolve(o.Partition, region)
	if err != nil {
		return partition.Partition{}, fmt.Errorf("%w: %v", ErrInvalidPolicyInput, err)
	}
	if !partition.ValidAccount(account) {
		return partition.Partition{}, fmt.Errorf("%w: %s", ErrInvalidPolicyInput, partition.AccountError("account", account))
	}
	return p, nil
}

func checkResourceID(id string) error {
	var rest string
	switch {
	case strings.HasPrefix(id, "db-"):
		rest = id[len("db-"):]
	case strings.HasPrefix(id, "cluster-"):
		rest = id[len("cluster-"):]
	case strings.HasPrefix(id, "prx-"):
		rest = id[len("prx-"):]
	default:
		return fmt.Errorf("%w: resource id %q must be a DbiResourceId (db-…), a cluster resource id (cluster-…) or a proxy id (prx-…), not an instance name", ErrInvalidPolicyInput, id)
	}
	if rest == "" || len(rest) > 64 {
		return fmt.Errorf("%w: resource id %q has no identifier after its prefix", ErrInvalidPolicyInput, id)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return fmt.Errorf("%w: resource id %q contains %q", ErrInvalidPolicyInput, id, c)
		}
	}
	return nil
}

func checkPolicyUser(u string) error {
	if u == "" || len(u) > 63 {
		return fmt.Errorf("%w: database user %q must be 1 to 63 bytes", ErrInvalidPolicyInput, u)
	}
	for i := 0; i < len(u); i++ {
		c := u[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.' || c == '$') {
			return fmt.Errorf("%w: database user %q contains %q (wildcards and separators are not allowed)", ErrInvalidPolicyInput, u, c)
		}
	}
	return nil
}

// DSQLPolicy returns the least-privilege IAM identity policy (JSON) that
// lets a role connect to one Aurora DSQL cluster as each of users:
// dsql:DbConnectAdmin when users holds admin, dsql:DbConnect when it holds
// any other role, on arn:PARTITION:dsql:REGION:ACCOUNT:cluster/CLUSTERID,
// nothing else. It has Policy's shape; PolicyOptions.Partition works the
// same way.
//
// clusterID is the cluster's identifier, the first label of its endpoint
// (`aws dsql list-clusters`), not the endpoint. IAM does not name the
// database role: a custom role is tied to the IAM role inside the
// database, by admin running AWS IAM GRANT ROLE TO 'IAM-ROLE-ARN'.
// Errors wrap [ErrInvalidPolicyInput].
func DSQLPolicy(region, account, clusterID string, users []string, optFns ...func(*PolicyOptions)) ([]byte, error) {
	p, err := policyPartition(region, account, optFns)
	if err != nil {
		return nil, err
	}
	if err := checkClusterID(clusterID); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: no database role (admin, or the custom roles the IAM role connects as)", ErrInvalidPolicyInput)
	}
	var admin, custom bool
	for _, u := range users {
		if err := checkPolicyUser(u); err != nil {
			return nil, err
		}
		if u == dsqlAdmin {
			admin = true
		} else {
			custom = true
		}
	}
	var actions policydoc.List
	if custom {
		actions = append(actions, "dsql:DbConnect")
	}
	if admin {
		actions = append(actions, "dsql:DbConnectAdmin")
	}
	return policydoc.Marshal(policydoc.New(policydoc.Statement{
		Sid:      "DSQLIAMConnect",
		Effect:   "Allow",
		Action:   actions,
		Resource: policydoc.List{fmt.Sprintf("arn:%s:dsql:%s:%s:cluster/%s", p.ID, region, account, clusterID)},
	}))
}

func checkClusterID(id string) error {
	if cid, _, ok := DSQLClusterFromHost(id); ok {
		return fmt.Errorf("%w: %q is a cluster endpoint; pass the cluster id, its first label: %q", ErrInvalidPolicyInput, id, cid)
	}
	if strings.Contains(id, ".") {
		return fmt.Errorf("%w: cluster id %q contains '.'; pass the cluster id (the first label of the endpoint), not a host name", ErrInvalidPolicyInput, id)
	}
	if !validClusterID(id) {
		return fmt.Errorf("%w: cluster id %q must be 1 to 64 lower-case letters and digits, as `aws dsql list-clusters` shows it (wildcards are not allowed)", ErrInvalidPolicyInput, id)
	}
	return nil
}
