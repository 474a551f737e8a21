// Package cache is the one caching mechanism behind irsakit's minted tokens
// (RDS and ElastiCache IAM tokens) and its Secrets Manager cache. It is
// shaped like the AWS SDK's aws.CredentialsCache, generalised to keyed
// entries:
//
//   - the hit path is a map lookup (or none, through a [Handle]), one atomic
//     pointer load and one atomic flag load: no clock read, no lock, no
//     allocation (a timer flips the flag when the value is due for refresh);
//   - concurrent misses of one key share one fetch (single flight); the fetch
//     runs on a context detached from the callers' (their values are kept,
//     their cancellation is not), while each caller waits only as long as its
//     own context allows;
//   - a value is servable until its expiry minus [Options.Margin] or for
//     [Options.TTL] after it was fetched, and may be refreshed early, at a
//     jittered point before that ([Options.RefreshBefore]), while it keeps
//     being served;
//   - a failed refresh keeps serving a still-servable value (stale while
//     valid) and, with [Options.MaxStaleness], a value past its servable time
//     for a bounded time (stale on error), with [Options.RetryBackoff]
//     between attempts;
//   - a fetch that panics fails with an error instead of crashing the
//     process or leaving its waiters waiting;
//   - Close cancels the fetches in flight and waits for them.
//
// The cache counts fetches, failures and stale answers ([Cache.Stats]) for
// the packages that expose them to operators.
package cache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
)

// ErrClosed is returned by Get and Refresh after Close.
var ErrClosed = errors.New("cache: closed")

// Fetcher fetches the value of key and reports when it stops being valid
// (the zero time: never; then [Options.TTL] must be set).
type Fetcher[K comparable, V any] func(ctx context.Context, key K) (value V, expires time.Time, err error)

// Failure describes a failed fetch to [Options.WrapError].
type Failure struct {
	// Err is the fetcher's error (or ErrClosed, or a panic turned error).
	Err error
	// Kept: the cached value is still within its servable time and keeps
	// being served.
	Kept bool
	// ServedStale: the cached value is past its servable time but within
	// MaxStaleness, and keeps being served.
	ServedStale bool
	// StaleFor is how far past its servable time the cached value was; zero
	// when it was not past it or nothing was cached.
	StaleFor time.Duration
}

// Event describes one completed fetch to [Options.OnFetch].
type Event[K comparable, V any] struct {
	Key K
	// Value is the fetched value; the zero V on failure.
	Value V
	// Err is the failure as WrapError shaped it; nil on success.
	Err error
	// Failure details a failed fetch.
	Failure Failure
	// Early: the fetch started while the cached value could still be served.
	Early bool
	// Recovered: a success after one or more failed fetches of this key.
	Recovered bool
	// Failures is how many fetches of this key have failed in a row
	// (counting this one on failure; the run just ended on recovery).
	Failures int
}

// Options configure a Cache. The zero value of every field but the ones
// noted is "off".
type Options[K comparable, V any] struct {
	// Clock is the time source. Default: the system clock.
	Clock clock.Clock
	// TTL, if positive, makes a value servable for TTL after it was fetched
	// (and never past its expiry minus Margin). Zero: a value is servable
	// until its expiry minus Margin.
	TTL time.Duration
	// Margin: a value stops being served this long before its expiry.
	Margin time.Duration
	// RefreshBefore: a read this long (capped at half the value's servable
	// life) before the value stops being servable starts a refresh in the
	// background and is answered with the cached value.
	RefreshBefore time.Duration
	// JitterFrac randomises the early refresh point by up to this fraction
	// of RefreshBefore, so a fleet does not refresh in lock step (0 to 1).
	JitterFrac float64
	// MaxStaleness: when a refresh fails after a value stopped being
	// servable, the value keeps being served for up to this long past that
	// point (never past its expiry).
	MaxStaleness time.Duration
	// RetryBackoff is the pause between the starts of two refresh attempts
	// after one failed, while a value keeps being served. Default 5 s.
	RetryBackoff time.Duration
	// FetchTimeout bounds one fetch. Default 30 s.
	FetchTimeout time.Duration
	// MaxEntries bounds the number of keys; inserting one more evicts the
	// least recently read key that is not kept fresh. Zero: unbounded.
	MaxEntries int
	// RefreshInterval, if positive, refreshes every cached value in the
	// background at this interval.
	RefreshInterval time.Duration
	// Classify labels a failed fetch for Stats.LastErrorClass. Default:
	// [Class].
	Classify func(error) string
	// WrapError, if set, shapes the error of a failed fetch as waiters and
	// OnFetch receive it.
	WrapError func(key K, f Failure) error
	// OnFetch, if set, is called on the fetch's goroutine after each fetch
	// completes and its result is settled: for a failure before the
	// waiters are released (so a reader that saw the failure finds it
	// reported), for a success after (so a slow hook does not delay them).
	OnFetch func(Event[K, V])
}

// Cache holds values of type V by key K. It is safe for concurrent use.
type Cache[K comparable, V any] struct {
	fetch Fetcher[K, V]
	opts  Options[K, V]
	clk   clock.Clock
	lru   bool

	snap  atomic.Pointer[map[K]*entry[K, V]] // copy-on-write under mu
	epoch atomic.Uint64                      // LRU clock
	mu    sync.Mutex
	tick  clock.Timer // RefreshInterval

	closeMu sync.RWMutex // held shared while starting a fetch
	closed  atomic.Bool
	base    context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	stats counters
}

// slot is one fetched value and its schedule. Only fresh changes.
type slot[V any] struct {
	val        V
	expires    time.Time // the value's own expiry; zero: none
	refreshAt  time.Time // reads from here on start a refresh
	serveUntil time.Time // reads from here on wait for a refresh
	deadAt     time.Time // never served from here on
	fresh      atomic.Bool
	timer      clock.Timer // flips fresh at refreshAt; guarded by the entry's mu
}

type entry[K comparable, V any] struct {
	key     K
	cur     atomic.Pointer[slot[V]]
	used    atomic.Uint64 // LRU stamp
	keep    atomic.Int32  // holds of KeepFresh: refreshed when due, never evicted
	busy    atomic.Bool   // a fetch is in flight (mirror of call != nil)
	failed  atomic.Bool   // the last fetch failed and a value was kept
	retryAt atomic.Int64  // unix nanos before which no refresh of a kept value starts

	mu       sync.Mutex
	call     *call[V]
	held     bool // the entry has held a value: it stays to report recovery
	failures int
	retry    clock.Timer // retries a kept-fresh entry after a failure
}

type call[V any] struct {
	done   chan struct{}
	val    V
	served bool  // val may be given to readers
	stale  bool  // val is past its servable time
	err    error // the fetch failed (also when a value was kept)
}

// New returns a cache that fills itself with fetch.
func New[K comparable, V any](fetch Fetcher[K, V], optFns ...func(*Options[K, V])) *Cache[K, V] {
	var o Options[K, V]
	for _, fn := range optFns {
		fn(&o)
	}
	o.JitterFrac = min(max(o.JitterFrac, 0), 1)
	if o.Classify == nil {
		o.Classify = Class
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 30 * time.Second
	}
	c := &Cache[K, V]{fetch: fetch, opts: o, clk: clock.Or(o.Clock), lru: o.MaxEntries > 0}
	c.base, c.cancel = context.WithCancel(context.Background())
	m := map[K]*entry[K, V]{}
	c.snap.Store(&m)
	if o.RefreshInterval > 0 {
		c.mu.Lock()
		c.tick = c.clk.AfterFunc(o.RefreshInterval, c.refreshAll)
		c.mu.Unlock()
	}
	return c
}

// Get returns the value of key, fetching it if there is none that may be
// served. On a hit it neither locks nor allocates nor reads the clock.
func (c *Cache[K, V]) Get(ctx context.Context, key K) (V, error) {
	if e := (*c.snap.Load())[key]; e != nil {
		if s := e.cur.Load(); s != nil && s.fresh.Load() {
			if c.lru {
				c.touch(e)
			}
			return s.val, nil
		}
	}
	return c.slow(ctx, key)
}

// Handle is a reference to one key that skips the map lookup on a hit.
type Handle[K comparable, V any] struct {
	e   atomic.Pointer[entry[K, V]]
	lru bool
	c   *Cache[K, V]
	key K
}

// Handle returns a handle on key. It stays correct when the key's entry is
// evicted or replaced: it then takes the slow path once and follows.
func (c *Cache[K, V]) Handle(key K) *Handle[K, V] {
	h := &Handle[K, V]{c: c, key: key, lru: c.lru}
	if e := (*c.snap.Load())[key]; e != nil {
		h.e.Store(e)
	}
	return h
}

// Get is Cache.Get for the handle's key.
func (h *Handle[K, V]) Get(ctx context.Context) (V, error) {
	if e := h.e.Load(); e != nil {
		if s := e.cur.Load(); s != nil && s.fresh.Load() {
			if h.lru {
				h.c.touch(e)
			}
			return s.val, nil
		}
	}
	v, err := h.c.slow(ctx, h.key)
	if e := (*h.c.snap.Load())[h.key]; e != nil && e != h.e.Load() {
		h.e.Store(e)
	}
	return v, err
}

// touch records a read for LRU eviction. Only a read of an entry other than
// the most recently read one writes shared memory, so a hot key read by
// many goroutines does not bounce a cache line between cores.
func (c *Cache[K, V]) touch(e *entry[K, V]) {
	if e.used.Load() != c.epoch.Load() {
		e.used.Store(c.epoch.Add(1))
	}
}

func (c *Cache[K, V]) slow(ctx context.Context, key K) (V, error) {
	var zero V
	if c.closed.Load() {
		return zero, ErrClosed
	}
	e, err := c.entry(key)
	if err != nil {
		return zero, err
	}
	if c.lru {
		c.touch(e)
	}
	// Within its servable time a value is answered at once, without a lock:
	// a refresh starts in the background when it is due.
	if s := e.cur.Load(); s != nil {
		now := c.clk.Now()
		if now.Before(s.serveUntil) {
			if !s.fresh.Load() && !e.busy.Load() && now.UnixNano() >= e.retryAt.Load() {
				c.background(e, ctx)
			}
			if e.failed.Load() {
				c.stats.servedStale.Add(1)
			}
			return s.val, nil
		}
	}
	cl, v, ok := c.join(ctx, e)
	if ok {
		return v, nil
	}
	if cl == nil {
		return zero, ErrClosed
	}
	select {
	case <-cl.done:
		if cl.served {
			if cl.stale {
				c.stats.servedStale.Add(1)
			}
			return cl.val, nil
		}
		return zero, cl.err
	case <-ctx.Done():
		// The caller cannot wait any longer: a value within its staleness
		// bound beats no value.
		if s := e.cur.Load(); s != nil && c.clk.Now().Before(s.deadAt) {
			c.stats.servedStale.Add(1)
			return s.val, nil
		}
		return zero, &WaitError{Cause: context.Cause(ctx)}
	}
}

// WaitError is returned by Get when the caller's context ended before a
// value could be fetched. The fetch goes on for the other callers.
type WaitError struct{ Cause error }

func (e *WaitError) Error() string { return "waiting for a fresh value: " + e.Cause.Error() }

// Unwrap returns the context's cause.
func (e *WaitError) Unwrap() error { return e.Cause }

// join decides, under the entry's lock, whether a value can be answered now
// (ok) or the caller must wait for the fetch cl (nil: closed).
func (c *Cache[K, V]) join(ctx context.Context, e *entry[K, V]) (cl *call[V], v V, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.call != nil {
		return e.call, v, false
	}
	now := c.clk.Now()
	if s := e.cur.Load(); s != nil {
		// A fetch that finished since the caller looked stored a value.
		if now.Before(s.serveUntil) {
			if e.failed.Load() {
				c.stats.servedStale.Add(1)
			}
			return nil, s.val, true
		}
		// Past its servable time and inside its staleness bound, while
		// refreshes back off after a failure: answer with the stale value.
		if now.Before(s.deadAt) && now.UnixNano() < e.retryAt.Load() {
			c.stats.servedStale.Add(1)
			return nil, s.val, true
		}
	}
	return c.startLocked(ctx, e, false), v, false
}

// background starts a refresh of e unless one is running.
func (c *Cache[K, V]) background(e *entry[K, V], ctx context.Context) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.call == nil {
		c.startLocked(ctx, e, true)
	}
}

// startLocked starts a fetch for e; e.mu is held. It returns nil once the
// cache is closed.
func (c *Cache[K, V]) startLocked(ctx context.Context, e *entry[K, V], early bool) *call[V] {
	c.closeMu.RLock()
	defer c.closeMu.RUnlock()
	if c.closed.Load() {
		return nil
	}
	cl := &call[V]{done: make(chan struct{})}
	e.call = cl
	e.busy.Store(true)
	c.wg.Add(1)
	c.stats.fetches.Add(1)
	if early {
		c.stats.early.Add(1)
	}
	if ctx == nil {
		ctx = context.Background()
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
	stop := context.AfterFunc(c.base, cancel)
	startedAt := c.clk.Now()
	go func() {
		defer c.wg.Done()
		defer cancel()
		defer stop()
		c.run(fctx, e, cl, startedAt, early)
	}()
	return cl
}

// safeFetch calls the fetcher, turning a panic into an error. The panic's
// value is reported only when it is a runtime error (fixed texts): other
// values could carry a secret.
func (c *Cache[K, V]) safeFetch(ctx context.Context, key K) (v V, exp time.Time, err error) {
	defer func() {
		if r := recover(); r != nil {
			var zero V
			v, exp = zero, time.Time{}
			if re, ok := r.(runtime.Error); ok {
				err = fmt.Errorf("cache: the fetch panicked: %w", re)
			} else {
				err = fmt.Errorf("cache: the fetch panicked with a %T", r)
			}
		}
	}()
	return c.fetch(ctx, key)
}

func (c *Cache[K, V]) run(ctx context.Context, e *entry[K, V], cl *call[V], startedAt time.Time, early bool) {
	val, expires, err := c.safeFetch(ctx, e.key)
	now := c.clk.Now()

	ev := Event[K, V]{Key: e.key, Early: early}
	e.mu.Lock()
	old := e.cur.Load()
	if err == nil && c.closed.Load() {
		err = ErrClosed
	}
	if err == nil {
		var s *slot[V]
		if s, err = c.newSlot(val, expires, now); err == nil {
			cl.val, cl.served = val, true
			if s != nil {
				c.storeLocked(e, s)
			}
			ev.Value = val
			ev.Recovered, ev.Failures = e.failures > 0, e.failures
			e.failures = 0
			e.failed.Store(false)
			e.retryAt.Store(0)
		}
	}
	if err != nil {
		if c.closed.Load() {
			err = ErrClosed
		}
		e.failures++
		ev.Failures = e.failures
		e.retryAt.Store(startedAt.Add(c.opts.RetryBackoff).UnixNano())
		f := Failure{Err: err}
		switch {
		case errors.Is(err, ErrClosed):
			if old != nil {
				e.cur.Store(nil)
			}
		case old != nil && now.Before(old.serveUntil):
			f.Kept = true
			cl.val, cl.served = old.val, true
		case old != nil && now.Before(old.deadAt):
			f.ServedStale, f.StaleFor = true, now.Sub(old.serveUntil)
			cl.val, cl.served, cl.stale = old.val, true, true
		case old != nil:
			f.StaleFor = now.Sub(old.serveUntil)
			c.dropLocked(e)
		}
		e.failed.Store(cl.served)
		if cl.served && e.keep.Load() > 0 {
			c.armRetryLocked(e, startedAt.Add(c.opts.RetryBackoff).Sub(now))
		}
		err = c.wrap(e.key, f)
		ev.Err, ev.Failure = err, f
		cl.err = err
	}
	e.call = nil
	e.busy.Store(false)
	empty := e.cur.Load() == nil
	e.mu.Unlock()

	if errors.Is(err, ErrClosed) {
		// Not a failure of the source: the cache is going away.
		close(cl.done)
		return
	}
	c.stats.record(now, err, c.opts.Classify)
	if err != nil {
		// Settle the failure before releasing the readers.
		if c.opts.OnFetch != nil {
			c.opts.OnFetch(ev)
		}
		if empty {
			c.forget(e)
		}
		close(cl.done)
		return
	}
	close(cl.done)
	if c.opts.OnFetch != nil {
		c.opts.OnFetch(ev)
	}
}

func (c *Cache[K, V]) wrap(key K, f Failure) error {
	if c.opts.WrapError != nil {
		if err := c.opts.WrapError(key, f); err != nil {
			return err
		}
	}
	return f.Err
}

// newSlot schedules a fetched value. It returns a nil slot for a value too
// short-lived to cache (valid, but inside the margin): it is handed to the
// waiting callers only.
func (c *Cache[K, V]) newSlot(val V, expires, now time.Time) (*slot[V], error) {
	if !expires.IsZero() && !expires.After(now) {
		return nil, fmt.Errorf("cache: fetched value already expired at %s", expires.UTC().Format(time.RFC3339))
	}
	var serveUntil time.Time
	switch {
	case c.opts.TTL > 0:
		serveUntil = now.Add(c.opts.TTL)
		if !expires.IsZero() && expires.Add(-c.opts.Margin).Before(serveUntil) {
			serveUntil = expires.Add(-c.opts.Margin)
		}
	case expires.IsZero():
		return nil, errors.New("cache: fetched value has no expiry and the cache has no TTL")
	default:
		serveUntil = expires.Add(-c.opts.Margin)
	}
	if !serveUntil.After(now) {
		return nil, nil
	}
	life := serveUntil.Sub(now)
	before := min(c.opts.RefreshBefore, life/2)
	before -= time.Duration(rand.Float64() * c.opts.JitterFrac * float64(before))
	deadAt := serveUntil.Add(c.opts.MaxStaleness)
	if !expires.IsZero() && expires.Before(deadAt) {
		deadAt = expires
	}
	return &slot[V]{val: val, expires: expires, refreshAt: serveUntil.Add(-before), serveUntil: serveUntil, deadAt: deadAt}, nil
}

// storeLocked makes s the entry's value; e.mu is held.
func (c *Cache[K, V]) storeLocked(e *entry[K, V], s *slot[V]) {
	if old := e.cur.Load(); old != nil && old.timer != nil {
		old.timer.Stop()
	}
	if e.retry != nil {
		e.retry.Stop()
		e.retry = nil
	}
	e.held = true
	s.fresh.Store(true)
	d := s.refreshAt.Sub(c.clk.Now())
	s.timer = c.clk.AfterFunc(d, func() {
		s.fresh.Store(false)
		if e.keep.Load() > 0 && e.cur.Load() == s && !c.closed.Load() {
			c.background(e, nil)
		}
	})
	e.cur.Store(s)
}

// dropLocked removes the entry's value; e.mu is held.
func (c *Cache[K, V]) dropLocked(e *entry[K, V]) {
	if old := e.cur.Swap(nil); old != nil && old.timer != nil {
		old.timer.Stop()
	}
	if e.retry != nil {
		e.retry.Stop()
		e.retry = nil
	}
	e.failed.Store(false)
}

func (c *Cache[K, V]) armRetryLocked(e *entry[K, V], d time.Duration) {
	if e.retry != nil {
		e.retry.Stop()
	}
	e.retry = c.clk.AfterFunc(d, func() {
		if e.keep.Load() > 0 && !c.closed.Load() {
			c.background(e, nil)
		}
	})
}

// entry returns the entry for key, inserting one (and evicting the least
// recently read entry not kept fresh when the cache is full).
func (c *Cache[K, V]) entry(key K) (*entry[K, V], error) {
	if e := (*c.snap.Load())[key]; e != nil {
		return e, nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	old := *c.snap.Load()
	if e := old[key]; e != nil {
		return e, nil
	}
	m := make(map[K]*entry[K, V], len(old)+1)
	for k, e := range old {
		m[k] = e
	}
	if c.lru && len(m) >= c.opts.MaxEntries {
		var victim *entry[K, V]
		for _, e := range m {
			if e.keep.Load() > 0 {
				continue
			}
			if victim == nil || e.used.Load() < victim.used.Load() {
				victim = e
			}
		}
		if victim != nil {
			delete(m, victim.key)
			victim.mu.Lock()
			c.dropLocked(victim)
			victim.mu.Unlock()
		}
	}
	e := &entry[K, V]{key: key}
	e.used.Store(c.epoch.Add(1))
	m[key] = e
	c.snap.Store(&m)
	return e, nil
}

// forget removes e from the cache if it is still the entry for its key,
// never held a value (a key that never resolved), is not fetching and is not
// kept fresh.
func (c *Cache[K, V]) forget(e *entry[K, V]) {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := *c.snap.Load()
	e.mu.Lock()
	held := e.held
	e.mu.Unlock()
	if old[e.key] != e || held || e.keep.Load() > 0 || e.busy.Load() || e.cur.Load() != nil {
		return
	}
	m := make(map[K]*entry[K, V], len(old))
	for k, x := range old {
		if k != e.key {
			m[k] = x
		}
	}
	c.snap.Store(&m)
}

// Refresh fetches key now, sharing a fetch already in flight, and returns
// the fetched value. When the fetch fails it returns the error, even if the
// cached value keeps being served.
func (c *Cache[K, V]) Refresh(ctx context.Context, key K) (V, error) {
	var zero V
	if c.closed.Load() {
		return zero, ErrClosed
	}
	e, err := c.entry(key)
	if err != nil {
		return zero, err
	}
	e.mu.Lock()
	cl := e.call
	if cl == nil {
		s := e.cur.Load()
		cl = c.startLocked(ctx, e, s != nil && c.clk.Now().Before(s.serveUntil))
	}
	e.mu.Unlock()
	if cl == nil {
		return zero, ErrClosed
	}
	select {
	case <-cl.done:
		if cl.err != nil {
			return zero, cl.err
		}
		return cl.val, nil
	case <-ctx.Done():
		return zero, &WaitError{Cause: context.Cause(ctx)}
	}
}

// Invalidate drops the value of key: the next Get fetches a new one.
func (c *Cache[K, V]) Invalidate(key K) { c.InvalidateIf(key, nil) }

// InvalidateIf drops the value of key if match (nil: any) reports true for
// it, so a report about a value that was already replaced is ignored. It
// reports whether it dropped a value.
func (c *Cache[K, V]) InvalidateIf(key K, match func(V) bool) bool {
	e := (*c.snap.Load())[key]
	if e == nil {
		return false
	}
	e.mu.Lock()
	s := e.cur.Load()
	if s == nil || (match != nil && !match(s.val)) {
		e.mu.Unlock()
		return false
	}
	c.dropLocked(e)
	e.retryAt.Store(0)
	e.mu.Unlock()
	return true
}

// KeepFresh makes key's value refreshed in the background whenever it falls
// due, read or not, and exempts key from eviction, until release is called
// (as often as KeepFresh was).
func (c *Cache[K, V]) KeepFresh(key K) (release func(), err error) {
	e, err := c.entry(key)
	if err != nil {
		return nil, err
	}
	e.keep.Add(1)
	var once sync.Once
	return func() {
		once.Do(func() {
			if e.keep.Add(-1) == 0 && e.cur.Load() == nil && !e.busy.Load() {
				c.forget(e)
			}
		})
	}, nil
}

// Len reports how many keys the cache holds.
func (c *Cache[K, V]) Len() int { return len(*c.snap.Load()) }

func (c *Cache[K, V]) refreshAll() {
	if c.closed.Load() {
		return
	}
	for _, e := range *c.snap.Load() {
		if e.cur.Load() != nil && !e.busy.Load() {
			c.background(e, nil)
		}
	}
	c.mu.Lock()
	if !c.closed.Load() {
		c.tick = c.clk.AfterFunc(c.opts.RefreshInterval, c.refreshAll)
	}
	c.mu.Unlock()
}

// Close stops the cache's timers, cancels the fetches in flight and waits
// for them to return, and drops every value. Get returns ErrClosed
// afterwards; callers waiting for a fetch receive ErrClosed. Close is
// idempotent.
func (c *Cache[K, V]) Close() error {
	c.closeMu.Lock()
	if c.closed.Swap(true) {
		c.closeMu.Unlock()
		return nil
	}
	c.closeMu.Unlock()
	c.mu.Lock()
	if c.tick != nil {
		c.tick.Stop()
	}
	old := *c.snap.Load()
	m := map[K]*entry[K, V]{}
	c.snap.Store(&m)
	c.mu.Unlock()
	for _, e := range old {
		e.mu.Lock()
		c.dropLocked(e)
		e.mu.Unlock()
	}
	c.cancel()
	c.wg.Wait()
	return nil
}
