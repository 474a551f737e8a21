package elasticacheauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/partition"
	"github.com/irsakit/irsakit/internal/presign"
	"github.com/irsakit/irsakit/internal/tokencache"
)

// TokenLifetime is how long ElastiCache and MemoryDB accept a token after
// signing it (X-Amz-Expires=900).
const TokenLifetime = 15 * time.Minute

// Signing names.
const (
	signingElastiCache = "elasticache"
	signingMemoryDB    = "memorydb"
)

// Options configure a TokenSource. Every field but Region has a usable zero
// value.
type Options struct {
	// Region tokens are signed for, e.g. "us-east-1". Required by
	// NewTokenSource (ErrNoRegion); NewClient and NewClusterClient default
	// it to the endpoint name's region, else the aws.Config's.
	Region string
	// Serverless signs tokens for an ElastiCache serverless cache: they carry
	// ResourceType=ServerlessCache, without which a serverless cache refuses
	// them. Default false (a replication group).
	Serverless bool
	// MemoryDB signs tokens for a MemoryDB cluster (signing name memorydb)
	// instead of ElastiCache. Default false.
	MemoryDB bool

	// Margin: a token stops being handed out this long before it expires
	// (or its credentials do), so a handshake started with it finishes in
	// time. Default 1 minute.
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

	// Logger receives warnings for failed mints; never a token. Default: no
	// logging.
	Logger *slog.Logger
	// Clock is the time source; tests inject a fake one. Default: the
	// system clock.
	Clock clock.Clock
}

// TokenSource mints and caches the IAM authentication tokens of one user
// for one cache, signed with one credentials provider. A cache hit is an
// atomic load: no lock, no allocation, no clock read. Concurrent misses
// mint once; a token is refreshed early with jitter, its cache lifetime is
// capped by the credentials' expiry, and a failed refresh keeps serving the
// still-valid token. It is safe for concurrent use.
type TokenSource struct {
	cacheName  string
	user       string
	region     string
	service    string
	serverless bool

	creds aws.CredentialsProvider
	clk   clock.Clock
	log   *slog.Logger
	cache *tokencache.Cache[Token]

	latest atomic.Pointer[Token] // newest token minted
	margin time.Duration
	serial atomic.Uint64
	mints  atomic.Int64
	closed atomic.Bool
}

// NewTokenSource returns a source of tokens for user userID of cacheName —
// the replication group id or serverless cache name (MemoryDB: cluster name),
// not an endpoint host; it is lower-cased, as ElastiCache stores it — signed
// with creds. For IAM-enabled ElastiCache users the user id equals the user
// name.
func NewTokenSource(cacheName, userID string, creds aws.CredentialsProvider, optFns ...func(*Options)) (*TokenSource, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if creds == nil {
		return nil, fmt.Errorf("%w: pass the session's credentials (aws.Config.Credentials)", ErrNoCredentials)
	}
	name, err := checkCacheName(cacheName)
	if err != nil {
		return nil, err
	}
	if err := checkUser(userID); err != nil {
		return nil, err
	}
	if o.Region == "" {
		return nil, fmt.Errorf("%w: set Options.Region to the cache's region (for example us-east-1)", ErrNoRegion)
	}
	if !partition.ValidRegion(o.Region) {
		return nil, fmt.Errorf("%w: Options.Region: %s", ErrNoRegion, partition.RegionError("region", o.Region))
	}
	if o.MemoryDB && o.Serverless {
		return nil, fmt.Errorf("%w: MemoryDB has no serverless caches", ErrInvalidOptions)
	}
	s := &TokenSource{
		cacheName:  name,
		user:       userID,
		region:     o.Region,
		service:    signingElastiCache,
		serverless: o.Serverless,
		creds:      creds,
		margin:     o.Margin,
		clk:        clock.Or(o.Clock),
		log:        o.Logger,
	}
	if o.MemoryDB {
		s.service = signingMemoryDB
	}
	if s.margin <= 0 {
		s.margin = time.Minute // tokencache's default
	}
	s.cache = tokencache.New(s.fetch, func(co *tokencache.Options) {
		co.Clock = s.clk
		co.Margin = o.Margin
		co.RefreshBefore = o.RefreshBefore
		co.JitterFrac = o.JitterFrac
		co.FetchTimeout = o.FetchTimeout
		if s.log != nil {
			co.OnError = func(err error) {
				s.log.Warn("elasticacheauth: minting a token failed", "user", s.user, "cache", s.cacheName, "err", err)
			}
		}
	})
	return s, nil
}

func checkCacheName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: empty; pass the replication group id or serverless cache name", ErrInvalidCacheName)
	}
	if strings.Contains(name, ".") {
		return "", fmt.Errorf("%w: %q looks like an endpoint host; pass the replication group id or serverless cache name (ParseEndpoint derives it)", ErrInvalidCacheName, name)
	}
	if len(name) > 128 {
		return "", fmt.Errorf("%w: %q is longer than 128 characters", ErrInvalidCacheName, name)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return "", fmt.Errorf("%w: %q may hold only letters, digits, '-' and '_'", ErrInvalidCacheName, name)
		}
	}
	return strings.ToLower(name), nil
}

func checkUser(user string) error {
	if user == "" {
		return fmt.Errorf("%w: empty; pass the ElastiCache user id (for IAM users it equals the user name)", ErrInvalidUser)
	}
	if len(user) > 128 {
		return fmt.Errorf("%w: %q is longer than 128 characters", ErrInvalidUser, user)
	}
	for i := 0; i < len(user); i++ {
		if c := user[i]; c <= 0x20 || c >= 0x7f {
			return fmt.Errorf("%w: %q contains a space, control or non-ASCII character", ErrInvalidUser, user)
		}
	}
	return nil
}

// CacheName returns the (lower-case) cache name tokens are signed for.
func (s *TokenSource) CacheName() string { return s.cacheName }

// UserID returns the user id tokens authenticate.
func (s *TokenSource) UserID() string { return s.user }

// Region returns the region tokens are signed for.
func (s *TokenSource) Region() string { return s.region }

// Serverless reports whether tokens are for a serverless cache.
func (s *TokenSource) Serverless() bool { return s.serverless }

// Token returns a token, from the cache when one may still be served.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	t, err := s.cache.Get(ctx)
	if err != nil {
		if errors.Is(err, tokencache.ErrClosed) {
			return Token{}, ErrClosed
		}
		return Token{}, err
	}
	return t, nil
}

// Mint signs a new token without touching the cache: the cost of "a token
// per connection", for comparison and for tools that print one token.
func (s *TokenSource) Mint(ctx context.Context) (Token, error) {
	t, _, err := s.mint(ctx)
	return t, err
}

// Invalidate drops tok from the cache if it is still the newest token, so
// the next request mints a fresh one. Call it when a server refused tok
// (WRONGPASS). A token older than the newest is ignored: refusals of one
// token cause one new mint, never a loop.
func (s *TokenSource) Invalidate(tok Token) {
	if l := s.latest.Load(); l != nil && l.serial == tok.info().serial {
		s.cache.Invalidate()
	}
}

// invalidateValue is Invalidate for a refused password string.
func (s *TokenSource) invalidateValue(v string) {
	if l := s.latest.Load(); l != nil && l.value == v {
		s.Invalidate(*l)
	}
}

// Mints reports how many tokens the source has signed (cached or not), for
// tests and metrics.
func (s *TokenSource) Mints() int64 { return s.mints.Load() }

// Close stops the source's timers; Token returns ErrClosed afterwards.
func (s *TokenSource) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	return s.cache.Close()
}

func (s *TokenSource) fetch(ctx context.Context) (Token, time.Time, error) {
	t, _, err := s.mint(ctx)
	if err != nil {
		return Token{}, time.Time{}, err
	}
	s.latest.Store(&t)
	return t, t.expires, nil
}

// mint signs a new token. Its lifetime is capped by the credentials'.
func (s *TokenSource) mint(ctx context.Context) (Token, time.Time, error) {
	q := url.Values{"Action": {"connect"}, "User": {s.user}}
	if s.serverless {
		q.Set("ResourceType", "ServerlessCache")
	}
	now := s.clk.Now()
	m, err := presign.Mint(ctx, s.creds, s.service, s.region, s.cacheName, q, TokenLifetime, now)
	if err != nil {
		var ee *presign.ExpiredCredentialsError
		if errors.As(err, &ee) {
			return Token{}, time.Time{}, fmt.Errorf("%w: %v", ErrCredentialsExpired, ee)
		}
		return Token{}, time.Time{}, fmt.Errorf("elasticacheauth: token for %s@%s: %w", s.user, s.cacheName, err)
	}
	v, signedAt, expires := m.Value, m.SignedAt, m.Expires
	s.mints.Add(1)
	t := Token{value: v, tokenInfo: &tokenInfo{
		cacheName:  s.cacheName,
		user:       s.user,
		region:     s.region,
		service:    s.service,
		serverless: s.serverless,
		expires:    expires,
		signedAt:   signedAt,
		mintedAt:   now,
		serial:     s.serial.Add(1),
	}}
	return t, expires, nil
}
