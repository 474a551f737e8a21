package secrets

import "time"

// Stats describes a Cache for operators: how often it calls Secrets
// Manager, whether refreshes fail, and whether it had to serve values past
// their TTL. It holds no secret.
type Stats struct {
	// Entries is the number of secret versions cached.
	Entries int
	// Fetches counts GetSecretValue calls.
	Fetches int64
	// EarlyRefreshes counts the calls made while the cached value could
	// still be served (background refreshes, Refresh).
	EarlyRefreshes int64
	// Failures counts failed GetSecretValue calls.
	Failures int64
	// ServedStale counts reads answered with a value past its TTL (within
	// MaxStaleness) because a refresh failed or the reader could not wait
	// for one, or with a value whose background refresh failed.
	ServedStale int64
	// LastRefresh is when the last successful call completed; zero if none.
	LastRefresh time.Time
	// LastFailure is when a call last failed; zero if none.
	LastFailure time.Time
	// LastErrorClass labels the last failure when no call has succeeded
	// since: "not-found", "access-denied", "throttled", "credentials",
	// "network", "timeout" or "other"; "" otherwise.
	LastErrorClass string
	// Expires is the soonest end of a cached value's TTL; zero when nothing
	// is cached.
	Expires time.Time
}

// Stats returns a snapshot of the cache's counters. It is cheap and safe to
// call concurrently, e.g. from a metrics or debug handler.
func (c *Cache) Stats() Stats { return Stats(c.c.Stats()) }
