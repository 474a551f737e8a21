// Package policy maps irsactl's inputs onto the library's policy
// generators (rdsauth.Policy, rdsauth.DSQLPolicy, elasticacheauth.Policy,
// s3store.Policy, secrets.Policy) and joins their documents for "irsactl policy combined"
// and the sandbox's role. It writes no policy of its own.
package policy

import (
	"errors"
	"strings"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/policydoc"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/s3store"
	"github.com/irsakit/irsakit/secrets"
)

// Inputs are what a role's identity policy is made of. Empty parts are
// left out of Combined.
type Inputs struct {
	Partition, Account, Region string

	ResourceID string   // rds: cluster-…, db-… or prx-…
	DBUsers    []string // rds users, dsql roles

	DSQLCluster string // dsql: the cluster id
	DSQLAdmin   bool   // dsql: the admin role too

	Cache                string   // elasticache: replication group or serverless cache
	CacheUsers           []string // elasticache
	Serverless, MemoryDB bool     // elasticache

	Bucket, Prefix           string // s3
	ReadOnly, AbortMultipart bool   // s3

	Secrets, KMSKeys []string // secrets
}

// ErrNothing: Combined was given no part.
var ErrNothing = errors.New("no rds, dsql, elasticache, s3 or secrets inputs")

// RDS is rdsauth.Policy.
func RDS(in Inputs) ([]byte, error) {
	return rdsauth.Policy(in.Region, in.Account, in.ResourceID, in.DBUsers,
		func(o *rdsauth.PolicyOptions) { o.Partition = in.Partition })
}

// DSQL is rdsauth.DSQLPolicy for DBUsers, and admin with DSQLAdmin.
func DSQL(in Inputs) ([]byte, error) {
	users := append([]string(nil), in.DBUsers...)
	if in.DSQLAdmin {
		users = append(users, "admin")
	}
	return rdsauth.DSQLPolicy(in.Region, in.Account, in.DSQLCluster, users,
		func(o *rdsauth.PolicyOptions) { o.Partition = in.Partition })
}

// ElastiCache is elasticacheauth.Policy.
func ElastiCache(in Inputs) ([]byte, error) {
	return elasticacheauth.Policy(in.Region, in.Account, in.Cache, in.CacheUsers,
		func(o *elasticacheauth.PolicyOptions) {
			o.Partition, o.Serverless, o.MemoryDB = in.Partition, in.Serverless, in.MemoryDB
		})
}

// S3 is s3store.Policy; the partition is Partition, else Region's, else aws.
func S3(in Inputs) ([]byte, error) {
	part := in.Partition
	if part == "" && in.Region != "" {
		p, err := partition.Resolve("", in.Region)
		if err != nil {
			return nil, err
		}
		part = p.ID
	}
	return s3store.Policy(in.Bucket, func(o *s3store.PolicyOptions) {
		o.Prefix, o.Partition = in.Prefix, part
		if in.ReadOnly {
			o.Actions = []s3store.Action{s3store.ActionListBucket, s3store.ActionGetObject}
		}
		if in.AbortMultipart {
			if len(o.Actions) == 0 {
				o.Actions = append(o.Actions, s3store.DefaultActions...)
			}
			o.Actions = append(o.Actions, s3store.ActionAbortMultipartUpload)
		}
	})
}

// Secrets is secrets.Policy.
func Secrets(in Inputs) ([]byte, error) {
	return secrets.Policy(in.Region, in.Account, in.Secrets, func(o *secrets.PolicyOptions) {
		o.Partition, o.KMSKeyARNs = in.Partition, in.KMSKeys
	})
}

// Combined is one document with the statements of every part whose
// identifying input (ResourceID, DSQLCluster, Cache, Bucket, Secrets) is
// set.
func Combined(in Inputs) ([]byte, error) {
	var docs [][]byte
	for _, part := range []struct {
		set bool
		gen func(Inputs) ([]byte, error)
	}{
		{in.ResourceID != "", RDS},
		{in.DSQLCluster != "", DSQL},
		{in.Cache != "", ElastiCache},
		{in.Bucket != "", S3},
		{len(in.Secrets) > 0, Secrets},
	} {
		if !part.set {
			continue
		}
		doc, err := part.gen(in)
		if err != nil {
			return nil, err
		}
		docs = append(docs, doc)
	}
	switch len(docs) {
	case 0:
		return nil, ErrNothing
	case 1:
		return docs[0], nil
	}
	d, err := policydoc.Combine(docs...)
	if err != nil {
		return nil, err
	}
	return policydoc.Marshal(d)
}

// SplitList splits a comma-separated flag value, dropping empty items.
func SplitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}
