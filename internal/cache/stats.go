package cache

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// Stats is a snapshot of a cache's counters. The packages that expose
// statistics copy it into their own exported type.
type Stats struct {
	// Entries is the number of keys held.
	Entries int
	// Fetches counts fetches started: cold misses, refreshes, Refresh calls.
	Fetches int64
	// EarlyRefreshes counts the fetches that started while the cached value
	// could still be served (ahead of its end, in the background).
	EarlyRefreshes int64
	// Failures counts failed fetches.
	Failures int64
	// ServedStale counts reads answered with a value whose refresh had
	// failed, or that was past its servable time (within MaxStaleness)
	// because a refresh failed or the reader could not wait for one.
	ServedStale int64
	// LastRefresh is when the last successful fetch completed; zero if none.
	LastRefresh time.Time
	// LastFailure is when the last failed fetch completed; zero if none.
	LastFailure time.Time
	// LastErrorClass classifies the last failed fetch (see [Class]) when it
	// is more recent than the last success; "" otherwise.
	LastErrorClass string
	// Expires is the soonest expiry among the cached values (for a TTL
	// cache whose values carry no expiry, the soonest end of a TTL); zero
	// when nothing is cached.
	Expires time.Time
}

// counters are kept off the hit path: atomics for counts, a mutex for the
// times (touched once per fetch).
type counters struct {
	fetches     atomic.Int64
	early       atomic.Int64
	failures    atomic.Int64
	servedStale atomic.Int64

	mu          sync.Mutex
	lastRefresh time.Time
	lastFailure time.Time
	lastClass   string
}

func (s *counters) record(now time.Time, err error, classify func(error) string) {
	if err != nil {
		s.failures.Add(1)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err == nil {
		s.lastRefresh, s.lastClass = now, ""
		return
	}
	s.lastFailure, s.lastClass = now, classify(err)
}

// Stats returns a snapshot of the cache's counters.
func (c *Cache[K, V]) Stats() Stats {
	st := Stats{
		Fetches:        c.stats.fetches.Load(),
		EarlyRefreshes: c.stats.early.Load(),
		Failures:       c.stats.failures.Load(),
		ServedStale:    c.stats.servedStale.Load(),
	}
	c.stats.mu.Lock()
	st.LastRefresh, st.LastFailure, st.LastErrorClass = c.stats.lastRefresh, c.stats.lastFailure, c.stats.lastClass
	c.stats.mu.Unlock()
	m := *c.snap.Load()
	st.Entries = len(m)
	for _, e := range m {
		s := e.cur.Load()
		if s == nil {
			continue
		}
		exp := s.expires
		if exp.IsZero() {
			exp = s.serveUntil
		}
		if st.Expires.IsZero() || exp.Before(st.Expires) {
			st.Expires = exp
		}
	}
	return st
}

// Error classes reported by [Class].
const (
	ClassCredentials  = "credentials"
	ClassThrottled    = "throttled"
	ClassAccessDenied = "access-denied"
	ClassNetwork      = "network"
	ClassTimeout      = "timeout"
	ClassNotFound     = "not-found"
	ClassOther        = "other"
)

// Class returns a short label for err that names its kind and never its
// content: "timeout", "throttled", "access-denied", "not-found",
// "credentials", "network" or "other"; "" for nil. AWS errors are
// recognised by their error codes.
func Class(err error) string {
	if err == nil {
		return ""
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		switch {
		case code == "Throttling" || code == "ThrottlingException" || code == "TooManyRequestsException" ||
			code == "RequestLimitExceeded" || code == "SlowDown" || code == "RequestThrottled" || code == "RequestThrottledException":
			return ClassThrottled
		case code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation" || code == "AuthorizationError":
			return ClassAccessDenied
		case code == "ResourceNotFoundException" || code == "NotFound" || code == "NoSuchEntity":
			return ClassNotFound
		case code == "ExpiredToken" || code == "ExpiredTokenException" || code == "InvalidClientTokenId" ||
			code == "UnrecognizedClientException" || code == "InvalidIdentityToken" || code == "IDPRejectedClaim" ||
			code == "IDPCommunicationError" || code == "InvalidSignatureException" || code == "SignatureDoesNotMatch" ||
			strings.HasSuffix(code, "CredentialsError"):
			return ClassCredentials
		}
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return ClassTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return ClassTimeout
		}
		return ClassNetwork
	}
	var oe *net.OpError
	var de *net.DNSError
	var se *smithyhttp.RequestSendError
	if errors.As(err, &oe) || errors.As(err, &de) || errors.As(err, &se) {
		return ClassNetwork
	}
	return ClassOther
}
