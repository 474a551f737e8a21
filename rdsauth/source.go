package rdsauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/internal/cache"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/presign"
	"github.com/irsakit/irsakit/internal/redact"
)

// TokenLifetime is how long RDS accepts a token after signing it.
const TokenLifetime = 15 * time.Minute

// signingName is the SigV4 service name of RDS IAM authentication.
const signingName = "rds-db"

// Options configure a TokenSource and, for NewPool, ConfigurePool and
// OpenDB, the connections. Every field has a usable zero value.
type Options struct {
	// Region tokens are signed for. Default: the region in an RDS
	// endpoint name (instance, cluster, reader, custom, proxy), else the
	// aws.Config's region (NewPool, ConfigurePool, OpenDB). Setting it to a
	// region other than the endpoint name's is ErrRegionMismatch.
	Region string

	// Margin: a token stops being handed out this long before it expires
	// (or its credentials do), so a handshake that starts with it finishes
	// in time. Default 1 minute.
	Margin time.Duration
	// RefreshBefore: a new token is minted in the background about this
	// long before the current one stops being handed out, with jitter.
	// Default 5 minutes.
	RefreshBefore time.Duration
	// JitterFrac randomises the early refresh by up to this fraction of
	// RefreshBefore. Default 0.5; negative disables jitter.
	JitterFrac float64
	// FetchTimeout bounds one mint (credential retrieval plus signing).
	// Default 30 s.
	FetchTimeout time.Duration

	// Logger receives a debug record for each mint, a warning for each
	// failed mint and an info record when minting works again after
	// failures; never a token. Default: slog.Default().
	Logger *slog.Logger

	// clock is the time source; tests set it through export_test.go.
	clock clock.Clock

	// AllowInsecure lets NewPool, ConfigurePool, OpenDB and BeforeConnect
	// accept connection strings with any sslmode, plaintext included
	// (disable, allow, prefer). Default false: they fail with
	// ErrInsecureTransport, since the token is a bearer credential for 15
	// minutes. It implies AllowUnverifiedTLS.
	AllowInsecure bool
	// RootCAFile is a PEM bundle (for example the RDS global bundle,
	// global-bundle.pem) that every host's certificate must chain to; it
	// turns on full verification (sslmode=verify-full, host name included)
	// for every host of the connection string, whatever its sslmode says.
	// Default: the connection string's TLS settings.
	RootCAFile string
	// MaxConnLifetime replaces the pool's (and database/sql's) maximum
	// connection lifetime. Default 10 minutes with up to 2 minutes of
	// jitter, well inside one token lifetime and one IRSA credential
	// lifetime, so connections are re-authenticated with current
	// credentials and spread across failovers; established connections
	// are never cut by a token's expiry. Negative keeps the connection
	// string's setting (pgx default 1 hour).
	MaxConnLifetime time.Duration

	// AllowUnverifiedTLS lets NewPool, ConfigurePool, OpenDB and
	// BeforeConnect accept TLS that does not verify the server's
	// certificate (sslmode=require without sslrootcert, or a tls.Config
	// with InsecureSkipVerify). Default false: they fail with
	// ErrUnverifiedTLS, since whoever can intercept the connection would
	// get the token; use sslmode=verify-full with the RDS CA bundle
	// instead.
	AllowUnverifiedTLS bool
	// DialAddress ("host:port") is where NewPool, ConfigurePool, OpenDB and
	// BeforeConnect open the TCP connection: a kubectl port-forward, an SSH
	// tunnel, a PrivateLink or NLB endpoint, a local proxy. The connection
	// string still names the database: tokens are signed for its host and
	// port, and sslmode=verify-full checks the certificate against its
	// host name, so the tunnel sees only TLS. The connection string must
	// name one host. Default: dial the connection string's host.
	DialAddress string
	// DSQL makes every host's tokens Aurora DSQL tokens (service dsql,
	// Action DbConnectAdmin for the admin role and DbConnect for any
	// other, signed for the host without its port). Default: DSQL tokens
	// for hosts named like a cluster endpoint
	// (CLUSTERID.dsql.REGION.on.aws), RDS tokens for any other host.
	DSQL bool
	// ExpiresIn is how long the server accepts a token (its
	// X-Amz-Expires); it is handed out for less (see Margin) and never
	// past the signing credentials' expiry. Default 15 minutes, which is
	// also the most RDS accepts; Aurora DSQL accepts up to a week
	// (MaxDSQLTokenLifetime).
	ExpiresIn time.Duration

	// fallbackRegion is the aws.Config's region (lowest precedence).
	fallbackRegion string
}

// defaultMaxConnLifetime is documented on Options.MaxConnLifetime.
const (
	defaultMaxConnLifetime       = 10 * time.Minute
	defaultMaxConnLifetimeJitter = 2 * time.Minute
)

type cacheKey struct {
	host string
	port uint16
	user string
}

type entry struct {
	h      *cache.Handle[cacheKey, Token]
	region string
}

// TokenSource mints and caches RDS IAM tokens signed with one credentials
// provider. It keeps one cache entry per (host, port, user, region) — the
// region is fixed per host — so the hosts of a multi-host connection string
// and failover targets each get their own token. A cache hit is an atomic
// load: no lock, no allocation, no clock read. Concurrent misses for one key
// mint once; a token is refreshed early with jitter and, if that refresh
// fails, the still-valid token keeps being served. It is safe for
// concurrent use.
type TokenSource struct {
	creds redact.Held[aws.CredentialsProvider] // held, so no printer walks into a static provider's keys
	opts  Options
	clk   clock.Clock
	log   *slog.Logger
	cache *cache.Cache[cacheKey, Token]

	def    *entry
	defKey cacheKey

	mu      sync.Mutex // serialises inserts into entries
	entries atomic.Pointer[map[cacheKey]*entry]

	mints  atomic.Int64
	serial atomic.Uint64
	closed atomic.Bool
}

// NewTokenSource returns a source of tokens for user at endpoint
// ("host:port"; the port is required), signed with creds. See Options.Region
// for how the region is chosen.
func NewTokenSource(endpoint, user string, creds aws.CredentialsProvider, optFns ...func(*Options)) (*TokenSource, error) {
	host, port, err := SplitEndpoint(endpoint)
	if err != nil {
		return nil, err
	}
	return newTokenSource(host, port, user, creds, optFns...)
}

func newTokenSource(host string, port uint16, user string, creds aws.CredentialsProvider, optFns ...func(*Options)) (*TokenSource, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if creds == nil {
		return nil, fmt.Errorf("%w: pass the session's credentials (aws.Config.Credentials)", ErrNoCredentials)
	}
	if err := checkUser(user); err != nil {
		return nil, err
	}
	if o.Margin <= 0 {
		o.Margin = time.Minute
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = 5 * time.Minute
	}
	if o.JitterFrac == 0 {
		o.JitterFrac = 0.5
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &TokenSource{creds: redact.Hold(creds), opts: o, clk: clock.Or(o.clock), log: o.Logger}
	s.cache = cache.New(s.mint, func(co *cache.Options[cacheKey, Token]) {
		co.Clock = s.clk
		co.Margin = o.Margin
		co.RefreshBefore = o.RefreshBefore
		co.JitterFrac = o.JitterFrac // negative: none
		co.FetchTimeout = o.FetchTimeout
		co.Classify = classify
		co.OnFetch = s.logFetch
	})
	m := map[cacheKey]*entry{}
	s.entries.Store(&m)
	s.defKey = cacheKey{host: host, port: port, user: user}
	e, err := s.entryFor(s.defKey)
	if err != nil {
		return nil, err
	}
	s.def = e
	return s, nil
}

func checkUser(user string) error {
	if user == "" {
		return fmt.Errorf("%w: empty user name", ErrInvalidUser)
	}
	if len(user) > 63 {
		return fmt.Errorf("%w: %q is longer than PostgreSQL's 63-byte limit", ErrInvalidUser, user)
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c < 0x20 || c == 0x7f {
			return fmt.Errorf("%w: %q contains a control character", ErrInvalidUser, user)
		}
	}
	return nil
}

// Endpoint returns the source's default host:port.
func (s *TokenSource) Endpoint() string { return joinHostPort(s.defKey.host, s.defKey.port) }

// User returns the source's default database user.
func (s *TokenSource) User() string { return s.defKey.user }

// Region returns the region of the default endpoint's tokens.
func (s *TokenSource) Region() string { return s.def.region }

// Token returns a token for the source's endpoint and user, from the cache
// when one may still be served.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	t, err := s.def.h.Get(ctx)
	if err != nil {
		return Token{}, s.wrapErr(err)
	}
	return t, nil
}

// TokenFor returns a token for user at host:port, sharing the source's
// credentials and options; each (host, port, user) has its own cache.
func (s *TokenSource) TokenFor(ctx context.Context, host string, port uint16, user string) (Token, error) {
	var e *entry
	if port == s.defKey.port && host == s.defKey.host && user == s.defKey.user {
		e = s.def
	} else if e = (*s.entries.Load())[cacheKey{host: host, port: port, user: user}]; e == nil {
		k := cacheKey{host: host, port: port, user: user}
		var err error
		if e, err = s.entryFor(k); err != nil {
			return Token{}, err
		}
	}
	t, err := e.h.Get(ctx)
	if err != nil {
		return Token{}, s.wrapErr(err)
	}
	return t, nil
}

func (s *TokenSource) wrapErr(err error) error {
	var we *cache.WaitError
	switch {
	case errors.Is(err, cache.ErrClosed):
		return ErrClosed
	case errors.As(err, &we):
		return fmt.Errorf("rdsauth: waiting for a token: %w", we.Cause)
	}
	return err
}

// Invalidate drops tok from its cache if it is still the cached token, so
// the next request mints a fresh one. Call it when a server refused tok.
func (s *TokenSource) Invalidate(tok Token) {
	if tok.d == nil {
		return
	}
	serial := tok.d.serial
	s.cache.InvalidateIf(cacheKey{host: tok.d.host, port: tok.d.port, user: tok.d.user}, func(t Token) bool {
		return t.d != nil && t.d.serial == serial
	})
}

// Mints reports how many tokens the source has signed, for tests and
// metrics.
func (s *TokenSource) Mints() int64 { return s.mints.Load() }

// Close stops the source's timers and cancels and waits for a mint in
// flight; Token returns ErrClosed afterwards.
func (s *TokenSource) Close() error {
	s.mu.Lock()
	s.closed.Store(true)
	s.mu.Unlock()
	return s.cache.Close()
}

// entryFor returns the cache for k, creating it (copy-on-write, so reads
// stay lock-free).
func (s *TokenSource) entryFor(k cacheKey) (*entry, error) {
	if err := checkHost(k.host); err != nil {
		return nil, fmt.Errorf("%w: %s", ErrInvalidEndpoint, err)
	}
	if k.port == 0 {
		return nil, fmt.Errorf("%w: %s: port 0", ErrInvalidEndpoint, k.host)
	}
	if err := checkUser(k.user); err != nil {
		return nil, err
	}
	region, err := s.regionFor(k.host)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	old := *s.entries.Load()
	if e := old[k]; e != nil {
		return e, nil
	}
	e := &entry{region: region, h: s.cache.Handle(k)}
	m := make(map[cacheKey]*entry, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = e
	s.entries.Store(&m)
	return e, nil
}

// mint signs a new token for k. Its lifetime is capped by the credentials'.
func (s *TokenSource) mint(ctx context.Context, k cacheKey) (Token, time.Time, error) {
	e := (*s.entries.Load())[k]
	if e == nil {
		return Token{}, time.Time{}, fmt.Errorf("rdsauth: no cache entry for %s@%s", k.user, joinHostPort(k.host, k.port))
	}
	endpoint := joinHostPort(k.host, k.port)
	service, host, query, lifetime := s.tokenRequest(k)
	m, err := presign.Mint(ctx, s.creds.Get(), service, e.region, host, query, lifetime, s.clk.Now())
	if err != nil {
		var ee *presign.ExpiredCredentialsError
		if errors.As(err, &ee) {
			return Token{}, time.Time{}, fmt.Errorf("%w: %v", ErrCredentialsExpired, ee)
		}
		return Token{}, time.Time{}, fmt.Errorf("rdsauth: token for %s@%s: %w", k.user, endpoint, err)
	}
	v, signedAt, expires := m.Value, m.SignedAt, m.Expires
	serial := s.serial.Add(1)
	s.mints.Add(1)
	t := Token{&tokenData{value: redact.NewString(v), host: k.host, port: k.port, user: k.user, region: e.region, expires: expires, signedAt: signedAt, serial: serial}}
	s.log.Debug("rdsauth: minted a token", "token", t)
	return t, expires, nil
}

// classify labels a failed mint for Stats: signing is local, so what is not
// a network, throttling, timeout or access problem is the credentials'.
func classify(err error) string {
	if c := cache.Class(err); c != cache.ClassOther {
		return c
	}
	return cache.ClassCredentials
}

// logFetch records failed mints and the recovery after them; the event
// carries no token value, and the errors name only user and endpoint.
func (s *TokenSource) logFetch(ev cache.Event[cacheKey, Token]) {
	endpoint := joinHostPort(ev.Key.host, ev.Key.port)
	switch {
	case ev.Err != nil:
		s.log.Warn("rdsauth: minting a token failed", "user", ev.Key.user, "endpoint", endpoint,
			"error_class", classify(ev.Err), "failures", ev.Failures, "serving_cached_token", ev.Failure.Kept, "err", ev.Err)
	case ev.Recovered:
		s.log.Info("rdsauth: minting tokens works again", "user", ev.Key.user, "endpoint", endpoint, "failures", ev.Failures)
	}
}
