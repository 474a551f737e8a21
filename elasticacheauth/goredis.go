package elasticacheauth

import (
	"context"
	"fmt"
	"log/slog"
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

// StreamingOptions configure a StreamingCredentialsProvider.
type StreamingOptions struct {
	// Interval between pushes of a current token to every live connection,
	// each of which go-redis then re-authenticates (one AUTH round trip per
	// connection, sent when the connection is next idle). ElastiCache
	// closes a connection 12 hours after its last authentication; the
	// default, 15 minutes, keeps connections far inside that and pushes a
	// token at most about one token lifetime old.
	Interval time.Duration
	// SubscribeTimeout bounds waiting for a token when a new connection
	// subscribes (go-redis gives Subscribe no context). Default 30 s.
	SubscribeTimeout time.Duration
	// clock schedules the pushes; tests set it through export_test.go.
	clock clock.Clock
}

// StreamingCredentialsProvider implements go-redis's
// auth.StreamingCredentialsProvider with tokens from a TokenSource: each
// connection subscribes when it opens and gets the current token, and every
// Interval all subscribed connections receive a current token, which makes
// go-redis re-authenticate them (AUTH user token) before ElastiCache's
// 12-hour cut. Subscribing the same listener again is idempotent, as the
// interface requires. It is safe for concurrent use; Close stops it.
type StreamingCredentialsProvider struct {
	src *TokenSource
	o   StreamingOptions
	clk clock.Clock

	mu        sync.Mutex
	listeners map[auth.CredentialsListener]*subscription
	extra     []*subscription // listeners whose type is not comparable
	timer     clock.Timer
	closed    bool

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
// credentials. Subscribing a listener that is already subscribed returns
// the same subscription; any of the unsubscribe functions returned for it
// ends it, later calls are no-ops.
func (p *StreamingCredentialsProvider) Subscribe(listener auth.CredentialsListener) (auth.Credentials, auth.UnsubscribeFunc, error) {
	if listener == nil {
		return nil, nil, fmt.Errorf("%w: nil credentials listener", ErrInvalidOptions)
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.o.SubscribeTimeout)
	defer cancel()
	t, err := p.src.Token(ctx)
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
// periodic push does.
func (p *StreamingCredentialsProvider) Push(ctx context.Context) error {
	t, err := p.src.Token(ctx)
	ls := p.snapshot()
	if err != nil {
		for _, l := range ls {
			l.OnError(err)
		}
		return err
	}
	c := credentials{user: p.src.user, token: t.value}
	for _, l := range ls {
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
	_ = p.Push(ctx)
	cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.timer = p.clk.AfterFunc(p.o.Interval, p.tick)
	}
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
