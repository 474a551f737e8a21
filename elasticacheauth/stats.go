package elasticacheauth

import "time"

// Stats describes a TokenSource's token cache, for operators: how often it
// mints, whether it refreshes ahead of expiry, and whether it had to keep
// serving a token because a refresh failed. It holds no token.
type Stats struct {
	// Entries is 1 once a token has been requested.
	Entries int
	// Fetches counts mints started by the cache (cold misses and refreshes).
	Fetches int64
	// EarlyRefreshes counts the mints that started ahead of expiry, while
	// the cached token was still being served.
	EarlyRefreshes int64
	// Failures counts failed mints (credential retrieval, expired
	// credentials).
	Failures int64
	// ServedStale counts token requests answered with a cached token after
	// its refresh failed (the token was still valid).
	ServedStale int64
	// LastRefresh is when the last token was minted; zero if none.
	LastRefresh time.Time
	// LastFailure is when a mint last failed; zero if none.
	LastFailure time.Time
	// LastErrorClass labels the last failure when no mint has succeeded
	// since: "credentials", "throttled", "access-denied", "network",
	// "timeout" or "other"; "" otherwise.
	LastErrorClass string
	// Expires is the soonest expiry of the cached tokens; zero when none
	// is cached.
	Expires time.Time
}

// Stats returns a snapshot of the source's counters. It is cheap and safe
// to call concurrently, e.g. from a metrics or debug handler.
func (s *TokenSource) Stats() Stats { return Stats(s.cache.Stats()) }
