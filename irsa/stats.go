package irsa

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irsakit/irsakit/internal/cache"
)

// Stats describes a Session's credential cache, for operators: how often it
// fetches credentials (from STS, the EKS Pod Identity endpoint or the ECS
// endpoint), whether refreshes fail, and whether it had to keep serving
// cached credentials because a refresh failed. It holds no credential.
//
// The counters are kept for the sources irsakit refreshes itself — web
// identity (IRSA), EKS Pod Identity, ECS container credentials and roles
// assumed with [Session.AssumeRole]; for environment keys, profiles and
// the instance role (the SDK's own providers) every field is zero.
type Stats struct {
	// Fetches counts credential fetches started: the first one and every
	// refresh. One fetch is one request to the source plus the SDK's
	// retries of it.
	Fetches int64
	// EarlyRefreshes counts the fetches that started while the cached
	// credentials were still valid (ahead of their expiry, inside the
	// cache's expiry window).
	EarlyRefreshes int64
	// Failures counts failed fetches.
	Failures int64
	// ServedStale counts failed refreshes answered with the cached
	// credentials, which were still valid: each keeps them in service
	// until the next attempt (10 s later, doubling with each failure in a
	// row up to 2 min, with jitter) or their expiry.
	ServedStale int64
	// LastRefresh is when the last successful fetch completed; zero if
	// none.
	LastRefresh time.Time
	// LastFailure is when the last failed fetch completed; zero if none.
	LastFailure time.Time
	// LastErrorClass labels the last failure when no fetch has succeeded
	// since: "throttled", "access-denied", "credentials", "network",
	// "timeout", "not-found" or "other"; "" otherwise. It never holds the
	// error's text.
	LastErrorClass string
	// Expires is when the last credentials fetched expire (their real
	// expiry, not the cache's earlier refresh time): in the past when they
	// expired and no refresh succeeded; zero before the first fetch or
	// when they do not expire.
	Expires time.Time
}

// Stats returns a snapshot of the session's credential counters. It is
// cheap (no AWS call, no credential retrieval) and safe to call
// concurrently, e.g. from a metrics or debug handler.
func (s *Session) Stats() Stats {
	if s.stats == nil {
		return Stats{}
	}
	return s.stats.snapshot()
}

// counters are updated once per fetch, never on the read path (reads are
// served by aws.CredentialsCache).
type counters struct {
	fetches     atomic.Int64
	early       atomic.Int64
	failures    atomic.Int64
	servedStale atomic.Int64

	mu          sync.Mutex
	lastRefresh time.Time
	lastFailure time.Time
	lastClass   string
	expires     time.Time
	// streak counts failures since the last success, for the recovery
	// log line.
	streak int
}

func (c *counters) snapshot() Stats {
	st := Stats{
		Fetches:        c.fetches.Load(),
		EarlyRefreshes: c.early.Load(),
		Failures:       c.failures.Load(),
		ServedStale:    c.servedStale.Load(),
	}
	c.mu.Lock()
	st.LastRefresh, st.LastFailure, st.LastErrorClass, st.Expires = c.lastRefresh, c.lastFailure, c.lastClass, c.expires
	c.mu.Unlock()
	return st
}

// succeeded records a successful fetch and returns how many failures
// preceded it.
func (c *counters) succeeded(now, expires time.Time) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := c.streak
	c.lastRefresh, c.lastClass, c.expires, c.streak = now, "", expires, 0
	return n
}

// failed records a failed fetch and returns its class and the number of
// failures in a row.
func (c *counters) failed(now time.Time, err error) (string, int) {
	c.failures.Add(1)
	class := classify(err)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.streak++
	c.lastFailure, c.lastClass = now, class
	return class, c.streak
}

// inARow returns the number of failures since the last success.
func (c *counters) inARow() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.streak
}

// classify returns a short label for err that names its kind and never
// its content: the shared cache's labels (cache.Class), and
// "credentials" for a problem with the projected token file.
func classify(err error) string {
	var tfe *TokenFileError
	if errors.As(err, &tfe) {
		return cache.ClassCredentials
	}
	return cache.Class(err)
}
