// Package rdsauth connects to Amazon RDS, Aurora PostgreSQL and Aurora DSQL
// with IAM database authentication: it mints the SigV4-presigned tokens
// they accept as passwords, caches them, and hands them to pgx v5 pools
// and database/sql through pgx's own hooks.
//
// A token is valid for 15 minutes (an Aurora DSQL token up to a week, see
// [Options.ExpiresIn]) and only as long as the credentials that signed it. A [TokenSource] caches one token per (host, port, user,
// region) and reuses it until the earlier of those two ends, minus
// [Options.Margin]; it refreshes early with jitter, mints once however many
// connections open at once, and keeps serving a still-valid token if a
// refresh fails. A cache hit takes no lock and allocates nothing.
//
// # Usage
//
// With a pgx pool (session is an *irsa.Session, or use any aws.Config):
//
//	pool, err := rdsauth.NewPool(ctx,
//		"host=mydb.abc123xyz.us-east-1.rds.amazonaws.com port=5432 user=app dbname=app sslmode=verify-full",
//		session.Config(),
//		func(o *rdsauth.Options) { o.RootCAFile = "/etc/rds/global-bundle.pem" })
//
// To keep building the pool yourself, call [ConfigurePool] on a
// pgxpool.Config, or set pgxpool.Config.BeforeConnect to [BeforeConnect]
// of a [TokenSource]. For database/sql, [OpenDB] does the same through
// pgx/v5/stdlib. For another driver, [TokenSource.Token] returns the
// password; [Token.Value] is the string to send.
//
// Each connection attempt gets the token of the host:port it dials, so a
// multi-host connection string ("host=a,b port=5432,5432") or a failover
// target works. The database user must exist with the rds_iam role
// (GRANT rds_iam TO app).
//
// # Aurora DSQL
//
// The same functions connect to an Aurora DSQL cluster: a host named like
// a cluster endpoint (CLUSTERID.dsql.REGION.on.aws) gets DSQL tokens
// (service dsql, Action DbConnectAdmin for the admin role and DbConnect
// for a custom role, signed for the host without its port), cached exactly
// like RDS tokens. DSQL's certificates chain to public roots, so
// sslmode=verify-full needs no sslrootcert:
//
//	pool, err := rdsauth.NewPool(ctx,
//		"host=abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws user=admin dbname=postgres sslmode=verify-full",
//		session.Config())
//
// [NewDSQLTokenSource] returns a token source for a cluster endpoint
// (the port is optional); [Options.DSQL] makes every host's tokens DSQL
// tokens when the name does not tell; [Options.ExpiresIn] lengthens the
// tokens' 15 minutes up to a week ([MaxDSQLTokenLifetime]), though never
// past the signing credentials' expiry. [DSQLPolicy] writes the IAM
// policy.
//
// # Tunnels
//
// To reach the database through a kubectl port-forward, an SSH tunnel, a
// PrivateLink or NLB endpoint or a local proxy, keep the endpoint in the
// connection string and set [Options.DialAddress] to the tunnel's
// host:port: tokens stay signed for the endpoint and verify-full still
// checks its certificate name, while the TCP connection goes to the
// tunnel.
//
//	pool, err := rdsauth.NewPool(ctx,
//		"host=mydb.abc123xyz.us-east-1.rds.amazonaws.com port=5432 user=app sslmode=verify-full",
//		session.Config(),
//		func(o *rdsauth.Options) {
//			o.RootCAFile = "/etc/rds/global-bundle.pem"
//			o.DialAddress = "127.0.0.1:15432" // kubectl port-forward svc/rds-tunnel 15432:5432
//		})
//
// A token is a bearer credential, so it only travels over TLS that
// verifies the server: sslmode=verify-full (or verify-ca) with the RDS CA
// bundle as sslrootcert, or [Options.RootCAFile], which turns on
// verify-full for every host. The bundle of the commercial regions is
// https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem; AWS
// GovCloud (US) has
// https://truststore.pki.us-gov-west-1.rds.amazonaws.com/global/global-bundle.pem
// and the China regions
// https://rds-truststore.s3.cn-north-1.amazonaws.com.cn/global/global-bundle.pem.
// sslmode=require (TLS that accepts any certificate) is refused with
// [ErrUnverifiedTLS] unless [Options.AllowUnverifiedTLS]; disable, allow
// and prefer (the libpq default) with [ErrInsecureTransport] unless
// [Options.AllowInsecure].
//
// Pools get a [Options.MaxConnLifetime] of 10 minutes by default;
// established connections are not affected by a token's expiry. A query
// whose context is cancelled is cancelled on the server: pgx's cancel
// request passes the hook untouched.
//
// # Partitions
//
// Every partition the AWS SDK knows is accepted wherever an endpoint name, a region or a policy ARN appears:
// aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
// aws-eusc. [RegionFromHost] reads the region from rds.DNSSUFFIX of each partition
// (rds.amazonaws.com.cn, rds.c2s.ic.gov, rds.amazonaws.eu, …) and requires
// it to belong to that partition; [Policy] and [DSQLPolicy] take the
// partition from the region or PolicyOptions.Partition.
//
// # Errors
//
// Configuration mistakes fail early with sentinels to test with errors.Is:
// [ErrMissingPort] (the classic cause of "PAM authentication failed": a
// token signed for the host without its port), [ErrInvalidEndpoint],
// [ErrNoRegion], [ErrRegionMismatch], [ErrInvalidRegion],
// [ErrInsecureTransport], [ErrUnverifiedTLS], [ErrNoCredentials], [ErrInvalidUser],
// [ErrInvalidPolicyInput]. A token DSQL refuses appears as SQLSTATE 28P01,
// "IAM authentication failed for user"; the token is invalidated and the
// next connect mints a new one. At run time [ErrCredentialsExpired] means the
// credentials provider handed out expired credentials, and credential
// errors from the SDK (smithy.APIError) stay reachable with errors.As.
//
// A refused token appears as a *pgconn.PgError with SQLSTATE 28000 and
// "PAM authentication failed for user". The hook then invalidates the
// token and tries that host once more with a freshly minted one, within
// the same connect; it never loops. Errors and log records never contain a
// token: [Token] prints redacted with fmt and slog.
//
// # IAM permissions
//
// The role needs rds-db:connect on the database user:
//
//	arn:aws:rds-db:REGION:ACCOUNT:dbuser:DbiResourceId/USER
//
// for an instance (DbiResourceId looks like db-ABCDEFGHIJKLMNOPQRSTUVWXY0),
// or the cluster resource id (cluster-…) for Aurora, or the proxy's id
// (prx-…) for RDS Proxy. [Policy] writes that policy.
//
// For Aurora DSQL the role needs dsql:DbConnectAdmin (to connect as admin)
// or dsql:DbConnect (as a custom role) on the cluster:
//
//	arn:aws:dsql:REGION:ACCOUNT:cluster/CLUSTERID
//
// [DSQLPolicy] writes it. A custom role must also be tied to the IAM role
// inside the database: AWS IAM GRANT app TO 'arn:aws:iam::ACCOUNT:role/ROLE'.
//
// Minting needs no API
// call: tokens are signed locally, so the only AWS traffic is the
// credentials provider's (one STS call per credential lifetime with IRSA).
package rdsauth
