package rdsauth

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/internal/partition"
)

// The RDS certificate bundles (root and intermediate CAs of every region of
// a partition), for sslrootcert or Options.RootCAFile.
const (
	rdsCABundleURL      = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"
	rdsCABundleURLGov   = "https://truststore.pki.us-gov-west-1.rds.amazonaws.com/global/global-bundle.pem"
	rdsCABundleURLChina = "https://rds-truststore.s3.cn-north-1.amazonaws.com.cn/global/global-bundle.pem"
)

// caBundleURL is where the RDS CA bundle for host's partition is
// published (the commercial one when the name does not tell).
func caBundleURL(host string) string {
	region, ok := RegionFromHost(host)
	if !ok {
		return rdsCABundleURL
	}
	p, _ := partition.ForRegion(region)
	switch p.ID {
	case "aws-us-gov":
		return rdsCABundleURLGov
	case "aws-cn":
		return rdsCABundleURLChina
	}
	return rdsCABundleURL
}

// verifiedTLS reports whether c checks the server's certificate: Go's own
// verification (sslmode=verify-full, or any tls.Config without
// InsecureSkipVerify), or a verifier of the caller's (pgx's verify-ca, and
// sslmode=require with sslrootcert, which libpq and pgx treat as
// verify-ca).
func verifiedTLS(c *tls.Config) bool {
	if c == nil {
		return false
	}
	return !c.InsecureSkipVerify || c.VerifyPeerCertificate != nil || c.VerifyConnection != nil
}

// checkTLS refuses targets a token could leave on without TLS (unless
// Options.AllowInsecure) or over TLS that accepts any certificate (unless
// Options.AllowUnverifiedTLS). Plaintext is reported first: it is the worse.
func checkTLS(targets []target, o Options) error {
	if o.AllowInsecure {
		return nil
	}
	for _, t := range targets {
		if t.tls == nil && !isUnixSocket(t.host) {
			return fmt.Errorf("%w: the connection string lets %s be reached without TLS (sslmode disable, allow or prefer, the libpq default); "+
				"%s, or set Options.AllowInsecure",
				ErrInsecureTransport, joinHostPort(t.host, t.port), verifyAdvice(t.host, o))
		}
	}
	if o.AllowUnverifiedTLS {
		return nil
	}
	for _, t := range targets {
		if t.tls != nil && !verifiedTLS(t.tls) && !isUnixSocket(t.host) {
			return fmt.Errorf("%w: the connection string reaches %s over TLS without checking the server's certificate (sslmode=require, "+
				"or a tls.Config with InsecureSkipVerify): whoever can intercept the connection would get the token, a password for 15 minutes; "+
				"%s, or set Options.AllowUnverifiedTLS to accept that",
				ErrUnverifiedTLS, joinHostPort(t.host, t.port), verifyAdvice(t.host, o))
		}
	}
	return nil
}

// verifyAdvice says how to verify host's certificate.
func verifyAdvice(host string, o Options) string {
	if o.DSQL || IsDSQLHost(host) {
		return "use sslmode=verify-full (Aurora DSQL's certificates chain to public roots the system trusts; no sslrootcert needed)"
	}
	return "use sslmode=verify-full with sslrootcert=/path/to/global-bundle.pem or Options.RootCAFile " +
		"(the RDS CA bundle, from " + caBundleURL(host) + ")"
}

// verifyFull gives every host a verify-full TLS configuration against the
// bundle in file, dropping the plaintext attempts sslmode=prefer adds.
func verifyFull(cc *pgx.ConnConfig, file string) error {
	pem, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("rdsauth: reading Options.RootCAFile: %w", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(pem) {
		return fmt.Errorf("rdsauth: Options.RootCAFile %s holds no PEM certificate; download the RDS CA bundle from %s", file, caBundleURL(cc.Host))
	}
	mk := func(host string) *tls.Config {
		if isUnixSocket(host) {
			return nil
		}
		return &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12}
	}
	type hp struct {
		h string
		p uint16
	}
	seen := map[hp]bool{{cc.Host, cc.Port}: true}
	cc.TLSConfig = mk(cc.Host)
	var fbs []*pgconn.FallbackConfig
	for _, fb := range cc.Fallbacks {
		if seen[hp{fb.Host, fb.Port}] {
			continue
		}
		seen[hp{fb.Host, fb.Port}] = true
		fbs = append(fbs, &pgconn.FallbackConfig{Host: fb.Host, Port: fb.Port, TLSConfig: mk(fb.Host)})
	}
	cc.Fallbacks = fbs
	return nil
}
