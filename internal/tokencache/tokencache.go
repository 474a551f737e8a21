// Package tokencache is the one caching mechanism behind every minted token in
// irsakit (RDS IAM tokens, ElastiCache IAM tokens). It is shaped like the AWS
// SDK's aws.CredentialsCache:
//
//   - the hit path is one atomic pointer load and one atomic flag load: no
//     clock read, no lock, no allocation (timers flip the flags instead);
//   - concurrent misses share one fetch (single flight); the fetch runs on a
//     context detached from the callers', while each caller waits only as
//     long as its own context allows;
//   - a value is refreshed early, at a jittered point before it must stop
//     being served, and a failed early refresh keeps serving the still-valid
//     value (with back-off between attempts).
//
// A value is never served past its hard expiry minus [Options.Margin].
package tokencache

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
)

// ErrClosed is returned by Get after Close.
var ErrClosed = errors.New("tokencache: closed")

// Fetcher mints a new value and reports when it stops being valid.
type Fetcher[T any] func(ctx context.Context) (value T, expires time.Time, err error)

// Options configure a Cache. Every field has a usable zero value.
type Options struct {
	// Clock is the time source. Default: the system clock.
	Clock clock.Clock
	// Margin: a value stops being served this long before its expiry, so a
	// connection handshake that starts with it still finishes in time.
	// Default 1 minute.
	Margin time.Duration
	// RefreshBefore: an early refresh starts about this long before the value
	// stops being served (capped at half the value's servable lifetime).
	// Default 5 minutes.
	RefreshBefore time.Duration
	// JitterFrac randomises the early refresh point by up to this fraction of
	// RefreshBefore, so a fleet of pods does not refresh in lock step.
	// Default 0.5; negative means none.
	JitterFrac float64
	// RetryBackoff is the pause between the starts of two early-refresh
	// attempts after one failed, while the old value is still being
	// served. Default 5 s.
	RetryBackoff time.Duration
	// FetchTimeout bounds one fetch, whose context is detached from callers.
	// Default 30 s.
	FetchTimeout time.Duration
	// Proactive starts the early refresh when it falls due, without waiting
	// for the next Get. Default false: an idle cache mints nothing.
	Proactive bool
	// OnError, if set, is called with each failed fetch.
	OnError func(err error)
}

type entry[T any] struct {
	val        T
	serveUntil time.Time
	stale      atomic.Bool // early refresh is due
	dead       atomic.Bool // must not be served any more
	timers     [2]clock.Timer
}

func (e *entry[T]) stop() {
	for _, t := range e.timers {
		if t != nil {
			t.Stop()
		}
	}
}

type call[T any] struct {
	done chan struct{}
	val  T
	err  error
}

// Cache holds one value of type T. It is safe for concurrent use.
type Cache[T any] struct {
	fetch Fetcher[T]
	opts  Options
	clk   clock.Clock

	cur       atomic.Pointer[entry[T]]
	retryAt   atomic.Int64 // unix nanos before which no early refresh starts
	closed    atomic.Bool
	mu        sync.Mutex
	inflight  *call[T]
	fetches   atomic.Int64
	closeOnce sync.Once
	onRefresh atomic.Pointer[func(T)]
}

// New returns a cache that fills itself with fetch.
func New[T any](fetch Fetcher[T], optFns ...func(*Options)) *Cache[T] {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Margin <= 0 {
		o.Margin = time.Minute
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = 5 * time.Minute
	}
	if o.JitterFrac == 0 {
		o.JitterFrac = 0.5
	} else if o.JitterFrac < 0 {
		o.JitterFrac = 0
	} else if o.JitterFrac > 1 {
		o.JitterFrac = 1
	}
	if o.RetryBackoff <= 0 {
		o.RetryBackoff = 5 * time.Second
	}
	if o.FetchTimeout <= 0 {
		o.FetchTimeout = 30 * time.Second
	}
	return &Cache[T]{fetch: fetch, opts: o, clk: clock.Or(o.Clock)}
}

// Get returns the cached value, fetching one if there is none that may
// still be served. On a hit it neither locks nor allocates.
func (c *Cache[T]) Get(ctx context.Context) (T, error) {
	if e := c.cur.Load(); e != nil && !e.stale.Load() {
		return e.val, nil
	}
	return c.slow(ctx)
}

func (c *Cache[T]) slow(ctx context.Context) (T, error) {
	var zero T
	if c.closed.Load() {
		return zero, ErrClosed
	}
	now := c.clk.Now()
	if e := c.cur.Load(); e != nil && !e.dead.Load() && now.Before(e.serveUntil) {
		// Still servable: refresh in the background, answer now.
		if now.UnixNano() >= c.retryAt.Load() {
			c.start(ctx)
		}
		return e.val, nil
	}
	cl := c.start(ctx)
	select {
	case <-cl.done:
		return cl.val, cl.err
	case <-ctx.Done():
		return zero, fmt.Errorf("tokencache: waiting for a fresh value: %w", context.Cause(ctx))
	}
}

// Invalidate drops the current value: the next Get fetches a new one. Use it
// when a server has rejected the value.
func (c *Cache[T]) Invalidate() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.cur.Swap(nil); e != nil {
		e.stop()
	}
	c.retryAt.Store(0)
}

// OnRefresh registers f to be called, outside any lock, with each newly
// fetched value. A later call replaces the earlier f.
func (c *Cache[T]) OnRefresh(f func(T)) { c.onRefresh.Store(&f) }

// Fetches reports how many fetches have started; tests and benchmarks use it
// to count mints.
func (c *Cache[T]) Fetches() int64 { return c.fetches.Load() }

// Close stops the cache's timers. Get returns ErrClosed afterwards.
func (c *Cache[T]) Close() error {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.closed.Store(true)
		if e := c.cur.Swap(nil); e != nil {
			e.stop()
		}
	})
	return nil
}

// start returns the fetch in flight, starting one if there is none. A
// value stored since the caller looked (by a fetch that finished in
// between) is returned as an already completed call, so a late caller
// neither mints again nor receives a value that was invalidated meanwhile.
func (c *Cache[T]) start(ctx context.Context) *call[T] {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.inflight != nil {
		return c.inflight
	}
	if e := c.cur.Load(); e != nil && !e.stale.Load() {
		cl := &call[T]{done: make(chan struct{}), val: e.val}
		close(cl.done)
		return cl
	}
	cl := &call[T]{done: make(chan struct{})}
	c.inflight = cl
	c.fetches.Add(1)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.opts.FetchTimeout)
	startedAt := c.clk.Now()
	go func() {
		defer cancel()
		c.run(fctx, cl, startedAt)
	}()
	return cl
}

func (c *Cache[T]) run(ctx context.Context, cl *call[T], startedAt time.Time) {
	val, expires, err := c.fetch(ctx)
	// Storing and retiring the call happen under one lock, so no caller
	// can find a finished call still registered as in flight.
	c.mu.Lock()
	if err == nil {
		err = c.store(val, expires)
	}
	if err != nil {
		// The back-off counts from the failed attempt's start.
		c.retryAt.Store(startedAt.Add(c.opts.RetryBackoff).UnixNano())
	}
	c.inflight = nil
	c.mu.Unlock()
	if err != nil {
		if c.opts.OnError != nil {
			c.opts.OnError(err)
		}
		var zero T
		val = zero
	}
	cl.val, cl.err = val, err
	close(cl.done)
	if f := c.onRefresh.Load(); err == nil && f != nil {
		(*f)(val)
	}
}

func (c *Cache[T]) store(val T, expires time.Time) error {
	now := c.clk.Now()
	serveUntil := expires.Add(-c.opts.Margin)
	if !serveUntil.After(now) {
		// Too short-lived to cache with the margin; hand it to the waiting
		// callers if it is valid at all, and fetch again next time.
		if !expires.After(now) {
			return fmt.Errorf("tokencache: fetched value already expired at %s", expires.UTC().Format(time.RFC3339))
		}
		return nil
	}
	life := serveUntil.Sub(now)
	before := c.opts.RefreshBefore
	if before > life/2 {
		before = life / 2
	}
	before -= time.Duration(rand.Float64() * c.opts.JitterFrac * float64(before))
	refreshIn := life - before

	e := &entry[T]{val: val, serveUntil: serveUntil}
	e.timers[0] = c.clk.AfterFunc(refreshIn, func() {
		e.stale.Store(true)
		if c.opts.Proactive && !c.closed.Load() && c.cur.Load() == e {
			c.start(context.Background())
		}
	})
	e.timers[1] = c.clk.AfterFunc(life, func() { e.dead.Store(true) })
	if c.closed.Load() {
		e.stop()
		return ErrClosed
	}
	if old := c.cur.Swap(e); old != nil {
		old.stop()
	}
	c.retryAt.Store(0)
	return nil
}
