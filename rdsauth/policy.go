package rdsauth

import (
	"encoding/json"
	"fmt"
	"strings"
)

// Policy returns the least-privilege IAM policy (JSON) that lets a role
// connect as each of users to one database: rds-db:connect on
// arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCEID/USER, nothing else.
//
// resourceID is the instance's DbiResourceId ("db-…", from
// `aws rds describe-db-instances --query 'DBInstances[].DbiResourceId'`),
// the Aurora cluster's resource id ("cluster-…", DbClusterResourceId) or an
// RDS Proxy's ("prx-…"); not the instance name. The partition follows the
// region (aws, aws-cn, aws-us-gov). Wildcards are refused: they would not
// be least privilege.
func Policy(region, account, resourceID string, users ...string) ([]byte, error) {
	if !validRegion(region) {
		return nil, fmt.Errorf("%w: region %q is not a region name like us-east-1", ErrInvalidPolicyInput, region)
	}
	if len(account) != 12 || strings.Trim(account, "0123456789") != "" {
		return nil, fmt.Errorf("%w: account %q is not a 12-digit AWS account id", ErrInvalidPolicyInput, account)
	}
	if err := checkResourceID(resourceID); err != nil {
		return nil, err
	}
	if len(users) == 0 {
		return nil, fmt.Errorf("%w: no database user", ErrInvalidPolicyInput)
	}
	resources := make([]string, 0, len(users))
	seen := map[string]bool{}
	for _, u := range users {
		if err := checkPolicyUser(u); err != nil {
			return nil, err
		}
		if seen[u] {
			continue
		}
		seen[u] = true
		resources = append(resources, fmt.Sprintf("arn:%s:rds-db:%s:%s:dbuser:%s/%s", partition(region), region, account, resourceID, u))
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
			Sid:      "RDSIAMConnect",
			Effect:   "Allow",
			Action:   "rds-db:connect",
			Resource: resources,
		}},
	}
	return json.MarshalIndent(doc, "", "  ")
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
