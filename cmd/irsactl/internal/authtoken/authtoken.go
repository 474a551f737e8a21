// Package authtoken mints the RDS and ElastiCache IAM authentication tokens
// irsactl prints and doctor presents, with rdsauth and elasticacheauth, and
// decodes tokens for diagnosis.
package authtoken

import (
	"context"
	"errors"
	"fmt"
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

// ElastiCache mints an ElastiCache IAM token for userID on the replication
// group or serverless cache cacheName with elasticacheauth.
func ElastiCache(ctx context.Context, creds aws.CredentialsProvider, cacheName, userID, region string, serverless bool) (string, error) {
	src, err := elasticacheauth.NewTokenSource(cacheName, userID, creds, func(o *elasticacheauth.Options) {
		o.Region = region
		o.Serverless = serverless
	})
	if err != nil {
		if strings.Contains(cacheName, ".") {
			return "", fmt.Errorf("%w (the cache name is the replication group id or serverless cache name, not the endpoint host)", err)
		}
		return "", err
	}
	defer src.Close()
	tok, err := src.Token(ctx)
	if err != nil {
		return "", err
	}
	return tok.Value(), nil
}

// Info is what a token says about itself (no secret).
type Info struct {
	Host     string
	Action   string
	User     string // User (ElastiCache) or DBUser (RDS)
	Resource string // ResourceType
	SignedAt time.Time
	Expires  time.Time
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
	if t, err := time.Parse("20060102T150405Z", q.Get("X-Amz-Date")); err == nil {
		in.SignedAt = t
		if s, err := strconv.Atoi(q.Get("X-Amz-Expires")); err == nil {
			in.Expires = t.Add(time.Duration(s) * time.Second)
		}
	}
	return in, nil
}
