package secrets

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

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
	// Logger, if set, records failed fetches at level Warn. Values are
	// never logged.
	Logger *slog.Logger
	// ClientOptions are applied to every GetSecretValue call.
	ClientOptions []func(*secretsmanager.Options)
	// Clock is the time source; tests inject a fake one. Default: the
	// system clock.
	Clock clock.Clock
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

type key struct {
	id, versionID, stage string
}

// entry is one cached secret version. The read path touches only the
// atomics; everything else is guarded by mu.
type entry struct {
	k     key
	val   atomic.Pointer[Value]
	fresh atomic.Bool   // val may be served without asking Secrets Manager
	used  atomic.Uint64 // recency stamp for LRU eviction

	mu      sync.Mutex
	call    *call
	staleAt time.Time // end of the TTL of val
	deadAt  time.Time // staleAt + MaxStaleness: val is never served after
	gen     uint64    // invalidates timers of earlier values
	timer   clock.Timer
}

type call struct {
	done chan struct{}
	val  *Value
	err  error
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
	clk    clock.Clock

	snap    atomic.Pointer[snapshot] // copy-on-write, replaced under mu
	epoch   atomic.Uint64
	fetches atomic.Int64

	mu       sync.Mutex
	watchers map[key][]*watcher
	nwatch   atomic.Int32 // len(watchers), read without mu
	refresh  clock.Timer

	closeMu sync.RWMutex // held shared while starting fetches
	closed  atomic.Bool
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup
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
	c := &Cache{client: client, opts: o, clk: clock.Or(o.Clock), watchers: map[key][]*watcher{}}
	c.base, c.cancel = context.WithCancel(context.Background())
	c.snap.Store(&snapshot{})
	if o.RefreshInterval > 0 {
		c.refresh = c.clk.AfterFunc(o.RefreshInterval, c.refreshAll)
	}
	return c, nil
}

// Client returns the client the cache reads with (the escape hatch to the
// rest of the Secrets Manager API when it is a *secretsmanager.Client).
func (c *Cache) Client() GetSecretValueAPIClient { return c.client }

// Fetches reports how many GetSecretValue calls the cache has made.
func (c *Cache) Fetches() int64 { return c.fetches.Load() }

// Len reports how many secret versions are cached.
func (c *Cache) Len() int { return c.snap.Load().len() }

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
	return v.str, nil
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

func (c *Cache) keyFor(id string, optFns []func(*GetOptions)) key {
	k := key{id: id}
	if len(optFns) > 0 {
		var o GetOptions
		for _, fn := range optFns {
			fn(&o)
		}
		k.versionID, k.stage = o.VersionID, o.VersionStage
	}
	return k
}

func (c *Cache) keyErr(k key, err error) *Error {
	return &Error{SecretID: k.id, VersionID: k.versionID, VersionStage: k.stage, MaxStaleness: c.opts.MaxStaleness, Err: err}
}

// value is the read path: a map lookup in an immutable snapshot and a few
// atomic loads when the secret is cached and fresh.
func (c *Cache) value(ctx context.Context, id string, optFns []func(*GetOptions)) (*Value, error) {
	if len(optFns) == 0 {
		// AWSCURRENT by name or ARN, the common case: one string hash.
		if e := c.snap.Load().current[id]; e != nil && e.fresh.Load() {
			c.touch(e)
			return e.val.Load(), nil
		}
		return c.slow(ctx, key{id: id})
	}
	k := c.keyFor(id, optFns)
	if e := c.snap.Load().get(k); e != nil && e.fresh.Load() {
		c.touch(e)
		return e.val.Load(), nil
	}
	return c.slow(ctx, k)
}

// snapshot is an immutable view of the cache's entries: those reading the
// default version (AWSCURRENT) keyed by id alone, the rest by full key.
type snapshot struct {
	current map[string]*entry
	other   map[key]*entry
}

func (s *snapshot) get(k key) *entry {
	if k.versionID == "" && k.stage == "" {
		return s.current[k.id]
	}
	return s.other[k]
}

func (s *snapshot) len() int { return len(s.current) + len(s.other) }

func (s *snapshot) each(fn func(*entry)) {
	for _, e := range s.current {
		fn(e)
	}
	for _, e := range s.other {
		fn(e)
	}
}

// with returns a copy of s with k set to e (nil: removed).
func (s *snapshot) with(k key, e *entry) *snapshot {
	n := &snapshot{current: s.current, other: s.other}
	if k.versionID == "" && k.stage == "" {
		n.current = make(map[string]*entry, len(s.current)+1)
		for kk, x := range s.current {
			n.current[kk] = x
		}
		if e == nil {
			delete(n.current, k.id)
		} else {
			n.current[k.id] = e
		}
		return n
	}
	n.other = make(map[key]*entry, len(s.other)+1)
	for kk, x := range s.other {
		n.other[kk] = x
	}
	if e == nil {
		delete(n.other, k)
	} else {
		n.other[k] = e
	}
	return n
}

// touch records a read for LRU eviction. Only a read of an entry other than
// the most recently read one writes shared memory, so a hot secret read by
// many goroutines does not bounce a cache line between cores.
func (c *Cache) touch(e *entry) {
	if e.used.Load() != c.epoch.Load() {
		e.used.Store(c.epoch.Add(1))
	}
}

func (c *Cache) slow(ctx context.Context, k key) (*Value, error) {
	if c.closed.Load() {
		return nil, ErrClosed
	}
	if k.id == "" {
		return nil, errors.New("secrets: empty secret id; pass a secret name or ARN")
	}
	e := c.entry(k)
	e.mu.Lock()
	if v := e.val.Load(); v != nil && e.fresh.Load() {
		e.mu.Unlock()
		c.touch(e)
		return v, nil
	}
	cl := e.call
	if cl == nil {
		if cl = c.startLocked(e); cl == nil {
			e.mu.Unlock()
			return nil, ErrClosed
		}
	}
	e.mu.Unlock()
	select {
	case <-cl.done:
		if cl.err != nil {
			return nil, cl.err
		}
		return cl.val, nil
	case <-ctx.Done():
		// The caller cannot wait any longer: a stale value within bounds
		// beats no value.
		e.mu.Lock()
		v, dead := e.val.Load(), e.deadAt
		e.mu.Unlock()
		if v != nil && c.clk.Now().Before(dead) {
			return v, nil
		}
		return nil, c.keyErr(k, fmt.Errorf("waiting for Secrets Manager: %w", context.Cause(ctx)))
	}
}

// entry returns the cache entry for k, inserting one (and evicting the
// least recently read unwatched entry if the cache is full).
func (c *Cache) entry(k key) *entry {
	if e := c.snap.Load().get(k); e != nil {
		return e
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snap.Load()
	if e := s.get(k); e != nil {
		return e
	}
	if s.len() >= c.opts.MaxEntries {
		var victim *entry
		s.each(func(e *entry) {
			if len(c.watchers[e.k]) > 0 {
				return
			}
			if victim == nil || e.used.Load() < victim.used.Load() {
				victim = e
			}
		})
		if victim != nil {
			s = s.with(victim.k, nil)
			victim.stop()
		}
	}
	e := &entry{k: k}
	e.used.Store(c.epoch.Add(1))
	c.snap.Store(s.with(k, e))
	return e
}

// forget removes e from the cache if it is still the entry for its key.
func (c *Cache) forget(e *entry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.snap.Load()
	if s.get(e.k) != e || len(c.watchers[e.k]) > 0 {
		return
	}
	c.snap.Store(s.with(e.k, nil))
}

func (e *entry) stop() {
	e.mu.Lock()
	if e.timer != nil {
		e.timer.Stop()
		e.timer = nil
	}
	e.gen++
	e.mu.Unlock()
}

// startLocked starts a fetch for e; e.mu is held. It returns nil once the
// cache is closed.
func (c *Cache) startLocked(e *entry) *call {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return nil
	}
	cl := &call{done: make(chan struct{})}
	e.call = cl
	c.wg.Add(1)
	c.fetches.Add(1)
	go c.run(e, cl)
	return cl
}

// startIfIdle starts a background refresh of e unless one is running.
func (c *Cache) startIfIdle(e *entry) {
	e.mu.Lock()
	if e.call == nil {
		c.startLocked(e)
	}
	e.mu.Unlock()
}

func (c *Cache) input(k key) *secretsmanager.GetSecretValueInput {
	in := &secretsmanager.GetSecretValueInput{SecretId: aws.String(k.id)}
	if k.versionID != "" {
		in.VersionId = aws.String(k.versionID)
	}
	if k.stage != "" {
		in.VersionStage = aws.String(k.stage)
	}
	return in
}

func (c *Cache) run(e *entry, cl *call) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(c.base, c.opts.FetchTimeout)
	out, err := c.client.GetSecretValue(ctx, c.input(e.k), c.opts.ClientOptions...)
	cancel()
	now := c.clk.Now()

	var report *Error
	var changed *Value
	e.mu.Lock()
	old := e.val.Load()
	switch {
	case err == nil && out == nil:
		err = errors.New("secrets: GetSecretValue returned no output")
		fallthrough
	case err != nil:
		if c.closed.Load() {
			err = ErrClosed
		}
		report = c.keyErr(e.k, err)
		switch {
		case old != nil && now.Before(e.staleAt):
			// A background refresh failed; the value is still fresh.
			cl.val = old
		case old != nil && now.Before(e.deadAt) && !c.closed.Load():
			report.StaleFor, report.ServedStale = now.Sub(e.staleAt), true
			cl.val = old
			// Serve the stale value without asking again until the
			// back-off ends, and never past deadAt.
			wait := min(c.opts.RetryBackoff, e.deadAt.Sub(now))
			c.armLocked(e, wait)
			e.fresh.Store(true)
		default:
			if old != nil {
				report.StaleFor = now.Sub(e.staleAt)
				e.val.Store(nil)
				e.fresh.Store(false)
			}
			cl.err = report
		}
	default:
		v := newValue(out)
		e.val.Store(v)
		e.staleAt = now.Add(c.opts.TTL)
		e.deadAt = e.staleAt.Add(c.opts.MaxStaleness)
		c.armLocked(e, c.opts.TTL)
		e.fresh.Store(true)
		cl.val = v
		if c.nwatch.Load() > 0 {
			changed = v
		}
	}
	e.call = nil
	empty := e.val.Load() == nil
	e.mu.Unlock()

	// Report and drop a failed entry before releasing the readers, so what
	// a reader observes after its read is settled.
	if report != nil {
		c.reportErr(report)
	}
	if empty {
		c.forget(e)
	}
	close(cl.done)
	if changed != nil {
		c.notify(e.k, changed)
	}
}

// armLocked schedules the end of the current value's freshness.
func (c *Cache) armLocked(e *entry, d time.Duration) {
	if e.timer != nil {
		e.timer.Stop()
	}
	e.gen++
	gen := e.gen
	e.timer = c.clk.AfterFunc(d, func() { c.expire(e, gen) })
}

func (c *Cache) expire(e *entry, gen uint64) {
	e.mu.Lock()
	if e.gen != gen {
		e.mu.Unlock()
		return
	}
	e.fresh.Store(false)
	e.timer = nil
	e.mu.Unlock()
	if c.watched(e.k) {
		c.startIfIdle(e)
	}
}

func (c *Cache) reportErr(err *Error) {
	if c.opts.OnError != nil {
		c.opts.OnError(err)
	}
	if c.opts.Logger != nil {
		msg := "secrets: fetching secret failed"
		if err.ServedStale {
			msg = "secrets: fetching secret failed; serving the cached value"
		}
		c.opts.Logger.Warn(msg, slog.String("secret_id", err.SecretID), slog.Duration("stale_for", err.StaleFor),
			slog.Bool("served_stale", err.ServedStale), slog.String("error", err.Error()))
	}
}

func (c *Cache) refreshAll() {
	if c.closed.Load() {
		return
	}
	c.snap.Load().each(func(e *entry) {
		if e.val.Load() != nil {
			c.startIfIdle(e)
		}
	})
	c.mu.Lock()
	if !c.closed.Load() {
		c.refresh = c.clk.AfterFunc(c.opts.RefreshInterval, c.refreshAll)
	}
	c.mu.Unlock()
}

func (c *Cache) watched(k key) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.watchers[k]) > 0
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
	k := c.keyFor(id, optFns)
	w := &watcher{fn: fn}
	c.mu.Lock()
	if c.closed.Load() {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	c.watchers[k] = append(c.watchers[k], w)
	c.nwatch.Store(int32(len(c.watchers)))
	c.mu.Unlock()
	stop = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
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

// Close stops background refreshes and in-flight fetches and drops every
// cached value. Reads return [ErrClosed] afterwards. Close is idempotent.
func (c *Cache) Close() error {
	c.closeMu.Lock()
	if c.closed.Swap(true) {
		c.closeMu.Unlock()
		return nil
	}
	c.closeMu.Unlock()
	c.mu.Lock()
	if c.refresh != nil {
		c.refresh.Stop()
	}
	old := c.snap.Swap(&snapshot{})
	c.watchers = map[key][]*watcher{}
	c.nwatch.Store(0)
	c.mu.Unlock()
	old.each(func(e *entry) {
		e.stop()
		e.fresh.Store(false)
	})
	c.cancel()
	c.wg.Wait()
	return nil
}
