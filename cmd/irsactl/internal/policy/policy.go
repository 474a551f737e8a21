// Package policy writes the least-privilege IAM policies irsactl prints:
// the IRSA trust policy and the identity policies for RDS IAM database
// authentication, ElastiCache IAM authentication, S3 and Secrets Manager,
// alone or combined into one document. Inputs are validated; output is
// deterministic (stable key order, two-space indent, trailing newline), so
// generated templates can be compared byte for byte.
package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/s3store"
	"github.com/irsakit/irsakit/secrets"
)

// Version is the IAM policy language version.
const Version = "2012-10-17"

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement. Action and Resource marshal as a string when
// they hold one element, as the IAM console writes them.
type Statement struct {
	Sid       string                     `json:"Sid,omitempty"`
	Effect    string                     `json:"Effect"`
	Action    List                       `json:"Action"`
	Resource  List                       `json:"Resource"`
	Condition map[string]map[string]List `json:"Condition,omitempty"`
}

// List is a JSON string or array of strings.
type List []string

// MarshalJSON writes one element as a string, more as an array.
func (l List) MarshalJSON() ([]byte, error) {
	if len(l) == 1 {
		return json.Marshal(l[0])
	}
	return json.Marshal([]string(l))
}

// UnmarshalJSON accepts a string or an array of strings.
func (l *List) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*l = List{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("policy: want a string or an array of strings, got %s", b)
	}
	*l = many
	return nil
}

// statementsOf parses the statements of a policy document produced by a
// service package.
func statementsOf(doc []byte) ([]Statement, error) {
	var d Document
	if err := json.Unmarshal(doc, &d); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return d.Statement, nil
}

// Marshal renders d as indented JSON with a trailing newline.
func Marshal(d Document) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	return buf.Bytes(), nil
}

// Scope is where the resources live.
type Scope struct {
	Partition string // aws (default), aws-cn, aws-us-gov
	Region    string
	Account   string
}

var (
	regionRE  = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$`)
	accountRE = regexp.MustCompile(`^\d{12}$`)
)

func (s *Scope) check(needRegion bool) error {
	if s.Partition == "" {
		switch {
		case strings.HasPrefix(s.Region, "cn-"):
			s.Partition = "aws-cn"
		case strings.HasPrefix(s.Region, "us-gov-"):
			s.Partition = "aws-us-gov"
		default:
			s.Partition = "aws"
		}
	}
	switch s.Partition {
	case "aws", "aws-cn", "aws-us-gov":
	default:
		return fmt.Errorf("policy: partition %q: want aws, aws-cn or aws-us-gov", s.Partition)
	}
	if (needRegion || s.Account != "") && !accountRE.MatchString(s.Account) {
		return fmt.Errorf("policy: account %q must be 12 digits (aws sts get-caller-identity --query Account --output text)", s.Account)
	}
	if needRegion && !regionRE.MatchString(s.Region) {
		return fmt.Errorf("policy: region %q is not an AWS region code such as us-east-1", s.Region)
	}
	return nil
}

// Trust returns the IRSA trust policy: providerARN may assume the role for
// exactly system:serviceaccount:namespace:serviceAccount with audience aud
// (default sts.amazonaws.com). It is [irsa.TrustPolicy], newline-terminated.
func Trust(providerARN, namespace, serviceAccount, aud string) ([]byte, error) {
	b, err := irsa.TrustPolicy(providerARN, namespace, serviceAccount, func(o *irsa.TrustPolicyOptions) {
		if aud != "" {
			o.Audience = aud
		}
	})
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// RDS returns the statement allowing rds-db:connect as each database user
// on the DB instance or cluster with resourceID — the DbiResourceId
// (db-…) or DbClusterResourceId (cluster-…), not the instance name: aws rds
// describe-db-clusters --query 'DBClusters[].DbClusterResourceId'. It is
// [rdsauth.Policy]'s statement.
func RDS(s Scope, resourceID string, users ...string) (Statement, error) {
	if err := s.check(true); err != nil {
		return Statement{}, err
	}
	doc, err := rdsauth.Policy(s.Region, s.Account, resourceID, users...)
	if err != nil {
		return Statement{}, err
	}
	sts, err := statementsOf(doc)
	if err != nil || len(sts) != 1 {
		return Statement{}, fmt.Errorf("policy: unexpected rdsauth.Policy output (%v)", err)
	}
	return sts[0], nil
}

// ElastiCache returns the statement allowing elasticache:Connect to the
// replication group (or serverless cache) cacheName as userID — IAM checks
// both resources, so both are listed. It is [elasticacheauth.Policy]'s
// statement.
func ElastiCache(s Scope, cacheName, userID string, serverless bool) (Statement, error) {
	if err := s.check(true); err != nil {
		return Statement{}, err
	}
	doc, err := elasticacheauth.Policy(s.Region, s.Account, cacheName, []string{userID},
		func(o *elasticacheauth.PolicyOptions) { o.Serverless = serverless })
	if err != nil {
		return Statement{}, err
	}
	sts, err := statementsOf(doc)
	if err != nil || len(sts) != 1 {
		return Statement{}, fmt.Errorf("policy: unexpected elasticacheauth.Policy output (%v)", err)
	}
	return sts[0], nil
}

// S3 returns the statements a Store of s3store needs — [s3store.Policy]:
// s3:ListBucket on the bucket (limited to prefix by an s3:prefix condition
// when one is given) and object actions on bucket/prefix*. readOnly grants
// only ListBucket and GetObject.
func S3(s Scope, bucket, prefix string, readOnly bool) ([]Statement, error) {
	if err := s.check(false); err != nil {
		return nil, err
	}
	var actions []s3store.Action
	if readOnly {
		actions = []s3store.Action{s3store.ActionListBucket, s3store.ActionGetObject}
	}
	doc, err := s3store.Policy(bucket, prefix, actions...)
	if err != nil {
		return nil, err
	}
	sts, err := statementsOf(doc)
	if err != nil {
		return nil, err
	}
	if s.Partition != "aws" {
		for i := range sts {
			for j, r := range sts[i].Resource {
				sts[i].Resource[j] = "arn:" + s.Partition + strings.TrimPrefix(r, "arn:aws")
			}
		}
	}
	return sts, nil
}

// Secrets returns the statements [secrets.Cache] needs:
// secretsmanager:GetSecretValue on each secret, named or given by ARN (a
// name matches its ARN with the six-character random suffix, NAME-??????,
// not every secret whose name starts with NAME) — [secrets.Policy]'s
// statement — and, when kmsKeyARN is set, kms:Decrypt on that customer
// managed key through Secrets Manager only.
func Secrets(s Scope, kmsKeyARN string, names ...string) ([]Statement, error) {
	if err := s.check(true); err != nil {
		return nil, err
	}
	doc, err := secrets.Policy(s.Region, s.Account, names...)
	if err != nil {
		return nil, err
	}
	out, err := statementsOf([]byte(doc))
	if err != nil {
		return nil, err
	}
	if kmsKeyARN != "" {
		a, err := irsa.ParseARN(kmsKeyARN)
		if err != nil || a.Service != "kms" || !strings.HasPrefix(a.Resource, "key/") {
			return nil, fmt.Errorf("policy: %q is not a KMS key ARN (arn:aws:kms:REGION:ACCOUNT:key/ID)", kmsKeyARN)
		}
		out = append(out, Statement{Sid: "DecryptSecrets", Effect: "Allow", Action: List{"kms:Decrypt"},
			Resource:  List{kmsKeyARN},
			Condition: map[string]map[string]List{"StringEquals": {"kms:ViaService": {fmt.Sprintf("secretsmanager.%s.amazonaws.com", s.Region)}}}})
	}
	return out, nil
}

// Identity wraps statements into a policy document.
func Identity(statements ...Statement) Document {
	return Document{Version: Version, Statement: statements}
}
