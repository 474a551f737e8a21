package rdsauth

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/internal/partition"
)

// Aurora DSQL authentication.
const (
	// MaxDSQLTokenLifetime is the longest Options.ExpiresIn Aurora DSQL
	// accepts.
	MaxDSQLTokenLifetime = 7 * 24 * time.Hour

	// dsqlSigningName is the SigV4 service name of DSQL tokens.
	dsqlSigningName = "dsql"
	// dsqlAdmin is the role that connects with DbConnectAdmin.
	dsqlAdmin = "admin"
	// dsqlPort is the port of every DSQL cluster endpoint.
	dsqlPort = 5432
	// dsqlSuffix ends every DSQL cluster endpoint name.
	dsqlSuffix = ".on.aws"
)

// DSQLClusterFromHost reads the cluster identifier and region from an
// Aurora DSQL cluster endpoint name, CLUSTERID.dsql.REGION.on.aws (a
// trailing dot and upper case are accepted). ok is false for any other
// name, RDS endpoints included.
func DSQLClusterFromHost(host string) (clusterID, region string, ok bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	rest, found := strings.CutSuffix(h, dsqlSuffix)
	if !found {
		return "", "", false
	}
	labels := strings.Split(rest, ".")
	if len(labels) != 3 || labels[1] != "dsql" || !partition.ValidRegion(labels[2]) || !validClusterID(labels[0]) {
		return "", "", false
	}
	return labels[0], labels[2], true
}

// IsDSQLHost reports whether host is named like an Aurora DSQL cluster
// endpoint (see DSQLClusterFromHost).
func IsDSQLHost(host string) bool {
	_, _, ok := DSQLClusterFromHost(host)
	return ok
}

func validClusterID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// NewDSQLTokenSource returns a source of Aurora DSQL tokens for the
// database role user at endpoint, the cluster endpoint
// (CLUSTERID.dsql.REGION.on.aws, with or without ":5432"), signed with
// creds. The role admin gets DbConnectAdmin tokens, every other role
// DbConnect tokens. Tokens are cached, refreshed and invalidated exactly as
// RDS tokens are; Options.ExpiresIn sets their lifetime (default 15
// minutes, at most MaxDSQLTokenLifetime). The region comes from the
// endpoint name, else Options.Region.
func NewDSQLTokenSource(endpoint, user string, creds aws.CredentialsProvider, optFns ...func(*Options)) (*TokenSource, error) {
	host, port := endpoint, uint16(dsqlPort)
	bad := fmt.Errorf("%w: %q: want the cluster endpoint, e.g. abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", ErrInvalidEndpoint, endpoint)
	if strings.ContainsAny(endpoint, "/?#@ \t\r\n") {
		return nil, bad
	}
	if h, p, err := net.SplitHostPort(endpoint); err == nil {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("%w: %q: the port must be a number from 1 to 65535 (Aurora DSQL listens on 5432)", ErrInvalidEndpoint, endpoint)
		}
		host, port = h, uint16(n)
	}
	if host == "" || strings.Contains(host, ":") && net.ParseIP(host) == nil {
		return nil, bad
	}
	dsql := func(o *Options) { o.DSQL = true }
	return newTokenSource(host, port, user, creds, append(append([]func(*Options){}, optFns...), dsql)...)
}

// isDSQL reports whether host's tokens are DSQL tokens.
func (s *TokenSource) isDSQL(host string) bool { return s.opts.DSQL || IsDSQLHost(host) }

// regionFor picks the signing region of host's tokens and checks the
// options that depend on the kind of token.
func (s *TokenSource) regionFor(host string) (string, error) {
	maxLife, kind := TokenLifetime, "RDS"
	if s.isDSQL(host) {
		maxLife, kind = MaxDSQLTokenLifetime, "Aurora DSQL"
	}
	if e := s.opts.ExpiresIn; e < 0 || e > maxLife {
		return "", fmt.Errorf("rdsauth: Options.ExpiresIn %v: %s accepts tokens valid for at most %v; use a duration up to that, or 0 for 15 minutes",
			e, kind, maxLife)
	}
	if e := s.opts.ExpiresIn; e != 0 && e <= s.opts.Margin {
		return "", fmt.Errorf("rdsauth: Options.ExpiresIn %v is not longer than Options.Margin %v, so no token could be handed out; lengthen it", e, s.opts.Margin)
	}
	if !s.isDSQL(host) {
		return resolveRegion(host, s.opts.Region, s.opts.fallbackRegion)
	}
	if s.opts.Region != "" && !partition.ValidRegion(s.opts.Region) {
		return "", fmt.Errorf("%w: Options.Region %q is not a region name like us-east-1 (partitions: %s)", ErrInvalidRegion, s.opts.Region, partition.IDs())
	}
	if _, derived, ok := DSQLClusterFromHost(host); ok {
		if s.opts.Region != "" && s.opts.Region != derived {
			return "", fmt.Errorf("%w: %s is in %s but Options.Region is %s; drop Options.Region or fix the endpoint", ErrRegionMismatch, host, derived, s.opts.Region)
		}
		return derived, nil
	}
	if s.opts.Region != "" {
		return s.opts.Region, nil
	}
	if f := s.opts.fallbackRegion; f != "" {
		if !partition.ValidRegion(f) {
			return "", fmt.Errorf("%w: the session's region %q is not a region name like us-east-1", ErrInvalidRegion, f)
		}
		return f, nil
	}
	return "", fmt.Errorf("%w: %s is not an Aurora DSQL cluster endpoint name (CLUSTERID.dsql.REGION.on.aws) the region can be read from; set Options.Region or the session's region (AWS_REGION)", ErrNoRegion, host)
}

// tokenRequest is what a token for k is signed as: the service, the host
// it names, its query and its lifetime.
func (s *TokenSource) tokenRequest(k cacheKey) (service, host string, query url.Values, lifetime time.Duration) {
	lifetime = TokenLifetime
	if s.opts.ExpiresIn > 0 {
		lifetime = s.opts.ExpiresIn
	}
	if !s.isDSQL(k.host) {
		return signingName, joinHostPort(k.host, k.port), url.Values{"Action": {"connect"}, "DBUser": {k.user}}, lifetime
	}
	action := "DbConnect"
	if k.user == dsqlAdmin {
		action = "DbConnectAdmin"
	}
	// A DSQL token names the endpoint without its port.
	return dsqlSigningName, k.host, url.Values{"Action": {action}}, lifetime
}
