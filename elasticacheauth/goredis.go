package elasticacheauth

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/auth"

	"github.com/irsakit/irsakit/internal/clock"
)

// CredentialsProviderContext returns a hook for
// redis.Options.CredentialsProviderContext (and
// redis.ClusterOptions.CredentialsProviderContext): each new connection
// authenticates as src's user with a token from src's cache. It does not
// re-authenticate live connections; ElastiCache closes them 12 hours after
// their last authentication. Use a [StreamingCredentialsProvider] for that.
func CredentialsProviderContext(src *TokenSource) func(ctx context.Context) (username, password string, err error) {
	return func(ctx context.Context) (string, string, error) {
		t, err := src.Token(ctx)
		if err != nil {
			return "", "", err
		}
		return src.user, t.value, nil
	}
}

// credentials is the auth.Credentials handed to go-redis; printing it shows
// no token.
type credentials struct {
	user  string
	token string
}

func (c credentials) BasicAuth() (string, string) { return c.user, c.token }
func (c credentials) RawCredentials() string      { return c.user + ":" + c.token }
func (c credentials) String() string              { return "elasticacheauth.credentials(" + c.user + " REDACTED)" }
func (c credentials) GoString() string            { return c.String() }
func (c credentials) LogValue() slog.Value        { return slog.StringValue(c.String()) }
func (c credentials) Format(f fmt.State, _ rune)  { f.Write([]byte(c.String())) }

// StreamingOptions configure a StreamingCredentialsProvider. Every field has
// a usable zero value.
type StreamingOptions struct {
	// Interval between pushes of a current token to every live connection,
	// each of which go-redis then re-authenticates (one AUTH round trip per
	// connection, sent when the connection is next idle). ElastiCache
	// closes a connection 12 hours after its last authentication; the
	// default, 15 minutes, keeps connections far inside that and pushes a
	// token at most about one token lifetime old.
	Interval time.Duration
	// RetryInterval: after a round that got no token (STS or the
	// credentials provider failing), the next round comes this long later,
	// doubling with each further failed round up to Interval, with jitter.
	// Default 10 s.
	RetryInterval time.Duration
	// SubscribeTimeout bounds waiting for a token when a new connection
	// subscribes (go-redis gives Subscribe no context). Default 30 s.
	SubscribeTimeout time.Duration
	// Logger receives a warning for each round that got no token; never a
	// token. Default: no logging.
	Logger *slog.Logger

	clock clock.Clock // tests set a fake one through export_goredis_test.go
}

// minTokenValidity: a token is pushed to live connections, or handed to a
// new connection as the last good one, only while it stays valid at least
// this long. A push marks connections that go-redis re-authenticates when
// each is next idle, and go-redis opens replacement connections meanwhile;
// both need the token to be still good by then.
const minTokenValidity = 5 * time.Second

// StreamingCredentialsProvider implements go-redis's
// auth.StreamingCredentialsProvider with tokens from a TokenSource: each
// connection subscribes when it opens and gets the current token, and every
// Interval all subscribed connections receive a current token, which makes
// go-redis re-authenticate them (AUTH user token) before ElastiCache's
// 12-hour cut. Subscribing the same listener again is idempotent, as the
// interface requires.
//
// An STS or credentials outage never reaches go-redis as an error: go-redis
// closes a connection whose listener gets one, while ElastiCache keeps an
// authenticated connection for 12 hours after its last authentication,
// whatever happens to STS or to the credentials meanwhile. So a round that
// gets no token pushes nothing and is retried with back-off (RetryInterval
// doubling up to Interval); the first round that gets one pushes it to every
// connection. New connections get the last good token while it is still
// valid when no fresh one can be had; only when none is left do they fail
// to connect, while the live ones keep serving. It is safe for concurrent
// use; Close stops it.
type StreamingCredentialsProvider struct {
	src *TokenSource
	o   StreamingOptions
	clk clock.Clock

	mu        sync.Mutex
	listeners map[auth.CredentialsListener]*subscription
	extra     []*subscription // listeners whose type is not comparable
	timer     clock.Timer
	closed    bool
	failures  int // rounds in a row that got no token

	last   atomic.Pointer[Token] // newest token obtained from src
	pushes atomic.Int64
}

type subscription struct {
	l auth.CredentialsListener
}

var _ auth.StreamingCredentialsProvider = (*StreamingCredentialsProvider)(nil)

// NewStreamingCredentialsProvider returns a provider pushing tokens from
// src. Set it as redis.Options.StreamingCredentialsProvider (or the
// ClusterOptions field).
func NewStreamingCredentialsProvider(src *TokenSource, optFns ...func(*StreamingOptions)) *StreamingCredentialsProvider {
	var o StreamingOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Interval <= 0 {
		o.Interval = 15 * time.Minute
	}
	if o.RetryInterval <= 0 {
		o.RetryInterval = 10 * time.Second
	}
	if o.SubscribeTimeout <= 0 {
		o.SubscribeTimeout = 30 * time.Second
	}
	p := &StreamingCredentialsProvider{src: src, o: o, clk: clock.Or(o.clock), listeners: map[auth.CredentialsListener]*subscription{}}
	p.mu.Lock()
	p.timer = p.clk.AfterFunc(o.Interval, p.tick)
	p.mu.Unlock()
	return p
}

// Subscribe registers listener for token pushes and returns the current
// credentials: a token from the source or, if it has none to give, the
// last good one while it is still valid. Subscribing a listener that is
// already subscribed returns the same subscription; any of the unsubscribe
// functions returned for it ends it, later calls are no-ops.
func (p *StreamingCredentialsProvider) Subscribe(listener auth.CredentialsListener) (auth.Credentials, auth.UnsubscribeFunc, error) {
	if listener == nil {
		return nil, nil, fmt.Errorf("%w: nil credentials listener", ErrInvalidOptions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.SubscribeTimeout)
	defer cancel()
	t, err := p.token(ctx)
	if err != nil {
		return nil, nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, nil, ErrClosed
	}
	var sub *subscription
	if reflect.TypeOf(listener).Comparable() {
		sub = p.listeners[listener]
		if sub == nil {
			sub = &subscription{l: listener}
			p.listeners[listener] = sub
		}
	} else {
		sub = &subscription{l: listener}
		p.extra = append(p.extra, sub)
	}
	return credentials{user: p.src.user, token: t.value}, func() error { p.unsubscribe(sub); return nil }, nil
}

// token returns a token from the source or, when the source has none to
// give, the last good one if it stays valid long enough to connect with.
func (p *StreamingCredentialsProvider) token(ctx context.Context) (Token, error) {
	t, err := p.src.Token(ctx)
	if err == nil {
		p.remember(t)
		return t, nil
	}
	if l := p.last.Load(); l != nil && p.clk.Now().Add(minTokenValidity).Before(l.Expires()) {
		return *l, nil
	}
	return Token{}, err
}

// credentialsContext is a CredentialsProviderContext hook with the same
// fallback to the last good token as Subscribe.
func (p *StreamingCredentialsProvider) credentialsContext(ctx context.Context) (string, string, error) {
	t, err := p.token(ctx)
	if err != nil {
		return "", "", err
	}
	return p.src.user, t.value, nil
}

// remember keeps t as the last good token unless a newer one is kept.
func (p *StreamingCredentialsProvider) remember(t Token) {
	for {
		l := p.last.Load()
		if l != nil && l.info().serial >= t.info().serial {
			return
		}
		if p.last.CompareAndSwap(l, &t) {
			return
		}
	}
}

func (p *StreamingCredentialsProvider) unsubscribe(sub *subscription) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if reflect.TypeOf(sub.l).Comparable() {
		if p.listeners[sub.l] == sub {
			delete(p.listeners, sub.l)
		}
		return
	}
	for i, s := range p.extra {
		if s == sub {
			p.extra = append(p.extra[:i], p.extra[i+1:]...)
			return
		}
	}
}

// Listeners reports how many listeners (connections) are subscribed.
func (p *StreamingCredentialsProvider) Listeners() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.listeners) + len(p.extra)
}

// Pushes reports how many times a token was pushed to the listeners.
func (p *StreamingCredentialsProvider) Pushes() int64 { return p.pushes.Load() }

// Push sends a current token to every subscribed connection now, as the
// periodic push does. When the source has no token to give, or only one
// about to expire, it pushes nothing and returns the error; the
// connections are not told (they stay authenticated).
func (p *StreamingCredentialsProvider) Push(ctx context.Context) error {
	t, err := p.src.Token(ctx)
	if err != nil {
		return fmt.Errorf("elasticacheauth: no token to re-authenticate live connections with (they stay authenticated): %w", err)
	}
	p.remember(t)
	if left := t.Expires().Sub(p.clk.Now()); left < minTokenValidity {
		return fmt.Errorf("elasticacheauth: no token to re-authenticate live connections with (they stay authenticated): the newest one expires in %v, too soon for connections to use it", left.Round(time.Millisecond))
	}
	c := credentials{user: p.src.user, token: t.value}
	for _, l := range p.snapshot() {
		l.OnNext(c)
	}
	p.pushes.Add(1)
	return nil
}

func (p *StreamingCredentialsProvider) snapshot() []auth.CredentialsListener {
	p.mu.Lock()
	defer p.mu.Unlock()
	ls := make([]auth.CredentialsListener, 0, len(p.listeners)+len(p.extra))
	for l := range p.listeners {
		ls = append(ls, l)
	}
	for _, s := range p.extra {
		ls = append(ls, s.l)
	}
	return ls
}

func (p *StreamingCredentialsProvider) tick() {
	ctx, cancel := context.WithTimeout(context.Background(), p.o.SubscribeTimeout)
	err := p.Push(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	next := p.o.Interval
	if err != nil {
		p.failures++
		next = p.retryDelay(p.failures)
		if p.o.Logger != nil {
			p.o.Logger.Warn("elasticacheauth: a re-authentication round got no token; live connections stay authenticated",
				"user", p.src.user, "cache", p.src.cacheName, "failed_rounds", p.failures, "retry_in", next, "err", err)
		}
	} else {
		p.failures = 0
	}
	if !p.closed {
		p.timer = p.clk.AfterFunc(next, p.tick)
	}
}

// retryDelay is RetryInterval doubled for each failed round after the
// first, capped at Interval, less up to a quarter of it as jitter so that
// many clients do not retry in step.
func (p *StreamingCredentialsProvider) retryDelay(failures int) time.Duration {
	d := p.o.RetryInterval
	for i := 1; i < failures && d < p.o.Interval; i++ {
		d *= 2
	}
	d = min(d, p.o.Interval)
	return d - time.Duration(rand.Float64()*float64(d)/4)
}

// Close stops the pushes and drops every subscription. It does not close
// the TokenSource.
func (p *StreamingCredentialsProvider) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil
	}
	p.closed = true
	if p.timer != nil {
		p.timer.Stop()
	}
	clear(p.listeners)
	p.extra = nil
	return nil
}

// InvalidateOnWrongPass returns a go-redis hook that, when the server
// refuses one of src's tokens with WRONGPASS (in HELLO … AUTH or AUTH, at
// connect or re-authentication), drops that token from src's cache so the
// next connection attempt uses a freshly minted one. It retries nothing
// itself. Add it with client.AddHook (cluster: in OnNewNode); NewClient and
// NewClusterClient do.
func InvalidateOnWrongPass(src *TokenSource) redis.Hook { return wrongPassHook{src} }

type wrongPassHook struct{ src *TokenSource }

func (h wrongPassHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (h wrongPassHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if err != nil && redis.HasErrorPrefix(err, "WRONGPASS") {
			if tok, ok := authSecret(cmd); ok {
				h.src.invalidateValue(tok)
			}
		}
		return err
	}
}

func (h wrongPassHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// authSecret extracts the password of an AUTH or HELLO … AUTH command.
func authSecret(cmd redis.Cmder) (string, bool) {
	args := cmd.Args()
	switch strings.ToLower(cmd.Name()) {
	case "auth":
		if len(args) >= 2 {
			s, ok := args[len(args)-1].(string)
			return s, ok
		}
	case "hello":
		for i := 1; i+2 < len(args); i++ {
			if s, ok := args[i].(string); ok && strings.EqualFold(s, "auth") {
				p, ok := args[i+2].(string)
				return p, ok
			}
		}
	}
	return "", false
}
