package elasticacheauth

import "errors"

// Sentinel errors. Every error this package returns wraps at most one of
// them; test with errors.Is.
var (
	// ErrInvalidCacheName: the cache name is empty, not a replication group
	// id / serverless cache name, or an endpoint host where the name was
	// expected (use ParseEndpoint to derive the name).
	ErrInvalidCacheName = errors.New("elasticacheauth: invalid cache name")
	// ErrInvalidUser: the ElastiCache user id is empty or malformed.
	ErrInvalidUser = errors.New("elasticacheauth: invalid user id")
	// ErrNoRegion: no region was configured and none could be derived
	// (also: an endpoint name whose region code cannot be decoded, with no
	// region configured).
	ErrNoRegion = errors.New("elasticacheauth: no region")
	// ErrNoCredentials: no credentials provider was given.
	ErrNoCredentials = errors.New("elasticacheauth: no credentials provider")
	// ErrCredentialsExpired: the provider returned credentials that have
	// already expired; no token is signed with them.
	ErrCredentialsExpired = errors.New("elasticacheauth: credentials expired")
	// ErrInvalidEndpoint: an endpoint is not host:port, or is not an
	// ElastiCache/MemoryDB endpoint name where one is required.
	ErrInvalidEndpoint = errors.New("elasticacheauth: invalid endpoint")
	// ErrCacheNameMismatch: the cache name given differs from the one in
	// the endpoint name, so every token would be refused.
	ErrCacheNameMismatch = errors.New("elasticacheauth: cache name does not match the endpoint")
	// ErrServerlessNeedsCluster: serverless caches speak the cluster
	// protocol; use NewClusterClient.
	ErrServerlessNeedsCluster = errors.New("elasticacheauth: serverless caches need a cluster client")
	// ErrInvalidOptions: options contradict each other (e.g. MemoryDB and
	// Serverless).
	ErrInvalidOptions = errors.New("elasticacheauth: invalid options")
	// ErrInsecureTransport: the client would send tokens without TLS, or
	// over TLS that does not verify the server's certificate or allows
	// versions below 1.2, without the opt-in (ClientOptions.DisableTLS,
	// ClientOptions.AllowInsecureTLS). A token is a bearer credential.
	ErrInsecureTransport = errors.New("elasticacheauth: token would travel without verified TLS")
	// ErrRegionMismatch: the region configured differs from the one in the
	// endpoint name, so every token would be refused.
	ErrRegionMismatch = errors.New("elasticacheauth: region does not match the endpoint")
	// ErrClosed: the TokenSource or StreamingCredentialsProvider is closed.
	ErrClosed = errors.New("elasticacheauth: closed")
)
