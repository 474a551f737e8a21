package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
	"github.com/irsakit/irsakit/rdsauth"
)

// RDSProbe connects to a PostgreSQL-compatible RDS/Aurora endpoint with
// an IAM token.
type RDSProbe struct {
	Endpoint string // host:port
	User     string
	// Database to connect to. Default "postgres".
	Database string
	// SSLMode as in libpq. Default "verify-full": the server's certificate
	// and name are verified against CAFile, else the system roots. The
	// connection is judged by rdsauth's rules, as the application's would
	// be: "disable", "allow" and "prefer" fail the check and the token is
	// withheld; "require" (TLS that checks no certificate, which rdsauth
	// refuses unless the application opts in) is a warning.
	SSLMode string
	// CAFile is the RDS CA bundle (global-bundle.pem, RDSCABundleURL).
	// Default: the system roots, which trust Aurora DSQL but not RDS.
	CAFile string
	// Region the token is signed for. Default: from the endpoint's name,
	// else the session's region.
	Region string
}

// RedisProbe connects to an ElastiCache (Redis OSS / Valkey) endpoint
// with an IAM token and runs PING.
type RedisProbe struct {
	Endpoint   string // host:port
	CacheName  string // replication group id or serverless cache name
	User       string // user id
	Serverless bool
	// NoTLS connects in plaintext (ElastiCache IAM needs in-transit
	// encryption: the check fails and the token is withheld).
	NoTLS bool
	// CAFile verifies the server's certificate. Default: system roots.
	CAFile string
	// Region the token is signed for. Default: the session's region.
	Region string
	// TokenFile, if set, holds a token to diagnose instead of minting one
	// (for example the one an application logged the claims of).
	TokenFile string
}

// S3Probe lists one key of a bucket.
type S3Probe struct {
	Bucket string
	Prefix string
}

// SecretProbe reads a secret (the value is never shown).
type SecretProbe struct {
	SecretID string
}

func tlsConfig(caFile, serverName string, verify bool) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12, ServerName: serverName}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tc.RootCAs = pool
	}
	tc.InsecureSkipVerify = !verify
	return tc, nil
}

// RDSCABundleURL is where the RDS CA bundle of the commercial regions is
// published (GovCloud (US) and the China regions publish their own).
const RDSCABundleURL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"

// caAdvice says how to verify host's certificate: Aurora DSQL's chain to
// public roots, RDS's to the RDS CA bundle.
func caAdvice(host string) string {
	if rdsauth.IsDSQLHost(host) {
		return "connect with sslmode=verify-full: Aurora DSQL's certificates chain to public roots the system trusts; check the image's CA certificates"
	}
	return "connect with sslmode=verify-full and the RDS CA bundle: curl -fsSLO " + RDSCABundleURL +
		" (GovCloud (US) and China regions: that partition's bundle) and pass it with --db-ca global-bundle.pem (psql: sslrootcert=global-bundle.pem)"
}

// tlsVerification says what the TLS of cc checks: Go's verification with
// the host name (verify-full), or pgx's chain-only verifier (verify-ca, and
// sslmode=require with sslrootcert, which libpq and pgx treat as
// verify-ca).
func tlsVerification(cc *pgx.ConnConfig) string {
	if cc.TLSConfig != nil && !cc.TLSConfig.InsecureSkipVerify {
		return "certificate and host name verified"
	}
	return "certificate chain verified, host name not checked"
}

func (s *state) checkRDS(ctx context.Context, p RDSProbe) Check {
	c := Check{Name: CheckRDS}
	host, port, err := authtoken.SplitRDSEndpoint(p.Endpoint)
	if err != nil {
		c.Status, c.Detail = Fail, err.Error()
		c.Cause = CauseRDSBadEndpoint
		if errors.Is(err, authtoken.ErrMissingPort) {
			c.Cause = CauseRDSNoPort
			c.Fix = fmt.Sprintf("use --db-endpoint %s (the cluster endpoint's port, normally 5432): a token signed for another host:port is refused with \"PAM authentication failed\"", net.JoinHostPort(p.Endpoint, "5432"))
		}
		return c
	}
	if p.User == "" {
		return Check{Name: CheckRDS, Status: Fail, Cause: CauseRDSBadEndpoint, Detail: "no database user", Fix: "pass --db-user"}
	}
	if p.Database == "" {
		p.Database = "postgres"
	}
	if p.SSLMode == "" {
		p.SSLMode = "verify-full"
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	dsn := fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s",
		host, port, quoteDSN(p.User), quoteDSN(p.Database), p.SSLMode)
	if p.CAFile != "" {
		dsn += " sslrootcert=" + quoteDSN(p.CAFile)
	}
	switch p.SSLMode {
	case "disable", "allow", "prefer":
		c.Status, c.Cause = Fail, CauseRDSNoTLS
		c.Detail = fmt.Sprintf("sslmode=%s: RDS IAM database authentication requires TLS; the token was withheld", p.SSLMode)
		c.Fix = caAdvice(host) + "; the irsakit library refuses connections that may go without TLS, and sslmode=require unless the application opts in to unverified TLS"
		cfg, err := pgconn.ParseConfig(dsn)
		if err == nil {
			cfg.Password = "irsactl-doctor-token-withheld"
			cfg.Fallbacks = nil
			s.pgDial(cfg)
			conn, err := pgconn.ConnectConfig(ctx, cfg)
			if err == nil {
				conn.Close(ctx)
				c.Detail += "; the server accepted a plaintext login without a token — it is not checking IAM tokens"
			} else {
				c.Detail += "; the server answered a plaintext login: " + pgError(err)
			}
		}
		return c
	}
	cc, err := pgx.ParseConfig(dsn)
	if err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseRDSBadEndpoint, err.Error()
		if p.CAFile != "" {
			c.Fix = "check --db-ca: it must be a readable PEM bundle (" + RDSCABundleURL + ")"
		}
		return c
	}
	cfgAWS, ok := s.config()
	if !ok {
		return skipNoCreds(CheckRDS)
	}
	region := p.Region
	if region == "" && authtoken.RDSRegion(host) == "" && !rdsauth.IsDSQLHost(host) {
		region = cfgAWS.Region
	}
	newSource := func(allowUnverified bool) (*rdsauth.TokenSource, error) {
		return rdsauth.NewTokenSource(p.Endpoint, p.User, cfgAWS.Credentials, func(o *rdsauth.Options) {
			o.Region = region
			o.AllowUnverifiedTLS = allowUnverified
			o.Logger = slog.New(slog.DiscardHandler)
		})
	}
	// The library judges the connection's TLS, as it would in the
	// application: plaintext and unverified TLS are refused before
	// anything is sent.
	src, err := newSource(false)
	if err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseRDSAuth, cliText(err.Error())
		return c
	}
	s.pgDial(&cc.Config)
	verified := tlsVerification(cc)
	unverified := false
	if err := rdsauth.BeforeConnect(src)(ctx, cc); err != nil {
		src.Close()
		if !errors.Is(err, rdsauth.ErrUnverifiedTLS) {
			c.Status, c.Cause, c.Detail = Fail, CauseRDSNoTLS, fmt.Sprintf("sslmode=%s: the token would not be protected by verified TLS", p.SSLMode)
			c.Fix = caAdvice(host)
			return c
		}
		// sslmode=require: what the operator asked for, reported as what it
		// is after the login.
		unverified = true
		if src, err = newSource(true); err != nil {
			c.Status, c.Cause, c.Detail = Fail, CauseRDSAuth, cliText(err.Error())
			return c
		}
		if cc, err = pgx.ParseConfig(dsn); err != nil {
			src.Close()
			c.Status, c.Cause, c.Detail = Fail, CauseRDSBadEndpoint, err.Error()
			return c
		}
		s.pgDial(&cc.Config)
		if err := rdsauth.BeforeConnect(src)(ctx, cc); err != nil {
			src.Close()
			c.Status, c.Cause, c.Detail = Fail, CauseRDSAuth, cliText(err.Error())
			return c
		}
	}
	defer func() {
		s.rep.Stats.RDS = rdsStats(src.Stats())
		src.Close()
	}()
	conn, err := pgx.ConnectConfig(ctx, cc)
	if err != nil {
		c.Status = Fail
		var pe *pgconn.PgError
		if errors.As(err, &pe) {
			c.Cause = CauseRDSAuth
			c.Detail = fmt.Sprintf("%s refused the IAM login of %s: %s", p.Endpoint, p.User, pgError(err))
			if rdsauth.IsDSQLHost(host) {
				c.Fix = fmt.Sprintf("check, in order: the role may dsql:DbConnect (dsql:DbConnectAdmin for admin) on the cluster (irsactl policy dsql --db-endpoint %s --account ACCOUNT); a role other than admin is tied to this IAM role in the database (AWS IAM GRANT %s TO 'ROLE_ARN')", host, p.User)
			} else {
				c.Fix = fmt.Sprintf("check, in order: the role may rds-db:connect on arn:aws:rds-db:%s:ACCOUNT:dbuser:RESOURCE_ID/%s (irsactl policy rds); the user exists with GRANT rds_iam TO %s; IAM authentication is enabled on the cluster; the token is signed for the host:port you dial and region %s", src.Region(), p.User, p.User, src.Region())
			}
			return c
		}
		if tf := tlsFailure(err); tf != "" {
			c.Cause = CauseRDSTLSUntrusted
			c.Detail = fmt.Sprintf("cannot connect to %s with sslmode=%s: %s; the token was not sent", p.Endpoint, p.SSLMode, tf)
			c.Fix = caAdvice(host) + ", and connect to the endpoint name its certificate carries (not an IP address or a private DNS alias)"
			return c
		}
		c.Cause = CauseRDSUnreachable
		why := netFailure(err, s.o.Timeout)
		if why == "" {
			why = err.Error()
		}
		c.Detail = fmt.Sprintf("cannot connect to %s: %s", p.Endpoint, why)
		c.Fix = "check the security group allows the pod to reach the cluster on its port"
		return c
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var user, version string
	if err := conn.QueryRow(ctx, "SELECT current_user, split_part(version(), ' ', 2)").Scan(&user, &version); err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseRDSAuth, "logged in but the query failed: "+pgError(err)
		return c
	}
	login := fmt.Sprintf("IAM login to %s/%s as %s", p.Endpoint, p.Database, user)
	if unverified {
		c.Status, c.Cause = Warn, CauseRDSUnverifiedTLS
		c.Detail = fmt.Sprintf("%s over TLS without certificate verification (sslmode=require), PostgreSQL %s: the server's certificate was not checked, so whoever can intercept the connection gets the token; the irsakit library refuses sslmode=require unless the application opts in to unverified TLS", login, version)
		c.Fix = caAdvice(host)
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("%s over TLS (sslmode=%s, %s), PostgreSQL %s", login, p.SSLMode, verified, version)
	return c
}

// pgDial routes the connection through Options.Dial, host names
// unresolved so the dialer sees what is contacted.
func (s *state) pgDial(cfg *pgconn.Config) {
	cfg.DialFunc = s.o.Dial
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
	cfg.ConnectTimeout = s.o.Timeout
}

func quoteDSN(s string) string {
	if s != "" && !strings.ContainsAny(s, " '\\") {
		return s
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func pgError(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return fmt.Sprintf("%s: %s (SQLSTATE %s)", pe.Severity, pe.Message, pe.Code)
	}
	return err.Error()
}

// scrub removes a token from a message, in case a driver echoed it.
func scrub(msg, tok string) string {
	if tok == "" {
		return msg
	}
	return strings.ReplaceAll(msg, tok, "[token]")
}

func (s *state) checkRedis(ctx context.Context, p RedisProbe) Check {
	c := Check{Name: CheckElastiCache}
	host, _, err := net.SplitHostPort(p.Endpoint)
	if err != nil || host == "" {
		c.Status, c.Cause = Fail, CauseRedisBadEndpoint
		c.Detail = fmt.Sprintf("endpoint %q: want host:port (the primary or configuration endpoint, port 6379)", p.Endpoint)
		return c
	}
	if p.CacheName == "" || p.User == "" {
		c.Status, c.Cause = Fail, CauseRedisBadEndpoint
		c.Detail = "need the cache name (replication group id or serverless cache name) and the user id"
		c.Fix = "pass --cache NAME --cache-user USER_ID"
		return c
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	opts := &redis.Options{Addr: p.Endpoint, Username: p.User, DialTimeout: s.o.Timeout, MaxRetries: -1, DisableIdentity: true, Protocol: 2}
	opts.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := s.o.Dial(ctx, network, addr)
		if err != nil || opts.TLSConfig == nil {
			return conn, err
		}
		tc := tls.Client(conn, opts.TLSConfig)
		if err := tc.HandshakeContext(ctx); err != nil {
			conn.Close()
			return nil, err
		}
		return tc, nil
	}
	if p.NoTLS {
		c.Status, c.Cause = Fail, CauseRedisNoTLS
		c.Detail = "plaintext connection: ElastiCache IAM authentication requires in-transit encryption; the token was withheld"
		c.Fix = "enable TLS in the client (redis-cli --tls --cacert FILE) and in-transit encryption on the cache"
		rc := redis.NewClient(opts)
		defer rc.Close()
		if err := rc.Ping(ctx).Err(); err != nil {
			c.Detail += "; the server answered a plaintext PING: " + err.Error()
		} else {
			c.Detail += "; the server answered PING without authentication — it is not an IAM-enabled cache"
		}
		return c
	}
	var tok string
	var info *authtoken.Info
	if p.TokenFile != "" {
		b, err := os.ReadFile(p.TokenFile)
		if err != nil {
			c.Status, c.Cause, c.Detail = Fail, CauseRedisWrongPass, "reading the token to check: "+err.Error()
			return c
		}
		tok = strings.TrimSpace(string(b))
		in, err := authtoken.Inspect(tok)
		if err != nil {
			c.Status, c.Cause, c.Detail = Fail, CauseRedisWrongPass, err.Error()
			return c
		}
		info = &in
	} else {
		cfgAWS, ok := s.config()
		if !ok {
			return skipNoCreds(CheckElastiCache)
		}
		region := p.Region
		if region == "" {
			region = cfgAWS.Region
		}
		src, err := authtoken.ElastiCacheSource(cfgAWS.Credentials, p.CacheName, p.User, region, p.Serverless)
		if err != nil {
			c.Status, c.Cause, c.Detail = Fail, CauseRedisWrongPass, cliText(err.Error())
			return c
		}
		defer func() {
			s.rep.Stats.ElastiCache = elastiCacheStats(src.Stats())
			src.Close()
		}()
		t, err := src.Token(ctx)
		if err != nil {
			c.Status, c.Cause, c.Detail = Fail, CauseRedisWrongPass, cliText(err.Error())
			return c
		}
		tok = t.Value()
	}
	tc, err := tlsConfig(p.CAFile, host, true)
	if err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseRedisBadEndpoint, "CA file: "+err.Error()
		return c
	}
	opts.TLSConfig = tc
	opts.Password = tok
	rc := redis.NewClient(opts)
	defer rc.Close()
	pong, err := rc.Ping(ctx).Result()
	if err == nil {
		c.Status = Pass
		c.Detail = fmt.Sprintf("IAM AUTH to %s (cache %s) as %s over TLS: PING → %s", p.Endpoint, p.CacheName, p.User, pong)
		return c
	}
	msg := scrub(err.Error(), tok)
	c.Status = Fail
	if !strings.Contains(msg, "WRONGPASS") {
		c.Cause = CauseRedisUnreachable
		if tf := tlsFailure(err); tf != "" {
			c.Detail = fmt.Sprintf("cannot talk to %s: %s", p.Endpoint, tf)
			c.Fix = "check that in-transit encryption is on (IAM needs it) and --cache-ca names the CA that signed the cache's certificate (default: the system roots, which trust ElastiCache)"
			return c
		}
		if nf := netFailure(err, s.o.Timeout); nf != "" {
			msg = nf
		}
		c.Detail = fmt.Sprintf("cannot talk to %s: %s", p.Endpoint, msg)
		c.Fix = "check the security group allows the pod to reach the cache on its port"
		return c
	}
	c.Detail = fmt.Sprintf("%s answered %s", p.Endpoint, msg)
	now := s.o.Now()
	switch {
	case info != nil && !info.Expires.IsZero() && !now.Before(info.Expires):
		c.Cause = CauseRedisTokenExpired
		c.Detail += fmt.Sprintf(": the token expired at %s (signed %s, valid 15 minutes)", info.Expires.Format("15:04:05Z07:00"), info.SignedAt.Format("15:04:05Z07:00"))
		c.Fix = "mint a token per connection attempt and re-authenticate live connections before they expire (the irsakit library does both); never store a token in configuration"
	case info != nil && info.User != p.User:
		c.Cause = CauseRedisWrongUser
		c.Detail += fmt.Sprintf(": the token was signed for user id %q but AUTH used %q", info.User, p.User)
		c.Fix = "sign the token for the same user id the client sends in AUTH (for IAM-enabled users the user id equals the user name)"
	case info != nil && !strings.EqualFold(info.Host, p.CacheName):
		c.Cause = CauseRedisWrongCache
		c.Detail += fmt.Sprintf(": the token was signed for %q, not cache %q", info.Host, p.CacheName)
		c.Fix = "sign the token for the replication group id / serverless cache name, not the endpoint host"
	default:
		c.Cause = CauseRedisWrongPass
		c.Detail += fmt.Sprintf(": a fresh token for user id %q on cache %q was refused", p.User, p.CacheName)
		c.Fix = fmt.Sprintf("check, in order: --cache-user is the ElastiCache user id (aws elasticache describe-users --user-id %s: authentication type iam, user id = user name, in the cache's user group); --cache is the replication group id (serverless: --serverless); the role may elasticache:Connect on the cache and the user (irsactl policy elasticache)", p.User)
	}
	return c
}

func apiCode(err error) (string, string) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode(), ae.ErrorMessage()
	}
	return "", err.Error()
}

func (s *state) checkS3(ctx context.Context, p S3Probe) Check {
	c := Check{Name: CheckS3}
	cfg, ok := s.config()
	if !ok {
		return skipNoCreds(CheckS3)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		// A custom endpoint (AWS_ENDPOINT_URL_S3) is usually a local server
		// without per-bucket DNS names.
		o.UsePathStyle = os.Getenv("AWS_ENDPOINT_URL_S3") != "" || os.Getenv("AWS_ENDPOINT_URL") != ""
	})
	in := &s3.ListObjectsV2Input{Bucket: aws.String(p.Bucket), MaxKeys: aws.Int32(1)}
	if p.Prefix != "" {
		in.Prefix = aws.String(p.Prefix)
	}
	out, err := client.ListObjectsV2(ctx, in)
	where := "s3://" + p.Bucket + "/" + p.Prefix
	if err != nil {
		code, msg := apiCode(err)
		c.Status = Fail
		c.Detail = fmt.Sprintf("ListObjectsV2 %s: %s %s", where, code, msg)
		if nf := netFailure(err, s.o.Timeout); code == "" && nf != "" {
			c.Cause = CauseS3Unreachable
			c.Detail = fmt.Sprintf("ListObjectsV2 %s: S3 unreachable: %s", where, nf)
			c.Fix = "allow egress to S3 (an S3 gateway VPC endpoint in private subnets); check AWS_ENDPOINT_URL_S3 if it is set"
			return c
		}
		switch code {
		case "AccessDenied":
			c.Cause = CauseS3Denied
			c.Fix = fmt.Sprintf("the role needs s3:ListBucket on arn:aws:s3:::%s (with an s3:prefix condition for %q) and object actions on its keys: irsactl policy s3 --bucket %s; check the bucket policy too", p.Bucket, p.Prefix, strings.TrimSuffix(p.Bucket+"/"+p.Prefix, "/"))
		case "NoSuchBucket":
			c.Cause = CauseS3NotFound
			c.Fix = "check the bucket name and region"
		default:
			c.Cause = CauseS3Failed
		}
		return c
	}
	c.Status = Pass
	c.Detail = fmt.Sprintf("ListObjectsV2 %s allowed (%d key(s) in the first page)", where, aws.ToInt32(out.KeyCount))
	return c
}

func (s *state) checkSecret(ctx context.Context, p SecretProbe) Check {
	c := Check{Name: CheckSecret}
	cfg, ok := s.config()
	if !ok {
		return skipNoCreds(CheckSecret)
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	out, err := secretsmanager.NewFromConfig(cfg).GetSecretValue(ctx, &secretsmanager.GetSecretValueInput{SecretId: aws.String(p.SecretID)})
	if err != nil {
		code, msg := apiCode(err)
		c.Status = Fail
		c.Detail = fmt.Sprintf("GetSecretValue %s: %s %s", p.SecretID, code, msg)
		if nf := netFailure(err, s.o.Timeout); code == "" && nf != "" {
			c.Cause = CauseSecretUnreachable
			c.Detail = fmt.Sprintf("GetSecretValue %s: Secrets Manager unreachable: %s", p.SecretID, nf)
			c.Fix = "allow egress to Secrets Manager (an interface VPC endpoint in private subnets); check AWS_ENDPOINT_URL_SECRETS_MANAGER if it is set"
			return c
		}
		switch code {
		case "AccessDeniedException":
			c.Cause = CauseSecretDenied
			c.Fix = "the role needs secretsmanager:GetSecretValue on the secret's ARN (NAME-?????? matches its random suffix) and kms:Decrypt if a customer key encrypts it: irsactl policy secrets --secret " + p.SecretID
		case "ResourceNotFoundException":
			c.Cause = CauseSecretNotFound
			c.Fix = "check the secret name and the region (secrets are regional)"
		default:
			c.Cause = CauseSecretFailed
		}
		return c
	}
	n := len(aws.ToString(out.SecretString)) + len(out.SecretBinary)
	c.Status = Pass
	c.Detail = fmt.Sprintf("GetSecretValue %s allowed: %d bytes, version %s %v (value not shown)", aws.ToString(out.ARN), n, aws.ToString(out.VersionId), out.VersionStages)
	return c
}
