// Package authtoken mints the RDS, Aurora DSQL and ElastiCache IAM
// authentication tokens irsactl prints and doctor presents, with rdsauth
// and elasticacheauth, and decodes tokens for diagnosis.
package authtoken

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/rdsauth"
)

// ErrMissingPort: an RDS endpoint without its port (rdsauth.ErrMissingPort).
var ErrMissingPort = rdsauth.ErrMissingPort

// SplitRDSEndpoint splits host:port, naming a missing port
// (rdsauth.SplitEndpoint).
func SplitRDSEndpoint(endpoint string) (host string, port int, err error) {
	h, p, err := rdsauth.SplitEndpoint(endpoint)
	return h, int(p), err
}

// RDSRegion derives the region of an RDS endpoint host, or "".
func RDSRegion(host string) string {
	r, _ := rdsauth.RegionFromHost(host)
	return r
}

// RDS mints an RDS IAM token for user at endpoint (host:port) with
// rdsauth; region "" derives it from the endpoint's name.
func RDS(ctx context.Context, creds aws.CredentialsProvider, endpoint, user, region string) (string, error) {
	src, err := rdsauth.NewTokenSource(endpoint, user, creds, func(o *rdsauth.Options) { o.Region = region })
	if err != nil {
		return "", err
	}
	defer src.Close()
	tok, err := src.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.Value(), nil
}

// DSQL mints an Aurora DSQL token for the database role at endpoint (the
// cluster endpoint, CLUSTERID.dsql.REGION.on.aws, port optional) with
// rdsauth.NewDSQLTokenSource: the role admin gets a DbConnectAdmin token,
// any other role a DbConnect token. region "" reads it from the endpoint
// name; expiresIn 0 is 15 minutes (at most rdsauth.MaxDSQLTokenLifetime).
// expires is when the token stops working: expiresIn after signing, or
// earlier when the signing credentials expire first.
func DSQL(ctx context.Context, creds aws.CredentialsProvider, endpoint, role, region string, expiresIn time.Duration) (token string, expires time.Time, err error) {
	src, err := rdsauth.NewDSQLTokenSource(endpoint, role, creds, func(o *rdsauth.Options) {
		o.Region = region
		o.ExpiresIn = expiresIn
	})
	if err != nil {
		return "", time.Time{}, err
	}
	defer src.Close()
	tok, err := src.Token(ctx)
	if err != nil {
		return "", time.Time{}, err
	}
	return tok.Value(), tok.Expires(), nil
}

// SplitDSQLEndpoint returns the host of a DSQL endpoint given with or
// without its port, and the cluster id and region its name holds (ok
// false when it is not named like a cluster endpoint).
func SplitDSQLEndpoint(endpoint string) (host, clusterID, region string, ok bool) {
	host = endpoint
	if h, _, err := net.SplitHostPort(endpoint); err == nil {
		host = h
	}
	clusterID, region, ok = rdsauth.DSQLClusterFromHost(host)
	return host, clusterID, region, ok
}

// ElastiCache mints an ElastiCache IAM token for userID on the replication
// group or serverless cache cacheName with elasticacheauth.
func ElastiCache(ctx context.Context, creds aws.CredentialsProvider, cacheName, userID, region string, serverless bool) (string, error) {
	src, err := ElastiCacheSource(creds, cacheName, userID, region, serverless)
	if err != nil {
		return "", err
	}
	defer src.Close()
	tok, err := src.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.Value(), nil
}

// ElastiCacheSource is the elasticacheauth token source ElastiCache mints
// with; an endpoint host given as the cache name is named as the mistake.
// The caller closes it.
func ElastiCacheSource(creds aws.CredentialsProvider, cacheName, userID, region string, serverless bool) (*elasticacheauth.TokenSource, error) {
	src, err := elasticacheauth.NewTokenSource(cacheName, userID, creds, func(o *elasticacheauth.Options) {
		o.Region = region
		o.Serverless = serverless
	})
	if err != nil && strings.Contains(cacheName, ".") {
		return nil, fmt.Errorf("%w (the cache name is the replication group id or serverless cache name, not the endpoint host)", err)
	}
	return src, err
}

// Info is what a token says about itself (no secret).
type Info struct {
	Host string
	// Action is connect (RDS, ElastiCache), DbConnect or DbConnectAdmin
	// (Aurora DSQL).
	Action string
	// Service and Region are the token's signing scope: rds-db, dsql,
	// elasticache or memorydb, and the region.
	Service, Region string
	User            string // User (ElastiCache) or DBUser (RDS); none in a DSQL token
	Resource        string // ResourceType
	SignedAt        time.Time
	Expires         time.Time
}

// Inspect decodes a presigned token (URL without scheme).
func Inspect(token string) (Info, error) {
	u, err := url.Parse("http://" + strings.TrimSpace(token))
	if err != nil || u.RawQuery == "" {
		return Info{}, errors.New("authtoken: not a presigned token (host/?Action=connect&...)")
	}
	q := u.Query()
	in := Info{Host: u.Host, Action: q.Get("Action"), User: q.Get("User"), Resource: q.Get("ResourceType")}
	if in.User == "" {
		in.User = q.Get("DBUser")
	}
	// X-Amz-Credential is AKID/DATE/REGION/SERVICE/aws4_request.
	if scope := strings.Split(q.Get("X-Amz-Credential"), "/"); len(scope) == 5 && scope[4] == "aws4_request" {
		in.Region, in.Service = scope[2], scope[3]
	}
	if t, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date")); err == nil {
		in.SignedAt = t
		if s, err := strconv.Atoi(q.Get("X-Amz-Expires")); err == nil {
			in.Expires = t.Add(time.Duration(s) * time.Second)
		}
	}
	return in, nil
}
