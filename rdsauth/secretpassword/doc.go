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
// # Rotation
//
// Secrets Manager rotates a password by storing the new version as
// AWSPENDING, changing it in the database, then moving AWSCURRENT to it.
// Connections that are already open are not affected. A new connection made
// with a cached password the server no longer accepts is refused with
// SQLSTATE 28P01 (invalid_password); the hook then refreshes the secret at
// once — once per refused version, however many connections were refused
// together — so the next connection uses the new AWSCURRENT password.
//
// The connection that was refused fails: pgx cannot try the same server
// again within one connect. pgconn (v5.13) ends a connect at the first
// 28P01 without trying the remaining fallback configurations (as libpq
// does), PostgreSQL closes the session after a failed authentication, and
// pgxpool calls BeforeConnect and pgx.ConnectConfig once per new connection
// and returns their error from Acquire without retrying. So the retry is the
// next connection: the refresh completes before the refused connect returns,
// and the next Acquire succeeds. Applications that retry a failed Acquire
// once (or set a pool MinConns so that background connects meet the
// rotation first) see no error. AWSPENDING is never used: until AWSCURRENT
// moves, the current password is the one the database should accept.
//
// # Errors
//
// BeforeConnect returns the cache's errors (a *secrets.Error naming the
// secret, never its value) and [Apply]'s, which name the field at fault.
//
// # IAM permissions
//
// secretsmanager:GetSecretValue on the secret (see secrets.Policy), and
// kms:Decrypt on its key when that is a customer-managed key.
package secretpassword
