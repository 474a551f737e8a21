package vaultauth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/internal/cache"
)

// noExpiry stands for "never" as a cache expiry, for tokens without a
// lease.
const noExpiry = 100 * 365 * 24 * time.Hour

// TokenSource keeps a valid Vault token for one role: it logs in on first
// use, renews the token (auth/token/renew-self) between half and three
// quarters of its lease, and logs in again when the token is not renewable,
// when a renewal fails, or when Vault caps a renewal to less than half the
// lease the login granted (the token nears its max TTL). A token stops
// being handed out [Options.Margin] before its lease ends.
//
// [TokenSource.Token] is an atomic load while the token is fresh;
// concurrent callers that need a new one share one login (single flight),
// each waiting only as long as its own context allows. If a refresh fails
// while the current token is still valid, that token keeps being served and
// the refresh is retried in the background every 5 s. Renewals continue,
// whether or not Token is called, until [TokenSource.Close].
//
// It is safe for concurrent use.
type TokenSource struct {
	v    *vault
	role string
	// cfg sits behind a pointer: it holds the credentials provider (for
	// static credentials, the keys), which fmt would print from a
	// caller's unexported field otherwise.
	cfg *aws.Config
	log *slog.Logger
	// One key, the role: the cache brings single flight, early refresh
	// kept up in the background, stale-while-valid and retries.
	cache   *cache.Cache[string, Token]
	h       *cache.Handle[string, Token]
	release func()

	cur    atomic.Pointer[tokenData] // the token the next refresh renews
	serial atomic.Uint64

	logins, renewals atomic.Int64
	// refreshed and failed, when set (by tests), see every refresh.
	refreshed atomic.Pointer[func(Token)]
	failed    atomic.Pointer[func(error)]
}

// NewTokenSource returns a source of Vault tokens for role (see
// [BuildLogin]) at vaultAddr (http(s)://HOST[:PORT], VAULT_ADDR's form),
// logging in with the credentials of cfg. It checks the arguments and the
// STS endpoint at once but contacts Vault only on the first
// [TokenSource.Token].
func NewTokenSource(vaultAddr, role string, cfg aws.Config, optFns ...func(*Options)) (*TokenSource, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if err := o.setDefaults(); err != nil {
		return nil, err
	}
	addr, err := parseAddress(vaultAddr, o.AllowHTTP)
	if err != nil {
		return nil, err
	}
	if err := checkRole(role); err != nil {
		return nil, err
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: the aws.Config has no Credentials: load it with irsa.Load or config.LoadDefaultConfig", ErrNoCredentials)
	}
	if _, _, err := resolveSTS(context.Background(), cfg, &o); err != nil {
		return nil, err
	}
	s := &TokenSource{v: &vault{addr: addr, opts: &o}, role: role, cfg: &cfg, log: o.Logger}
	s.cache = cache.New(func(ctx context.Context, _ string) (Token, time.Time, error) {
		return s.fetch(ctx)
	}, func(co *cache.Options[string, Token]) {
		co.Clock = o.clock
		// The margin and refresh point depend on each token's lease:
		// fetch returns the end of serving (Margin 0 here), and the
		// refresh starts between 1/2 and 3/4 of the way there.
		co.RefreshBefore = noExpiry
		co.JitterFrac = 0.5
		co.OnFetch = s.onFetch
	})
	s.h = s.cache.Handle(role)
	// Renewals happen when due whether or not Token is called, and a
	// failed one is retried.
	if s.release, err = s.cache.KeepFresh(role); err != nil {
		return nil, err
	}
	return s, nil
}

// Token returns a valid token, logging in or waiting for a login in flight
// when there is none that may still be served.
func (s *TokenSource) Token(ctx context.Context) (Token, error) {
	t, err := s.h.Get(ctx)
	if err != nil {
		var we *cache.WaitError
		switch {
		case errors.Is(err, cache.ErrClosed):
			return Token{}, ErrClosed
		case errors.As(err, &we):
			return Token{}, fmt.Errorf("vaultauth: waiting for a Vault login: %w", we.Cause)
		}
		return Token{}, err
	}
	return t, nil
}

// Invalidate drops tok if it is still the current token, so the next
// [TokenSource.Token] logs in again. Call it when Vault refused tok
// (permission denied): a revoked token cannot be renewed.
func (s *TokenSource) Invalidate(tok Token) {
	if tok.d == nil {
		return
	}
	value := tok.d.secret.value
	cur := s.cur.Load()
	if cur == nil || cur.secret.value != value || !s.cur.CompareAndSwap(cur, nil) {
		return
	}
	s.cache.InvalidateIf(s.role, func(t Token) bool { return t.d != nil && t.d.secret.value == value })
}

// Logins reports how many logins the source has sent (failed ones
// included), for tests and metrics.
func (s *TokenSource) Logins() int64 { return s.logins.Load() }

// Renewals reports how many renewals the source has sent (failed ones
// included).
func (s *TokenSource) Renewals() int64 { return s.renewals.Load() }

// Stats returns a snapshot of the source's counters. It is cheap and safe
// to call concurrently, e.g. from a metrics or debug handler.
func (s *TokenSource) Stats() Stats { return Stats(s.cache.Stats()) }

// Close stops the background renewals and cancels and waits for a login or
// renewal in flight; Token returns ErrClosed afterwards. The current token
// is not revoked: it stays valid until its lease ends. Close is idempotent.
func (s *TokenSource) Close() error {
	s.release()
	return s.cache.Close()
}

// fetch renews the current token when that is still worth it, else logs in.
// It returns the token and the end of its serving.
func (s *TokenSource) fetch(ctx context.Context) (Token, time.Time, error) {
	var capped Token
	if d := s.cur.Load(); d != nil && d.renewable && (d.expires.IsZero() || s.v.opts.clock.Now().Before(d.expires)) {
		s.renewals.Add(1)
		tok, err := s.v.renew(ctx, Token{d: d})
		switch {
		case err != nil:
			s.warn("vaultauth: renewing the Vault token failed; logging in again", err)
		case tok.d.lease > 0 && tok.d.loginLease > 0 && 2*tok.d.lease < tok.d.loginLease:
			// Vault capped the lease at the token's max TTL: renewing
			// further only shortens the intervals.
			capped = tok
			if s.log != nil {
				s.log.Debug("vaultauth: Vault capped the renewed lease; logging in again", "token", tok)
			}
		default:
			if s.log != nil {
				s.log.Debug("vaultauth: renewed the Vault token", "token", tok)
			}
			return s.store(tok)
		}
	}
	s.logins.Add(1)
	tok, err := s.v.login(ctx, *s.cfg, s.role)
	if err != nil {
		if !capped.IsZero() {
			s.warn("vaultauth: logging in again failed; keeping the renewed token", err)
			return s.store(capped)
		}
		return Token{}, time.Time{}, err
	}
	if s.log != nil {
		s.log.Debug("vaultauth: logged in to Vault", "token", tok)
	}
	return s.store(tok)
}

// store makes tok current and returns it with the end of its serving: the
// lease's end less the margin (at most a tenth of the lease).
func (s *TokenSource) store(tok Token) (Token, time.Time, error) {
	tok.d.serial = s.serial.Add(1)
	s.cur.Store(tok.d)
	if tok.d.expires.IsZero() {
		return tok, tok.d.obtained.Add(noExpiry), nil
	}
	margin := min(s.v.opts.Margin, tok.d.lease/10)
	return tok, tok.d.expires.Add(-margin), nil
}

// onFetch logs failed refreshes and the recovery after them, and tells the
// test hooks; the event carries no token value, and errors none either.
func (s *TokenSource) onFetch(ev cache.Event[string, Token]) {
	if ev.Err != nil {
		if s.log != nil {
			s.log.Warn("vaultauth: refreshing the Vault token failed", "mount", s.v.opts.Mount, "role", s.role,
				"failures", ev.Failures, "serving_current_token", ev.Failure.Kept, "err", ev.Err)
		}
		if f := s.failed.Load(); f != nil {
			(*f)(ev.Err)
		}
		return
	}
	if ev.Recovered && s.log != nil {
		s.log.Info("vaultauth: refreshing the Vault token works again", "mount", s.v.opts.Mount, "role", s.role, "failures", ev.Failures)
	}
	if f := s.refreshed.Load(); f != nil {
		(*f)(ev.Value)
	}
}

func (s *TokenSource) warn(msg string, err error) {
	if s.log != nil {
		s.log.Warn(msg, "mount", s.v.opts.Mount, "role", s.role, "err", err)
	}
}

// Address returns the Vault address the source logs in to.
func (s *TokenSource) Address() string { return s.v.addr.String() }

// Role returns the Vault role the source logs in to.
func (s *TokenSource) Role() string { return s.role }

// String describes a TokenSource by its Vault address, mount and role. A
// TokenSource prints as this under every fmt verb and in slog, never as its
// fields: it holds the credentials provider it signs with, which for static
// credentials is the keys themselves, and its current token.
func (s *TokenSource) String() string {
	if s == nil {
		return "vaultauth.TokenSource(nil)"
	}
	desc := "vaultauth.TokenSource(" + s.Address() + " auth/" + s.v.opts.Mount
	if s.role != "" {
		desc += " role " + s.role
	}
	return desc + ")"
}

// GoString returns the description for %#v.
func (s *TokenSource) GoString() string { return s.String() }

// Format writes the description for every verb and flag.
func (s *TokenSource) Format(f fmt.State, verb rune) { formatRedacted(f, verb, s.String()) }

// LogValue implements slog.LogValuer with the address, mount and role.
func (s *TokenSource) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("address", s.Address()),
		slog.String("mount", s.v.opts.Mount),
		slog.String("role", s.role),
	)
}

var (
	_ fmt.Stringer   = (*TokenSource)(nil)
	_ fmt.GoStringer = (*TokenSource)(nil)
	_ fmt.Formatter  = (*TokenSource)(nil)
	_ slog.LogValuer = (*TokenSource)(nil)
)
