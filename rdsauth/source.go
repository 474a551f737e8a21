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

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/presign"
	"github.com/irsakit/irsakit/internal/tokencache"
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

	// Logger receives debug records for mints and warnings for failed
	// refreshes; never a token. Default: no logging.
	Logger *slog.Logger

	// Clock is the time source; tests inject a fake one. Default: the
	// system clock.
	Clock clock.Clock

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
	cache  *tokencache.Cache[Token]
	region string
	latest atomic.Uint64 // serial of the newest token minted here
}

// TokenSource mints and caches RDS IAM tokens signed with one credentials
// provider. It keeps one cache per (host, port, user, region) — the region
// is fixed per host — so the hosts of a multi-host connection string and
// failover targets each get their own token. A cache hit is an atomic load:
// no lock, no allocation, no clock read. Concurrent misses for one key mint
// once; a token is refreshed early with jitter and, if that refresh fails,
// the still-valid token keeps being served. It is safe for concurrent use.
type TokenSource struct {
	creds aws.CredentialsProvider
	opts  Options
	clk   clock.Clock
	log   *slog.Logger

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
	s := &TokenSource{creds: creds, opts: o, clk: clock.Or(o.Clock), log: o.Logger}
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
	t, err := s.def.cache.Get(ctx)
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
	t, err := e.cache.Get(ctx)
	if err != nil {
		return Token{}, s.wrapErr(err)
	}
	return t, nil
}

func (s *TokenSource) wrapErr(err error) error {
	if errors.Is(err, tokencache.ErrClosed) {
		return ErrClosed
	}
	return err
}

// Invalidate drops tok from its cache if it is still the cached token, so
// the next request mints a fresh one. Call it when a server refused tok.
func (s *TokenSource) Invalidate(tok Token) {
	if tok.d == nil {
		return
	}
	e := (*s.entries.Load())[cacheKey{host: tok.d.host, port: tok.d.port, user: tok.d.user}]
	if e != nil && e.latest.Load() == tok.d.serial {
		e.cache.Invalidate()
	}
}

// Mints reports how many tokens the source has signed, for tests and
// metrics.
func (s *TokenSource) Mints() int64 { return s.mints.Load() }

// Close stops the source's timers; Token returns ErrClosed afterwards.
func (s *TokenSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, e := range *s.entries.Load() {
		e.cache.Close()
	}
	return nil
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
	e := &entry{region: region}
	e.cache = tokencache.New(func(ctx context.Context) (Token, time.Time, error) {
		return s.mint(ctx, k, e)
	}, func(o *tokencache.Options) {
		o.Clock = s.clk
		o.Margin = s.opts.Margin
		o.RefreshBefore = s.opts.RefreshBefore
		o.JitterFrac = s.opts.JitterFrac
		o.FetchTimeout = s.opts.FetchTimeout
		if s.log != nil {
			endpoint := joinHostPort(k.host, k.port)
			o.OnError = func(err error) {
				s.log.Warn("rdsauth: minting a token failed", "user", k.user, "endpoint", endpoint, "err", err)
			}
		}
	})
	m := make(map[cacheKey]*entry, len(old)+1)
	for kk, v := range old {
		m[kk] = v
	}
	m[k] = e
	s.entries.Store(&m)
	return e, nil
}

// mint signs a new token. Its lifetime is capped by the credentials'.
func (s *TokenSource) mint(ctx context.Context, k cacheKey, e *entry) (Token, time.Time, error) {
	endpoint := joinHostPort(k.host, k.port)
	service, host, query, lifetime := s.tokenRequest(k)
	m, err := presign.Mint(ctx, s.creds, service, e.region, host, query, lifetime, s.clk.Now())
	if err != nil {
		var ee *presign.ExpiredCredentialsError
		if errors.As(err, &ee) {
			return Token{}, time.Time{}, fmt.Errorf("%w: %v", ErrCredentialsExpired, ee)
		}
		return Token{}, time.Time{}, fmt.Errorf("rdsauth: token for %s@%s: %w", k.user, endpoint, err)
	}
	v, signedAt, expires := m.Value, m.SignedAt, m.Expires
	serial := s.serial.Add(1)
	e.latest.Store(serial)
	s.mints.Add(1)
	t := Token{&tokenData{value: v, host: k.host, port: k.port, user: k.user, region: e.region, expires: expires, signedAt: signedAt, serial: serial}}
	if s.log != nil {
		s.log.Debug("rdsauth: minted a token", "token", t)
	}
	return t, expires, nil
}
