package rdsauth

import (
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/irsakit/irsakit/internal/partition"
)

// SplitEndpoint splits an RDS endpoint "host:port" (or "[IPv6]:port") into
// its host and port. A missing port is [ErrMissingPort]: tokens are signed
// for host:port, so the port cannot be guessed.
func SplitEndpoint(endpoint string) (host string, port uint16, err error) {
	if endpoint == "" {
		return "", 0, fmt.Errorf("%w: empty endpoint: want host:port, e.g. mydb.abc123.us-east-1.rds.amazonaws.com:5432", ErrInvalidEndpoint)
	}
	if strings.Contains(endpoint, "://") {
		return "", 0, fmt.Errorf("%w: %q: want host:port without a scheme or path", ErrInvalidEndpoint, endpoint)
	}
	if strings.ContainsAny(endpoint, "/?#@ \t\r\n\x00%") {
		return "", 0, fmt.Errorf("%w: %q: want host:port", ErrInvalidEndpoint, endpoint)
	}
	h, p, splitErr := net.SplitHostPort(endpoint)
	if splitErr != nil {
		var ae *net.AddrError
		if errors.As(splitErr, &ae) && ae.Err == "missing port in address" {
			if IsDSQLHost(endpoint) {
				return "", 0, fmt.Errorf("%w: %q is an Aurora DSQL endpoint: use NewDSQLTokenSource, which needs no port, or append :5432",
					ErrMissingPort, endpoint)
			}
			return "", 0, fmt.Errorf("%w: %q: RDS IAM tokens are signed for host:port; append the port, e.g. %q",
				ErrMissingPort, endpoint, net.JoinHostPort(strings.Trim(endpoint, "[]"), "5432"))
		}
		return "", 0, fmt.Errorf("%w: %q: want host:port", ErrInvalidEndpoint, endpoint)
	}
	if p == "" {
		return "", 0, fmt.Errorf("%w: %q: RDS IAM tokens are signed for host:port; append the port, e.g. %q",
			ErrMissingPort, endpoint, net.JoinHostPort(h, "5432"))
	}
	n, convErr := strconv.ParseUint(p, 10, 16)
	if convErr != nil || n == 0 || p[0] == '+' || (len(p) > 1 && p[0] == '0') {
		return "", 0, fmt.Errorf("%w: %q: port must be a number from 1 to 65535", ErrInvalidEndpoint, endpoint)
	}
	if err := checkHost(h); err != nil {
		return "", 0, fmt.Errorf("%w: %q: %s", ErrInvalidEndpoint, endpoint, err)
	}
	if strings.HasPrefix(endpoint, "[") != strings.Contains(h, ":") {
		return "", 0, fmt.Errorf("%w: %q: only IPv6 addresses go in brackets", ErrInvalidEndpoint, endpoint)
	}
	return h, uint16(n), nil
}

func checkHost(h string) error {
	if h == "" {
		return fmt.Errorf("empty host")
	}
	if len(h) > 253 {
		return fmt.Errorf("host name longer than 253 bytes")
	}
	if strings.Contains(h, ":") {
		if net.ParseIP(h) == nil {
			return fmt.Errorf("host %q is neither a name nor an IP address", h)
		}
		return nil
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') {
			return fmt.Errorf("host contains %q", c)
		}
	}
	return nil
}

// RegionFromHost derives the AWS region from an RDS endpoint name: an
// instance (NAME.RANDOM.REGION.rds.DNSSUFFIX), a cluster writer or reader
// (NAME.cluster-RANDOM…, NAME.cluster-ro-RANDOM…), a custom cluster
// endpoint (NAME.cluster-custom-RANDOM…) or an RDS Proxy endpoint
// (NAME.proxy-RANDOM…, NAME.endpoint.proxy-RANDOM…), in every partition the
// SDK knows (rds.amazonaws.com, rds.amazonaws.com.cn, rds.c2s.ic.gov,
// rds.sc2s.sgov.gov, rds.cloud.adc-e.uk, rds.csp.hci.ic.gov,
// rds.amazonaws.eu). The region must belong to the partition of the
// suffix. ok is false for any other name (an IP, a private DNS alias, a
// malformed name).
func RegionFromHost(host string) (region string, ok bool) {
	h := strings.ToLower(strings.TrimSuffix(host, "."))
	rest, candidates, ok := partition.ServiceHost(h, "rds")
	if !ok {
		return "", false
	}
	labels := strings.Split(rest, ".")
	// At least NAME.RANDOM.REGION.
	if len(labels) < 3 {
		return "", false
	}
	for _, l := range labels {
		if l == "" {
			return "", false
		}
	}
	region = labels[len(labels)-1]
	if _, ok := partition.RegionIn(region, candidates); !ok {
		return "", false
	}
	return region, true
}

// resolveRegion picks the signing region for host: the one in an RDS
// endpoint name (which an explicit region must agree with), else explicit,
// else fallback (the aws.Config region).
func resolveRegion(host, explicit, fallback string) (string, error) {
	if explicit != "" && !partition.ValidRegion(explicit) {
		return "", fmt.Errorf("%w: Options.Region %q is not a region name like us-east-1 (partitions: %s)", ErrInvalidRegion, explicit, partition.IDs())
	}
	if derived, ok := RegionFromHost(host); ok {
		if explicit != "" && explicit != derived {
			return "", fmt.Errorf("%w: %s is in %s but Options.Region is %s; drop Options.Region or fix the endpoint",
				ErrRegionMismatch, host, derived, explicit)
		}
		return derived, nil
	}
	if explicit != "" {
		return explicit, nil
	}
	if fallback != "" {
		if !partition.ValidRegion(fallback) {
			return "", fmt.Errorf("%w: the session's region %q is not a region name like us-east-1", ErrInvalidRegion, fallback)
		}
		return fallback, nil
	}
	return "", fmt.Errorf("%w: %s is not an RDS endpoint name the region can be read from; set Options.Region or the session's region (AWS_REGION)", ErrNoRegion, host)
}
