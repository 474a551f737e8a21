// Package secretpassword connects pgx to PostgreSQL (RDS, Aurora) with a
// database password kept in AWS Secrets Manager, and follows its rotation.
//
// The secret holds the RDS layout ({"username", "password", "host", "port",
// "dbname", "engine"}, see secrets.RDSCredentials); [BeforeConnect] reads its
// AWSCURRENT version from a secrets.Cache for every new connection, so a
// connection never waits for Secrets Manager while the cached value is
// fresh. It lives beside rdsauth, not in secrets, so that importing secrets
// compiles no database driver.
//
// # Usage
//
//	cache, err := secrets.New(sess.Config())
//	...
//	poolCfg, err := pgxpool.ParseConfig("sslmode=verify-full sslrootcert=/etc/rds/global-bundle.pem")
//	poolCfg.BeforeConnect = secretpassword.BeforeConnect(cache, "prod/app/db")
//	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
//
// With database/sql:
//
//	connCfg, err := pgx.ParseConfig("sslmode=verify-full sslrootcert=/etc/rds/global-bundle.pem")
//	db := stdlib.OpenDB(*connCfg, stdlib.OptionBeforeConnect(secretpassword.BeforeConnect(cache, "prod/app/db")))
//
// # Rotation
//
// Secrets Manager rotates a password by storing the new version as
// AWSPENDING, changing it in the database, then moving AWSCURRENT to it.
// Connections that are already open are not affected. A new connection made
// with a cached password the server no longer accepts is refused with
// SQLSTATE 28P01 (invalid_password); the hook then refreshes the secret at
// once — one Secrets Manager call however many connections were refused
// together — and, when AWSCURRENT has moved to a new version, the same
// connect logs in to the same server once more with it. So after a rotation
// the first new connection succeeds, at the cost of one refused login and
// one refresh, and no application retry is needed.
//
// pgx (v5) ends a connect at 28P01 without trying its remaining
// configurations, and the server closes a session whose login it refused,
// so the retry is an extra configuration: [BeforeConnect] adds one after
// each host of the connection (after each TLS variant for sslmode=prefer
// or allow). It dials only when the attempt before it was refused and the
// refresh found a new version; otherwise it ends at once without dialling,
// so a connection that is not refused, or fails for another reason (server
// down, TLS refused, 3D000, 28000), dials exactly as often as pgx alone
// would. The retry goes to the server that refused; a host or database the
// new version names takes effect from the next connection. A connect
// retries at most once.
//
// AWSPENDING is never used: until AWSCURRENT moves, the current password is
// the one the database should accept. Between the database's change and
// AWSCURRENT's move (a rotation function between setSecret and
// finishSecret), a new connection is refused, finds no new version and
// fails with 28P01; each such connect costs at most one refresh and no
// retry.
//
// # Errors
//
// BeforeConnect returns the cache's errors (a *secrets.Error naming the
// secret, never its value) and [Apply]'s, which name the field at fault.
//
// A refused login stays the server's *pgconn.PgError (errors.As; Code
// 28P01), its message extended with the secret's name and the version
// refused, and whether a newer one was tried. When every attempt of a
// connect fails, pgx reports each attempt's error: a retry attempt that
// was not needed reads "secretpassword: retry skipped".
//
// # IAM permissions
//
// secretsmanager:GetSecretValue on the secret (see secrets.Policy), and
// kms:Decrypt on its key when that is a customer-managed key.
package secretpassword
