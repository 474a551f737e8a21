// Package secrets is a cache of AWS Secrets Manager secrets for programs
// that read them on every request or every new database connection.
//
// A [Cache] answers reads of a cached secret from memory without locking or
// allocating, fetches a secret at most once however many goroutines miss it
// at the same time, refreshes a value after its TTL (default one hour), and
// when Secrets Manager cannot be reached keeps serving the last good value
// for a bounded time ([Options.MaxStaleness]) while reporting the failure.
// It holds at most [Options.MaxEntries] secret versions, evicting the least
// recently read. Optionally it refreshes in the background and tells
// [Cache.Watch] callbacks about rotations. [Cache.Refresh] reads a secret
// again at once (for a value a server refused) and [Cache.Invalidate] drops
// one. [Cache.Stats] tells operators how often the cache calls Secrets
// Manager, whether calls fail and whether it served values past their TTL;
// failures and the recovery after them are logged through [Options.Logger].
// It is built on the same cache mechanism as irsakit's token sources, and
// imports no database driver.
//
// Secret values never appear in errors or logs: [Value] and
// [RDSCredentials] print redacted under fmt, slog and encoding/json.
//
// # Usage
//
// Build the cache on the pod's IRSA session (or any aws.Config with a
// region), once per process, and close it on shutdown:
//
//	sess, err := irsa.Load(ctx)
//	...
//	cache, err := secrets.New(sess.Config())
//	...
//	defer cache.Close()
//
//	apiKey, err := cache.String(ctx, "prod/app/api-key")
//	old, err := cache.String(ctx, "prod/app/api-key", secrets.WithVersionStage("AWSPREVIOUS"))
//	cert, err := cache.Bytes(ctx, "arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/tls-AbCdEf")
//
//	type Config struct{ Token string `json:"token"` }
//	conf, err := secrets.JSON[Config](ctx, cache, "prod/app/config")
//
// A database secret in the RDS layout (username, password, host, port,
// dbname, engine) decodes into [RDSCredentials]. The package
// github.com/irsakit/irsakit/rdsauth/secretpassword applies it to every new
// pgx connection, so a pool follows rotations:
//
//	poolCfg, err := pgxpool.ParseConfig("sslmode=verify-full sslrootcert=/etc/rds/global-bundle.pem")
//	poolCfg.BeforeConnect = secretpassword.BeforeConnect(cache, "prod/app/db")
//	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
//
// Secrets are named by name, full ARN or partial ARN (the ARN without the
// six random characters); each spelling is cached separately.
//
// # Partitions
//
// Every partition the AWS SDK knows is accepted wherever a region or a policy ARN appears:
// aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
// aws-eusc. [Policy] takes the partition from the region or PolicyOptions.Partition,
// and checks given secret and KMS key ARNs belong to it.
//
// # Errors
//
// Reads return an *[Error] naming the secret (never its value). Test it
// with errors.Is against [ErrNotFound] (the secret, version or stage does
// not exist), [ErrAccessDenied] (IAM refused; see below), [ErrStale]
// (refreshes have failed for longer than MaxStaleness) and [ErrBinary]
// (String or JSON on a binary secret); [ErrClosed] after [Cache.Close].
// The SDK's error stays reachable with errors.As, e.g.
// *types.ResourceNotFoundException, *types.DecryptionFailure or any
// smithy.APIError. Content that does not decode gives a *[DecodeError],
// whose message does not quote the content.
//
// A failed refresh that is hidden from readers because a stale value was
// served is reported to [Options.OnError] and [Options.Logger] (at Warn,
// with a short error class such as "throttled" or "not-found"), and
// counted in [Stats].
//
// # IAM permissions
//
// The role needs secretsmanager:GetSecretValue on each secret read (and
// kms:Decrypt on the secret's KMS key when it is a customer-managed key).
// [Policy] generates the policy:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Sid": "ReadSecrets",
//	    "Effect": "Allow",
//	    "Action": ["secretsmanager:GetSecretValue"],
//	    "Resource": ["arn:aws:secretsmanager:eu-west-1:111122223333:secret:prod/app/db-??????"]
//	  }]
//	}
//
// The "-??????" suffix matches the six characters Secrets Manager appends
// to every secret ARN, and nothing longer.
package secrets
