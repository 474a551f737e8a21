package rdsauth

import "errors"

// Sentinel errors. Every error this package returns wraps at most one of
// them; test with errors.Is.
var (
	// ErrMissingPort: the endpoint has no port. RDS signs tokens for
	// host:port, and a token for the host alone is refused with
	// "PAM authentication failed".
	ErrMissingPort = errors.New("rdsauth: endpoint has no port")
	// ErrInvalidEndpoint: the endpoint is not a host:port.
	ErrInvalidEndpoint = errors.New("rdsauth: invalid endpoint")
	// ErrNoRegion: the region could not be derived from the endpoint and
	// none was configured.
	ErrNoRegion = errors.New("rdsauth: no region")
	// ErrRegionMismatch: Options.Region differs from the region in an RDS
	// endpoint name, so every token would be refused.
	ErrRegionMismatch = errors.New("rdsauth: region does not match the endpoint")
	// ErrInvalidRegion: a configured region is not a region name.
	ErrInvalidRegion = errors.New("rdsauth: invalid region")
	// ErrInvalidUser: the database user name is empty or malformed.
	ErrInvalidUser = errors.New("rdsauth: invalid database user")
	// ErrNoCredentials: no credentials provider was given.
	ErrNoCredentials = errors.New("rdsauth: no credentials provider")
	// ErrCredentialsExpired: the provider returned credentials that have
	// already expired; no token is signed with them.
	ErrCredentialsExpired = errors.New("rdsauth: credentials expired")
	// ErrInsecureTransport: the connection string lets the token travel
	// without TLS (sslmode disable, allow or prefer).
	ErrInsecureTransport = errors.New("rdsauth: connection without TLS")
	// ErrUnverifiedTLS: the connection string uses TLS but does not verify
	// the server's certificate (sslmode=require), so the token could be
	// handed to whoever intercepts the connection.
	ErrUnverifiedTLS = errors.New("rdsauth: TLS without certificate verification")
	// ErrInvalidPolicyInput: an argument of Policy is malformed.
	ErrInvalidPolicyInput = errors.New("rdsauth: invalid policy input")
	// ErrClosed: the TokenSource has been closed.
	ErrClosed = errors.New("rdsauth: token source closed")
)
