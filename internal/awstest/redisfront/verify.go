package redisfront

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/partition"
)

// Rejection reasons reported by [VerifyToken] and counted by [Front.Stats].
const (
	ReasonMalformed    = "malformed"     // not a URL without scheme, or a path other than "/"
	ReasonHost         = "host"          // signed for another cache name
	ReasonAction       = "action"        // Action is not exactly "connect"
	ReasonUser         = "user"          // User differs from the AUTH user
	ReasonResourceType = "resource-type" // ResourceType=ServerlessCache missing (serverless) or present (replication group)
	ReasonIAM          = "iam"           // the identity may not elasticache:Connect to the cache and user
	ReasonUnknownUser  = "unknown-user"  // no such (IAM-enabled) user on the cache
	ReasonPassword     = "password"      // wrong password of a password user
	// Signature-level failures are reported as "sigv4:" + the AWS error
	// code, e.g. "sigv4:SignatureDoesNotMatch", "sigv4:ExpiredToken".
)

// RejectError explains why a token was refused. It never holds the token.
type RejectError struct {
	Reason string
	Detail string
}

func (e *RejectError) Error() string {
	return "redisfront: token rejected (" + e.Reason + "): " + e.Detail
}

// Check is what an ElastiCache (or MemoryDB) node knows when it verifies an
// IAM authentication token.
type Check struct {
	// Service is the signing name: "elasticache" (default) or "memorydb".
	Service string
	// Region the token must be scoped to.
	Region string
	// Account owning the cache and the user (for the resource ARNs).
	Account string
	// CacheName is the replication group id or serverless cache name; the
	// token must be signed for it as its host.
	CacheName string
	// Serverless: the token must carry ResourceType=ServerlessCache, and IAM
	// is asked about the serverlesscache ARN instead of the replicationgroup
	// one.
	Serverless bool
	// MaxExpires caps X-Amz-Expires. Default 900 s.
	MaxExpires time.Duration
}

// CacheARN is the resource IAM must allow elasticache:Connect on for the
// cache: arn:aws:elasticache:REGION:ACCOUNT:replicationgroup:NAME, or
// …:serverlesscache:NAME (memorydb: arn:aws:memorydb:REGION:ACCOUNT:cluster/NAME).
func (c Check) CacheARN() string {
	if c.service() == "memorydb" {
		return fmt.Sprintf("arn:%s:memorydb:%s:%s:cluster/%s", partition.IDOf(c.Region), c.Region, c.Account, c.CacheName)
	}
	kind := "replicationgroup"
	if c.Serverless {
		kind = "serverlesscache"
	}
	return fmt.Sprintf("arn:%s:elasticache:%s:%s:%s:%s", partition.IDOf(c.Region), c.Region, c.Account, kind, c.CacheName)
}

// UserARN is the user resource: arn:aws:elasticache:REGION:ACCOUNT:user:USERID
// (memorydb: arn:aws:memorydb:REGION:ACCOUNT:user/NAME).
func (c Check) UserARN(userID string) string {
	if c.service() == "memorydb" {
		return fmt.Sprintf("arn:%s:memorydb:%s:%s:user/%s", partition.IDOf(c.Region), c.Region, c.Account, userID)
	}
	return fmt.Sprintf("arn:%s:elasticache:%s:%s:user:%s", partition.IDOf(c.Region), c.Region, c.Account, userID)
}

// Action is the IAM action checked: elasticache:Connect or memorydb:Connect.
func (c Check) Action() string { return c.service() + ":Connect" }

func (c Check) service() string {
	if c.Service == "" {
		return "elasticache"
	}
	return c.Service
}

func reject(reason, format string, a ...any) error {
	return &RejectError{Reason: reason, Detail: fmt.Sprintf(format, a...)}
}

// VerifyToken checks token, presented by AUTH/HELLO for user, the way
// ElastiCache does (per "Authenticating with IAM" in the ElastiCache user
// guide): it is a SigV4 presigned GET http://CACHENAME/?Action=connect&User=USER
// [&ResourceType=ServerlessCache] without the scheme, signed for the service
// and region with X-Amz-Expires at most 900 s, still valid, by credentials
// reg issued and that have not expired, and the identity's IAM policies
// allow elasticache:Connect on both the cache and the user. The signature
// is checked by sigv4.Registry.VerifyPresigned, written from the SigV4
// documentation, not from the SDK.
func VerifyToken(reg *sigv4.Registry, authz *iam.IAM, c Check, user, token string) (*sigv4.Result, error) {
	if token == "" || strings.HasPrefix(token, "http://") || strings.HasPrefix(token, "https://") || strings.ContainsAny(token, " \r\n\t") {
		return nil, reject(ReasonMalformed, "the token must be a presigned URL without its scheme")
	}
	u, err := url.Parse("http://" + token)
	if err != nil {
		return nil, reject(ReasonMalformed, "the token is not a URL")
	}
	if u.User != nil || u.Fragment != "" || u.RawQuery == "" {
		return nil, reject(ReasonMalformed, "the token is not a presigned URL")
	}
	if u.Host != c.CacheName {
		return nil, reject(ReasonHost, "the token is signed for %q, not for cache %q", u.Host, c.CacheName)
	}
	if u.Path != "/" {
		return nil, reject(ReasonMalformed, "the token's path must be \"/\"")
	}
	maxExp := c.MaxExpires
	if maxExp == 0 {
		maxExp = 900 * time.Second
	}
	res, err := reg.VerifyPresigned(u, sigv4.PresignOptions{
		Service:    c.service(),
		Region:     c.Region,
		Host:       c.CacheName,
		MaxExpires: maxExp,
	})
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, reject("sigv4:"+se.Code, "%s", se.Message)
		}
		return nil, reject("sigv4:Unknown", "%v", err)
	}
	q := res.Query
	if a := q["Action"]; len(a) != 1 || a[0] != "connect" {
		return nil, reject(ReasonAction, "Action must be \"connect\"")
	}
	if u := q["User"]; len(u) != 1 || u[0] != user {
		return nil, reject(ReasonUser, "the token is for another user than %q", user)
	}
	rt := q["ResourceType"]
	switch {
	case c.Serverless && (len(rt) != 1 || rt[0] != "ServerlessCache"):
		return nil, reject(ReasonResourceType, "a serverless cache needs ResourceType=ServerlessCache")
	case !c.Serverless && len(rt) != 0:
		return nil, reject(ReasonResourceType, "ResourceType=%s does not apply to replication group %q", strings.Join(rt, ","), c.CacheName)
	}
	role := res.Credentials.RoleARN
	for _, resource := range []string{c.CacheARN(), c.UserARN(user)} {
		if !authz.Authorize(role, c.Action(), resource) {
			return nil, reject(ReasonIAM, "%s is not authorized to perform %s on %s", res.Credentials.Arn, c.Action(), resource)
		}
	}
	return res, nil
}
