package cache_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/cache"
	"github.com/irsakit/irsakit/internal/clock"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// fetcher mints numbered values valid for life on a fake clock.
type fetcher struct {
	clk   *clock.Fake
	life  time.Duration // 0: no expiry (TTL caches)
	n     atomic.Int64
	fail  atomic.Bool
	block chan struct{} // if set, fetches wait on it
	began chan struct{} // if set, receives one signal per fetch started
}

func (f *fetcher) fetch(ctx context.Context, key string) (int64, time.Time, error) {
	if f.began != nil {
		f.began <- struct{}{}
	}
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return 0, time.Time{}, ctx.Err()
		}
	}
	n := f.n.Add(1)
	if f.fail.Load() {
		return 0, time.Time{}, errors.New("mint failed")
	}
	if f.life == 0 {
		return n, time.Time{}, nil
	}
	return n, f.clk.Now().Add(f.life), nil
}

type opts = cache.Options[string, int64]

// events collects OnFetch events for tests to wait on without sleeping.
type events chan cache.Event[string, int64]

func (ev events) hook(o *opts) { o.OnFetch = func(e cache.Event[string, int64]) { ev <- e } }

func (ev events) next(t *testing.T) cache.Event[string, int64] {
	t.Helper()
	select {
	case e := <-ev:
		return e
	case <-time.After(10 * time.Second):
		require.FailNow(t, "no fetch completed within 10s")
		return cache.Event[string, int64]{}
	}
}

func tokenOpts(f *fetcher) func(*opts) {
	return func(o *opts) {
		o.Clock = f.clk
		o.Margin = time.Minute
		o.RefreshBefore = 5 * time.Minute
	}
}

func newCache(t *testing.T, f *fetcher, opt ...func(*opts)) *cache.Cache[string, int64] {
	t.Helper()
	c := cache.New(f.fetch, append([]func(*opts){tokenOpts(f)}, opt...)...)
	t.Cleanup(func() { c.Close() })
	return c
}

// Many callers missing at once share one fetch, and each caller's context
// only bounds its own wait.
func TestSingleFlight(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute, block: make(chan struct{}), began: make(chan struct{}, 1)}
	c := newCache(t, f)
	const n = 200
	var wg sync.WaitGroup
	got := make([]int64, n)
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { got[i], errs[i] = c.Get(context.Background(), "k") })
	}
	<-f.began
	// A caller whose context ends gives up without cancelling the fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.Get(ctx, "k")
	require.ErrorIs(t, err, context.Canceled)
	var we *cache.WaitError
	assert.ErrorAs(t, err, &we)
	close(f.block)
	wg.Wait()
	for i := range got {
		require.NoError(t, errs[i], "caller %d", i)
		assert.Equal(t, int64(1), got[i], "caller %d", i)
	}
	assert.Equal(t, int64(1), f.n.Load())
	assert.Equal(t, int64(1), c.Stats().Fetches)
}

func TestEarlyRefreshAndMargin(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	ev := make(events, 4)
	c := newCache(t, f, ev.hook)
	ctx := context.Background()
	v, err := c.Get(ctx, "k")
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	ev.next(t)
	// Servable until 14 min; refresh due 5 min before that, at 9 min.
	f.clk.Advance(8*time.Minute + 59*time.Second)
	v, _ = c.Get(ctx, "k")
	assert.Equal(t, int64(1), v)
	assert.Equal(t, int64(1), f.n.Load(), "refreshed before the refresh point")
	f.clk.Advance(2 * time.Second)
	// Due but valid: served at once while a refresh runs.
	v, _ = c.Get(ctx, "k")
	assert.Equal(t, int64(1), v, "stale-while-refresh")
	e := ev.next(t)
	assert.True(t, e.Early)
	assert.Equal(t, int64(2), e.Value)
	v, _ = c.Get(ctx, "k")
	assert.Equal(t, int64(2), v)
	st := c.Stats()
	assert.Equal(t, int64(2), st.Fetches)
	assert.Equal(t, int64(1), st.EarlyRefreshes)
	assert.Equal(t, t0.Add(9*time.Minute+time.Second).Add(15*time.Minute), st.Expires)
	assert.Zero(t, st.ServedStale, "no refresh failed")
}

func TestRefreshFailureKeepsValidValueThenErrors(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	ev := make(events, 16)
	c := newCache(t, f, ev.hook, func(o *opts) { o.RetryBackoff = 10 * time.Second })
	ctx := context.Background()
	_, err := c.Get(ctx, "k")
	require.NoError(t, err)
	ev.next(t)
	f.fail.Store(true)
	f.clk.Advance(10 * time.Minute) // past the refresh point
	v, err := c.Get(ctx, "k")       // starts the refresh
	require.NoError(t, err)
	require.Equal(t, int64(1), v)
	e := ev.next(t)
	require.Error(t, e.Err)
	assert.True(t, e.Failure.Kept)
	assert.Equal(t, 1, e.Failures)
	for range 50 {
		v, err := c.Get(ctx, "k")
		require.NoError(t, err, "valid value not served during a failed refresh")
		require.Equal(t, int64(1), v)
	}
	// Back-off: the 50 reads above started no fetch.
	assert.Equal(t, int64(2), f.n.Load())
	st := c.Stats()
	assert.Equal(t, int64(50), st.ServedStale, "every read after the failed refresh counts")
	assert.Equal(t, int64(1), st.Failures)
	assert.Equal(t, cache.ClassOther, st.LastErrorClass)

	f.clk.Advance(4 * time.Minute) // 14 min: past the servable time
	_, err = c.Get(ctx, "k")
	require.Error(t, err)
	assert.Equal(t, "mint failed", err.Error(), "after the value's end the fetch error surfaces as it is")
	ev.next(t)
	f.fail.Store(false)
	v, err = c.Get(ctx, "k")
	require.NoError(t, err)
	assert.GreaterOrEqual(t, v, int64(3))
	e = ev.next(t)
	assert.True(t, e.Recovered)
	assert.Equal(t, 2, e.Failures)
	assert.Empty(t, c.Stats().LastErrorClass)
}

func TestShortLivedValueCappedAndNeverServedExpired(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 90 * time.Second}
	ev := make(events, 16)
	c := newCache(t, f, ev.hook)
	ctx := context.Background()
	v, _ := c.Get(ctx, "k")
	ev.next(t)
	f.clk.Advance(31 * time.Second) // refresh at half of the 30 s servable life
	c.Get(ctx, "k")
	ev.next(t)
	w, _ := c.Get(ctx, "k")
	assert.NotEqual(t, v, w)

	// A value that expires within the margin is handed out once but not cached.
	f.life = 30 * time.Second
	c.Invalidate("k")
	a, err := c.Get(ctx, "k")
	require.NoError(t, err)
	b, _ := c.Get(ctx, "k")
	assert.NotEqual(t, a, b, "value inside the margin was cached")
	f.life = -time.Second
	c.Invalidate("k")
	_, err = c.Get(ctx, "k")
	assert.ErrorContains(t, err, "already expired")
}

func TestInvalidateIfAndClose(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f)
	ctx := context.Background()
	c.Get(ctx, "k")
	assert.False(t, c.InvalidateIf("k", func(v int64) bool { return v == 7 }), "dropped a value it was not asked to")
	assert.True(t, c.InvalidateIf("k", func(v int64) bool { return v == 1 }))
	v, _ := c.Get(ctx, "k")
	assert.Equal(t, int64(2), v)
	assert.False(t, c.InvalidateIf("k", func(v int64) bool { return v == 1 }), "a late report dropped the new value")
	v, _ = c.Get(ctx, "k")
	assert.Equal(t, int64(2), v)
	require.NoError(t, c.Close())
	_, err := c.Get(ctx, "k")
	assert.ErrorIs(t, err, cache.ErrClosed)
	_, err = c.Refresh(ctx, "k")
	assert.ErrorIs(t, err, cache.ErrClosed)
	assert.Zero(t, f.clk.Pending(), "timers left after Close")
	require.NoError(t, c.Close(), "second Close")
}

// A fetch that panics fails its waiters with an error; it neither crashes
// the process nor leaves them waiting.
func TestPanickingFetchFailsItsWaiters(t *testing.T) {
	for _, tc := range []struct {
		name  string
		panic func()
		want  string
	}{
		{"runtime error", func() {
			i := func() int { return 3 }()
			_ = []int{1}[i]
		}, "the fetch panicked: runtime error: index out of range [3] with length 1"},
		{"value", func() { panic("hunter2") }, "the fetch panicked with a string"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ev := make(events, 100)
			c := cache.New(func(context.Context, string) (int64, time.Time, error) {
				tc.panic()
				return 0, time.Time{}, nil
			}, ev.hook)
			defer c.Close()
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			errs := make([]error, 20)
			for i := range errs {
				wg.Go(func() { _, errs[i] = c.Get(ctx, "k") })
			}
			wg.Wait()
			for _, err := range errs {
				require.Error(t, err)
				assert.NotErrorIs(t, err, context.DeadlineExceeded, "a waiter hung until its own deadline")
				assert.Contains(t, err.Error(), tc.want)
				assert.NotContains(t, err.Error(), "hunter2", "a panic value may be a secret")
			}
			assert.Error(t, ev.next(t).Err)
			st := c.Stats()
			assert.Equal(t, st.Fetches, st.Failures)
		})
	}
}

// Close cancels a fetch in flight and returns only once it has returned;
// the callers waiting for it get ErrClosed.
func TestCloseCancelsAndWaitsForFetch(t *testing.T) {
	began := make(chan struct{})
	var finished atomic.Bool
	c := cache.New(func(ctx context.Context, _ string) (int64, time.Time, error) {
		close(began)
		defer finished.Store(true)
		<-ctx.Done() // a fetch that ends only when cancelled
		return 0, time.Time{}, ctx.Err()
	})
	got := make(chan error, 1)
	go func() {
		_, err := c.Get(context.Background(), "k")
		got <- err
	}()
	<-began
	require.NoError(t, c.Close())
	assert.True(t, finished.Load(), "Close returned while the fetch was still running")
	assert.ErrorIs(t, <-got, cache.ErrClosed)
	assert.Zero(t, c.Stats().Failures, "closing is not a failure of the source")
}

// A TTL cache with MaxStaleness serves the last good value while refreshes
// fail, backs off between attempts, then fails once the bound is passed.
func TestStaleOnErrorWithinMaxStaleness(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0)}
	ev := make(events, 16)
	var wrapped []cache.Failure
	var mu sync.Mutex
	c := newCache(t, f, ev.hook, func(o *opts) {
		o.Margin, o.RefreshBefore = 0, 0
		o.TTL, o.MaxStaleness, o.RetryBackoff = time.Hour, 30*time.Minute, time.Minute
		o.WrapError = func(k string, fl cache.Failure) error {
			mu.Lock()
			wrapped = append(wrapped, fl)
			mu.Unlock()
			return fmt.Errorf("secret %s: %w", k, fl.Err)
		}
	})
	ctx := context.Background()
	read := func() (int64, error) { return c.Get(ctx, "k") }
	_, err := read()
	require.NoError(t, err)
	ev.next(t)
	f.fail.Store(true)

	f.clk.Advance(time.Hour) // TTL ends: the read waits for the refresh
	v, err := read()
	require.NoError(t, err)
	assert.Equal(t, int64(1), v, "stale value during the outage")
	e := ev.next(t)
	assert.True(t, e.Failure.ServedStale)
	assert.EqualError(t, e.Err, "secret k: mint failed")
	n := f.n.Load()
	v, err = read() // within the back-off: no new attempt
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)
	assert.Equal(t, n, f.n.Load(), "a read within the back-off fetched")
	f.clk.Advance(time.Minute)
	v, err = read() // after it: one new attempt, stale again
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)
	assert.Equal(t, n+1, f.n.Load())
	ev.next(t)
	assert.Equal(t, int64(3), c.Stats().ServedStale)

	f.clk.Advance(30 * time.Minute) // past MaxStaleness
	_, err = read()
	require.EqualError(t, err, "secret k: mint failed")
	ev.next(t)
	mu.Lock()
	last := wrapped[len(wrapped)-1]
	mu.Unlock()
	assert.False(t, last.ServedStale)
	assert.Equal(t, 31*time.Minute, last.StaleFor)

	f.fail.Store(false)
	v, err = read()
	require.NoError(t, err)
	assert.Equal(t, f.n.Load(), v)
}

// A reader that cannot wait for a slow refresh gets the stale value when
// there is one within MaxStaleness, the context's error otherwise.
func TestReaderDeadlineServesStale(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0)}
	c := newCache(t, f, func(o *opts) { o.TTL, o.MaxStaleness, o.Margin, o.RefreshBefore = time.Hour, time.Hour, 0, 0 })
	_, err := c.Get(context.Background(), "k")
	require.NoError(t, err)
	f.block = make(chan struct{})
	defer close(f.block)
	f.clk.Advance(time.Hour)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	v, err := c.Get(ctx, "k")
	cancel()
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = c.Get(ctx, "other")
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Equal(t, int64(1), c.Stats().ServedStale)
}

func TestLRUEvictionSparesKeptKeys(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0)}
	c := newCache(t, f, func(o *opts) { o.TTL, o.MaxEntries = time.Hour, 2 })
	ctx := context.Background()
	read := func(k string, wantFetch bool) {
		t.Helper()
		before := c.Stats().Fetches
		_, err := c.Get(ctx, k)
		require.NoError(t, err)
		assert.Equal(t, wantFetch, c.Stats().Fetches != before, "read %s fetched", k)
	}
	read("a", true)
	read("b", true)
	read("a", false) // a is now the most recently read
	read("d", true)  // evicts b
	assert.Equal(t, 2, c.Len())
	read("a", false)
	read("d", false)
	read("b", true) // evicts a
	release, err := c.KeepFresh("d")
	require.NoError(t, err)
	read("b", false)
	read("a", true) // evicts b, not the kept d although d is older
	read("d", false)
	release()
	read("b", true) // evicts a
	read("a", true) // evicts d, no longer kept
	read("d", true)
}

// A kept key is refreshed when it falls due, unread, and retried after a
// failure.
func TestKeepFreshRefreshesUnread(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0)}
	ev := make(events, 16)
	c := newCache(t, f, ev.hook, func(o *opts) { o.TTL, o.MaxStaleness, o.RetryBackoff = 5*time.Minute, time.Hour, 10*time.Second })
	release, err := c.KeepFresh("k")
	require.NoError(t, err)
	defer release()
	_, err = c.Get(context.Background(), "k")
	require.NoError(t, err)
	ev.next(t)
	f.clk.Advance(5 * time.Minute)
	assert.Equal(t, int64(2), ev.next(t).Value)
	f.fail.Store(true)
	f.clk.Advance(5 * time.Minute)
	assert.Error(t, ev.next(t).Err)
	f.fail.Store(false)
	f.clk.Advance(10 * time.Second)
	e := ev.next(t)
	assert.True(t, e.Recovered)
	assert.Equal(t, int64(4), e.Value)
}

func TestRefreshIntervalAndRefresh(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0)}
	ev := make(events, 16)
	c := newCache(t, f, ev.hook, func(o *opts) { o.TTL, o.RefreshInterval = time.Hour, time.Minute })
	ctx := context.Background()
	for _, k := range []string{"a", "b"} {
		_, err := c.Get(ctx, k)
		require.NoError(t, err)
		ev.next(t)
	}
	f.clk.Advance(time.Minute)
	got := map[string]bool{ev.next(t).Key: true, ev.next(t).Key: true}
	assert.Equal(t, map[string]bool{"a": true, "b": true}, got)

	// Refresh fetches now and shares a fetch in flight: a second Refresh
	// while the first one's fetch is held back starts none.
	f.block, f.began = make(chan struct{}), make(chan struct{}, 4)
	res := make(chan int64, 1)
	go func() {
		v, err := c.Refresh(ctx, "a")
		assert.NoError(t, err)
		res <- v
	}()
	<-f.began
	before := c.Stats().Fetches
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err := c.Refresh(cctx, "a")
	assert.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, before, c.Stats().Fetches, "the second Refresh fetched again")
	close(f.block)
	a := <-res
	v, _ := c.Get(ctx, "a")
	assert.Equal(t, a, v)
	f.fail.Store(true)
	_, err = c.Refresh(ctx, "a")
	assert.EqualError(t, err, "mint failed", "Refresh reports a failure although the value is kept")
	v, err = c.Get(ctx, "a")
	require.NoError(t, err)
	assert.Equal(t, a, v)
}

// A handle follows its key when the entry is replaced.
func TestHandleFollowsReplacedEntry(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f)
	ctx := context.Background()
	h := c.Handle("k")
	v, err := h.Get(ctx)
	require.NoError(t, err)
	assert.Equal(t, int64(1), v)
	c.Invalidate("k") // forgets the entry
	v, _ = h.Get(ctx)
	assert.Equal(t, int64(2), v)
	c.Invalidate("k")
	v, _ = c.Get(ctx, "k")
	assert.Equal(t, int64(3), v)
	v, _ = h.Get(ctx)
	assert.Equal(t, int64(3), v, "the handle read a dropped value")
}

// A caller that misses just as a fetch completes must take the stored value,
// not start a second fetch; and after Invalidate no caller may receive the
// invalidated value. Repeated to give the race a chance.
func TestNoSecondFetchAfterCompletion(t *testing.T) {
	for round := range 200 {
		clk := clock.NewFake(t0)
		var n atomic.Int64
		c := cache.New(func(context.Context, string) (int64, time.Time, error) {
			return n.Add(1), clk.Now().Add(15 * time.Minute), nil
		}, func(o *opts) { o.Clock = clk })
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				_, err := c.Get(context.Background(), "k")
				assert.NoError(t, err)
			})
		}
		wg.Wait()
		require.Equal(t, int64(1), c.Stats().Fetches, "round %d: fetches for one cold storm", round)
		bad, _ := c.Get(context.Background(), "k")
		c.Invalidate("k")
		var seenBad atomic.Bool
		for range 20 {
			wg.Go(func() {
				if v, _ := c.Get(context.Background(), "k"); v == bad {
					seenBad.Store(true)
				}
			})
		}
		wg.Wait()
		require.False(t, seenBad.Load(), "round %d: invalidated value served", round)
		c.Close()
	}
}

func TestHitDoesNotAllocate(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f, func(o *opts) { o.MaxEntries = 8 })
	ctx := context.Background()
	_, err := c.Get(ctx, "k")
	require.NoError(t, err)
	h := c.Handle("k")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { c.Get(ctx, "k") }))
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Get(ctx) }))
}

type apiErr struct{ code string }

func (e apiErr) Error() string                 { return e.code + ": secret-looking message" }
func (e apiErr) ErrorCode() string             { return e.code }
func (e apiErr) ErrorMessage() string          { return "m" }
func (e apiErr) ErrorFault() smithy.ErrorFault { return smithy.FaultClient }

func TestClass(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{nil, ""},
		{fmt.Errorf("x: %w", apiErr{"ThrottlingException"}), cache.ClassThrottled},
		{apiErr{"Throttling"}, cache.ClassThrottled},
		{apiErr{"AccessDeniedException"}, cache.ClassAccessDenied},
		{apiErr{"ResourceNotFoundException"}, cache.ClassNotFound},
		{apiErr{"ExpiredTokenException"}, cache.ClassCredentials},
		{apiErr{"InvalidIdentityToken"}, cache.ClassCredentials},
		{apiErr{"InternalServiceError"}, cache.ClassOther},
		{fmt.Errorf("fetch: %w", context.DeadlineExceeded), cache.ClassTimeout},
		{&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, cache.ClassNetwork},
		{&net.DNSError{Err: "no such host", Name: "x", IsNotFound: true}, cache.ClassNetwork},
		{errors.New("something"), cache.ClassOther},
	} {
		t.Run(fmt.Sprint(tc.err), func(t *testing.T) {
			assert.Equal(t, tc.want, cache.Class(tc.err))
		})
	}
}

func BenchmarkHit(b *testing.B) {
	c := cache.New(func(context.Context, string) (string, time.Time, error) {
		return "token", time.Now().Add(15 * time.Minute), nil
	})
	defer c.Close()
	ctx := context.Background()
	c.Get(ctx, "k")
	h := c.Handle("k")
	b.Run("key", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "k"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handle", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := h.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("handle-parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := h.Get(ctx); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}
