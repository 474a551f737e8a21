// Package elasticacheauth connects go-redis v9 to Amazon ElastiCache
// (Valkey / Redis OSS 7+) and MemoryDB with IAM authentication: it mints
// the SigV4-presigned tokens ElastiCache accepts as AUTH/HELLO passwords,
// caches them, and re-authenticates live connections before ElastiCache
// closes them 12 hours after their last authentication.
//
// A token is a SigV4 presigned GET http://CACHENAME/?Action=connect&User=USERID
// (plus ResourceType=ServerlessCache for serverless caches) signed for the
// service elasticache (memorydb for MemoryDB) and the cache's region with
// X-Amz-Expires=900, without its "http://". CACHENAME is the replication
// group id or serverless cache name, not the endpoint host;
// [ParseEndpoint] derives it from an endpoint name.
//
// # Usage
//
// With a session from package irsa (or any aws.Config):
//
//	rdb, err := elasticacheauth.NewClient(ctx,
//		"master.orders.abc123.use1.cache.amazonaws.com:6379", "", "app-user",
//		session.Config())
//	if err != nil { ... }
//	defer rdb.Close()
//	err = rdb.Set(ctx, "k", "v", 0).Err()
//
// [NewClient] (cluster mode disabled) and [NewClusterClient] (configuration
// endpoints and serverless caches) derive the cache name, region and
// serverless flag from the endpoint name, use verified TLS 1.2 or later,
// authenticate as the user id, push a current token to every live
// connection every 15 minutes through a [StreamingCredentialsProvider], and
// drop a token the server refused with WRONGPASS so the next connection
// attempt mints a fresh one ([InvalidateOnWrongPass]).
//
// A token is a bearer credential, so its TLS cannot be downgraded by
// accident: a TLS configuration that skips certificate verification or
// allows TLS below 1.2 — in ClientOptions.TLSConfig or left by
// ClientOptions.Redis / Cluster — fails with [ErrInsecureTransport], and a
// custom go-redis Dialer's connections get verified TLS too. Only
// ClientOptions.DisableTLS (plaintext, for local servers) and
// ClientOptions.AllowInsecureTLS opt out. ElastiCache's certificates verify
// with the system roots.
//
// [Client] and [ClusterClient] are redis.UniversalClient values with every
// command of redis.Cmdable. They do not hand out their go-redis clients:
// with a StreamingCredentialsProvider, go-redis v9.23 panics when Conn or
// Watch opens a new connection, so Conn, Watch and AutoPipeline run on a
// second client that authenticates each connection once (same token
// source) and replaces it after ClientOptions.MaxConnLifetime.
//
// To configure go-redis yourself, hand it the hook types it defines (and
// avoid Conn and Watch on a client with a StreamingCredentialsProvider):
//
//	src, err := elasticacheauth.NewTokenSource("orders", "app-user", cfg.Credentials,
//		func(o *elasticacheauth.Options) { o.Region = "us-east-1" })
//	scp := elasticacheauth.NewStreamingCredentialsProvider(src)
//	rdb := redis.NewClient(&redis.Options{
//		Addr:                         addr,
//		TLSConfig:                    &tls.Config{MinVersion: tls.VersionTLS12},
//		StreamingCredentialsProvider: scp, // or CredentialsProviderContext: elasticacheauth.CredentialsProviderContext(src)
//	})
//	rdb.AddHook(elasticacheauth.InvalidateOnWrongPass(src))
//
// An STS or credentials outage does not take Redis down: ElastiCache keeps
// an authenticated connection for 12 hours after its last authentication,
// so the [StreamingCredentialsProvider] never reports a failed mint to
// go-redis (which would close the connection); it skips that round, retries
// with back-off, and pushes the first token it gets. New connections get
// the last good token while it is valid; only then do they fail.
//
// A [TokenSource] mints at most once per cache window however many
// connections open at once: a hit is one atomic load; concurrent misses
// share one mint; a token is refreshed early with jitter, never served
// within a minute of its own or its credentials' expiry, and a failed
// refresh keeps serving the still-valid token. Tokens print redacted
// ([Token]); [Token.Value] is the only way to the secret.
//
// # Partitions
//
// Every partition the AWS SDK knows is accepted wherever an endpoint name, a region or a policy ARN appears:
// aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
// aws-eusc. [ParseEndpoint] recognises cache.DNSSUFFIX of each partition and
// requires a region spelled in the name to belong to it; [Policy] takes
// the partition from the region or PolicyOptions.Partition.
//
// # Errors
//
// Constructors fail with errors wrapping one of the sentinels
// ([ErrInvalidCacheName], [ErrInvalidUser], [ErrNoRegion],
// [ErrRegionMismatch], [ErrNoCredentials], [ErrInvalidEndpoint],
// [ErrCacheNameMismatch], [ErrServerlessNeedsCluster], [ErrInvalidOptions],
// [ErrInsecureTransport]); minting fails with the credentials provider's
// error wrapped, or [ErrCredentialsExpired]; [ErrClosed] after Close. The
// region comes from the endpoint name: a region set in Options.Region must
// agree with it ([ErrRegionMismatch]), and a name whose region code this
// package cannot decode (a region newer than it) needs Options.Region
// ([ErrNoRegion]). A refused token reaches the caller as go-redis's error
// for the command ("WRONGPASS invalid username-password pair or user
// is disabled."), which usually means the role lacks elasticache:Connect on
// the cache or the user, the user is not IAM-enabled, or the cache name or
// region is wrong.
//
// # IAM permissions
//
// The identity needs elasticache:Connect on both the cache and the user
// (memorydb:Connect on the cluster and user for MemoryDB); [Policy]
// generates the statement:
//
//	{
//	  "Effect": "Allow",
//	  "Action": "elasticache:Connect",
//	  "Resource": [
//	    "arn:aws:elasticache:REGION:ACCOUNT:replicationgroup:CACHENAME",
//	    "arn:aws:elasticache:REGION:ACCOUNT:user:USERID"
//	  ]
//	}
//
// with serverlesscache:CACHENAME in place of replicationgroup:CACHENAME for a
// serverless cache. The ElastiCache user must have authentication mode IAM,
// and its user id must equal its user name.
package elasticacheauth
