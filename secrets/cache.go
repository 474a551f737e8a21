package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/irsakit/irsakit/internal/cache"
	"github.com/irsakit/irsakit/internal/clock"
)

// GetSecretValueAPIClient is the one Secrets Manager call the cache makes.
// *secretsmanager.Client implements it; tests and wrappers may supply their
// own.
type GetSecretValueAPIClient interface {
	GetSecretValue(ctx context.Context, params *secretsmanager.GetSecretValueInput, optFns ...func(*secretsmanager.Options)) (*secretsmanager.GetSecretValueOutput, error)
}

var _ GetSecretValueAPIClient = (*secretsmanager.Client)(nil)

// Defaults of [Options].
const (
	DefaultTTL          = time.Hour
	DefaultMaxEntries   = 1024
	DefaultMaxStaleness = time.Hour
	DefaultRetryBackoff = 5 * time.Second
	DefaultFetchTimeout = 30 * time.Second
)

// Options configure a [Cache]. Every field has a usable zero value.
type Options struct {
	// TTL is how long a fetched value is served before the next read
	// fetches it again. Default [DefaultTTL] (1 hour, as AWS's own caching
	// clients).
	TTL time.Duration
	// MaxEntries bounds how many secret versions are cached; the least
	// recently read is evicted first. Default [DefaultMaxEntries].
	MaxEntries int
	// MaxStaleness: when a refresh fails, the last good value keeps being
	// served for up to this long past its TTL (the failure goes to OnError
	// and Logger); after that reads fail with [ErrStale]. Default
	// [DefaultMaxStaleness]; negative: never serve a stale value.
	MaxStaleness time.Duration
	// RetryBackoff is the pause after a failed refresh, while the stale
	// value is served, before the next read tries again. Default
	// [DefaultRetryBackoff].
	RetryBackoff time.Duration
	// RefreshInterval, if positive, refreshes every cached secret in the
	// background at this interval, so reads never wait for Secrets Manager
	// once a secret is cached and rotations reach [Cache.Watch] callbacks
	// promptly. Default 0: values are refreshed when read after their TTL
	// (watched secrets are still refreshed when their TTL ends).
	RefreshInterval time.Duration
	// FetchTimeout bounds one GetSecretValue call, which runs detached from
	// the context of the reads waiting for it. Default [DefaultFetchTimeout].
	FetchTimeout time.Duration
	// OnError, if set, is called with every failed fetch (an *[Error]),
	// including those hidden from readers because a stale value was served.
	OnError func(err error)
	// Logger records failed fetches at level Warn and the first success
	// after failures at level Info. Values are never logged. Default:
	// slog.Default().
	Logger *slog.Logger
	// ClientOptions are applied to every GetSecretValue call.
	ClientOptions []func(*secretsmanager.Options)

	// clock is the time source; tests set it through export_test.go.
	clock clock.Clock
}

// GetOptions select the version of a secret to read. The zero value reads
// the AWSCURRENT version.
type GetOptions struct {
	// VersionStage is a staging label, e.g. "AWSPREVIOUS" or "AWSPENDING".
	VersionStage string
	// VersionID is a version's unique identifier.
	VersionID string
}

// WithVersionStage reads the version carrying a staging label.
func WithVersionStage(stage string) func(*GetOptions) {
	return func(o *GetOptions) { o.VersionStage = stage }
}

// WithVersionID reads one version by its id.
func WithVersionID(id string) func(*GetOptions) {
	return func(o *GetOptions) { o.VersionID = id }
}

// key identifies a cached secret version: the id alone for AWSCURRENT (the
// common read: one string to hash, nothing to build), else a NUL, the id,
// the version id and the stage, joined by NUL. No id starts with NUL, and
// version ids and stages hold none.
type key = string

func makeKey(id, versionID, stage string) key {
	if versionID == "" && stage == "" {
		return id
	}
	return "\x00" + id + "\x00" + versionID + "\x00" + stage
}

func splitKey(k key) (id, versionID, stage string) {
	if len(k) == 0 || k[0] != 0 {
		return k, "", ""
	}
	i := strings.LastIndexByte(k, 0)
	j := strings.LastIndexByte(k[:i], 0)
	return k[1:j], k[j+1 : i], k[i+1:]
}

type watcher struct {
	fn    func(Value)
	mu    sync.Mutex
	ready bool   // the watch has its baseline
	last  string // version id last seen
}

// Cache is a Secrets Manager cache. It is safe for concurrent use. Reads of
// a cached, fresh secret take no lock and allocate nothing; concurrent
// reads of a missing or expired secret share one GetSecretValue call.
type Cache struct {
	client GetSecretValueAPIClient
	opts   Options
	c      *cache.Cache[key, *Value]

	mu       sync.Mutex
	watchers map[key][]*watcher
	nwatch   atomic.Int32 // len(watchers), read without mu
	closed   atomic.Bool
}

// New returns a cache reading secrets with a Secrets Manager client built
// from cfg (for example an irsa session's Config()). cfg must have a Region.
func New(cfg aws.Config, optFns ...func(*Options)) (*Cache, error) {
	if cfg.Region == "" {
		return nil, errors.New("secrets: aws.Config has no Region; set AWS_REGION or pass config.WithRegion")
	}
	return NewFromClient(secretsmanager.NewFromConfig(cfg), optFns...)
}

// NewFromClient returns a cache reading secrets through client: a
// *secretsmanager.Client configured by the caller, or any implementation of
// [GetSecretValueAPIClient].
func NewFromClient(client GetSecretValueAPIClient, optFns ...func(*Options)) (*Cache, error) {
	if client == nil {
		return nil, errors.New("secrets: nil GetSecretValueAPIClient")
	}
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.TTL <= 0 {
		o.TTL = DefaultTTL
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = DefaultMaxEntries
	}
	if o.MaxStaleness == 0 {
		o.MaxStaleness = DefaultMaxStaleness
	} else if o.MaxStaleness < 0 {
		o.MaxStaleness = 0
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = DefaultRetryBackoff
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = DefaultFetchTimeout
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	c := &Cache{client: client, opts: o, watchers: map[key][]*watcher{}}
	c.c = cache.New(c.fetch, func(co *cache.Options[key, *Value]) {
		co.Clock = o.clock
		co.TTL = o.TTL
		co.MaxStaleness = o.MaxStaleness
		co.RetryBackoff = o.RetryBackoff
		co.FetchTimeout = o.FetchTimeout
		co.MaxEntries = o.MaxEntries
		co.RefreshInterval = o.RefreshInterval
		co.WrapError = c.wrapErr
		co.OnFetch = c.onFetch
	})
	return c, nil
}

// Client returns the client the cache reads with (the escape hatch to the
// rest of the Secrets Manager API when it is a *secretsmanager.Client).
func (c *Cache) Client() GetSecretValueAPIClient { return c.client }

// Fetches reports how many GetSecretValue calls the cache has made.
func (c *Cache) Fetches() int64 { return c.c.Stats().Fetches }

// Len reports how many secret versions are cached.
func (c *Cache) Len() int { return c.c.Len() }

// Get returns the secret named id (a name, a full ARN or a partial ARN),
// its AWSCURRENT version unless optFns select another.
func (c *Cache) Get(ctx context.Context, id string, optFns ...func(*GetOptions)) (Value, error) {
	v, err := c.value(ctx, id, optFns)
	if err != nil {
		return Value{}, err
	}
	return *v, nil
}

// String returns the text of a secret that holds SecretString.
func (c *Cache) String(ctx context.Context, id string, optFns ...func(*GetOptions)) (string, error) {
	v, err := c.value(ctx, id, optFns)
	if err != nil {
		return "", err
	}
	if v.binary {
		return "", c.keyErr(c.keyFor(id, optFns), ErrBinary)
	}
	return v.str.Value(), nil
}

// Bytes returns a copy of a secret's content: SecretBinary, or the bytes of
// SecretString.
func (c *Cache) Bytes(ctx context.Context, id string, optFns ...func(*GetOptions)) ([]byte, error) {
	v, err := c.value(ctx, id, optFns)
	if err != nil {
		return nil, err
	}
	return v.Bytes(), nil
}

// Refresh fetches a secret from Secrets Manager now, whatever its TTL
// (sharing a fetch already in flight), caches it and returns it. Use it
// when the cached value was refused, e.g. a database answered a password
// that was rotated. When the fetch fails it returns the error, and a
// cached value within its bounds keeps being served to readers.
func (c *Cache) Refresh(ctx context.Context, id string, optFns ...func(*GetOptions)) (Value, error) {
	if err := checkID(id); err != nil {
		return Value{}, err
	}
	k := c.keyFor(id, optFns)
	v, err := c.c.Refresh(ctx, k)
	if err != nil {
		return Value{}, c.readErr(k, err)
	}
	return *v, nil
}

// Invalidate drops the cached value of a secret: the next read fetches it
// again. A watched secret stays watched.
func (c *Cache) Invalidate(id string, optFns ...func(*GetOptions)) {
	c.c.Invalidate(c.keyFor(id, optFns))
}

var errEmptyID = errors.New("secrets: empty secret id; pass a secret name or ARN")

func checkID(id string) error {
	switch {
	case id == "":
		return errEmptyID
	case id[0] == 0:
		return fmt.Errorf("secrets: secret id %q starts with a NUL byte; pass a secret name or ARN", id)
	}
	return nil
}

func (c *Cache) keyFor(id string, optFns []func(*GetOptions)) key {
	if len(optFns) == 0 {
		return id
	}
	var o GetOptions
	for _, fn := range optFns {
		fn(&o)
	}
	return makeKey(id, o.VersionID, o.VersionStage)
}

func (c *Cache) keyErr(k key, err error) *Error {
	id, versionID, stage := splitKey(k)
	return &Error{SecretID: id, VersionID: versionID, VersionStage: stage, MaxStaleness: c.opts.MaxStaleness, Err: err}
}

// value is the read path: one map lookup and two atomic loads when the
// secret is cached and fresh.
func (c *Cache) value(ctx context.Context, id string, optFns []func(*GetOptions)) (*Value, error) {
	if id == "" || id[0] == 0 {
		if c.closed.Load() {
			return nil, ErrClosed
		}
		return nil, checkID(id)
	}
	k := id
	if len(optFns) > 0 {
		k = c.keyFor(id, optFns)
	}
	v, err := c.c.Get(ctx, k)
	if err != nil {
		return nil, c.readErr(k, err)
	}
	return v, nil
}

// readErr turns what the shared cache returned into the package's errors.
func (c *Cache) readErr(k key, err error) error {
	var we *cache.WaitError
	var se *Error
	switch {
	case errors.Is(err, cache.ErrClosed) || errors.Is(err, ErrClosed):
		return ErrClosed
	case errors.As(err, &we):
		return c.keyErr(k, fmt.Errorf("waiting for Secrets Manager: %w", we.Cause))
	case errors.As(err, &se):
		return err
	}
	return c.keyErr(k, err)
}

func (c *Cache) input(k key) *secretsmanager.GetSecretValueInput {
	id, versionID, stage := splitKey(k)
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(id)}
	if versionID != "" {
		in.VersionId = aws.String(versionID)
	}
	if stage != "" {
		in.VersionStage = aws.String(stage)
	}
	return in
}

// fetch is the one GetSecretValue call behind every cached version. A
// secret's value carries no expiry: Options.TTL decides.
func (c *Cache) fetch(ctx context.Context, k key) (*Value, time.Time, error) {
	out, err := c.client.GetSecretValue(ctx, c.input(k), c.opts.ClientOptions...)
	if err != nil {
		return nil, time.Time{}, err
	}
	if out == nil {
		return nil, time.Time{}, errors.New("secrets: GetSecretValue returned no output")
	}
	return newValue(out), time.Time{}, nil
}

// wrapErr shapes a failed fetch as the *Error readers and OnError receive.
func (c *Cache) wrapErr(k key, f cache.Failure) error {
	err := f.Err
	if errors.Is(err, cache.ErrClosed) {
		err = ErrClosed
	}
	e := c.keyErr(k, err)
	e.StaleFor, e.ServedStale = f.StaleFor, f.ServedStale
	return e
}

func (c *Cache) onFetch(ev cache.Event[key, *Value]) {
	if ev.Err != nil {
		var e *Error
		if !errors.As(ev.Err, &e) {
			e = c.keyErr(ev.Key, ev.Err)
		}
		c.reportErr(e, ev.Failures)
		return
	}
	if ev.Recovered {
		id, _, _ := splitKey(ev.Key)
		c.opts.Logger.Info("secrets: fetching secret works again", slog.String("secret_id", id),
			slog.Int("failures", ev.Failures))
	}
	if c.nwatch.Load() > 0 {
		c.notify(ev.Key, ev.Value)
	}
}

func (c *Cache) reportErr(err *Error, failures int) {
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
	msg := "secrets: fetching secret failed"
	if err.ServedStale {
		msg = "secrets: fetching secret failed; serving the cached value"
	}
	c.opts.Logger.Warn(msg, slog.String("secret_id", err.SecretID), slog.String("error_class", cache.Class(err)),
		slog.Int("failures", failures), slog.Duration("stale_for", err.StaleFor),
		slog.Bool("served_stale", err.ServedStale), slog.String("error", err.Error()))
}

// Watch calls fn with each new version of a secret the cache fetches after
// Watch returns (a rotation: a new AWSCURRENT version id). It reads the
// secret first, so a secret that cannot be read fails here. A watched
// secret is never evicted and is refreshed when its TTL ends (or every
// [Options.RefreshInterval]) even if nobody reads it. fn runs on the
// refresh goroutine, one call at a time per watch; it must not call Close.
// The returned stop function ends the watch.
func (c *Cache) Watch(ctx context.Context, id string, fn func(Value), optFns ...func(*GetOptions)) (stop func(), err error) {
	if fn == nil {
		return nil, errors.New("secrets: Watch needs a callback")
	}
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if err := checkID(id); err != nil {
		return nil, err
	}
	k := c.keyFor(id, optFns)
	w := &watcher{fn: fn}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	release, err := c.c.KeepFresh(k)
	if err != nil {
		c.mu.Unlock()
		return nil, c.readErr(k, err)
	}
	c.watchers[k] = append(c.watchers[k], w)
	c.nwatch.Store(int32(len(c.watchers)))
	c.mu.Unlock()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			c.mu.Lock()
			ws := c.watchers[k]
			for i, x := range ws {
				if x == w {
					c.watchers[k] = append(ws[:i:i], ws[i+1:]...)
					break
				}
			}
			if len(c.watchers[k]) == 0 {
				delete(c.watchers, k)
			}
			c.nwatch.Store(int32(len(c.watchers)))
			c.mu.Unlock()
			release()
		})
	}
	v, err := c.value(ctx, id, optFns)
	if err != nil {
		stop()
		return nil, err
	}
	w.mu.Lock()
	if !w.ready {
		w.ready, w.last = true, v.VersionID
	}
	w.mu.Unlock()
	return stop, nil
}

func (c *Cache) notify(k key, v *Value) {
	c.mu.Lock()
	ws := append([]*watcher(nil), c.watchers[k]...)
	c.mu.Unlock()
	for _, w := range ws {
		w.mu.Lock()
		if w.ready && w.last != v.VersionID {
			w.last = v.VersionID
			w.fn(*v)
		}
		w.mu.Unlock()
	}
}

// Close stops background refreshes, cancels the fetches in flight and
// waits for them, and drops every cached value. Reads return [ErrClosed]
// afterwards. Close is idempotent.
func (c *Cache) Close() error {
	c.mu.Lock()
	if c.closed.Swap(true) {
		c.mu.Unlock()
		return nil
	}
	c.watchers = map[key][]*watcher{}
	c.nwatch.Store(0)
	c.mu.Unlock()
	return c.c.Close()
}
