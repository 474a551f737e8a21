package tokencache_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/tokencache"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

type fetcher struct {
	clk   *clock.Fake
	life  time.Duration
	n     atomic.Int64
	fail  atomic.Bool
	block chan struct{} // if set, fetches wait on it
}

func (f *fetcher) fetch(ctx context.Context) (int64, time.Time, error) {
	if f.block != nil {
		<-f.block
	}
	n := f.n.Add(1)
	if f.fail.Load() {
		return 0, time.Time{}, errors.New("mint failed")
	}
	return n, f.clk.Now().Add(f.life), nil
}

func newCache(t *testing.T, f *fetcher, opt ...func(*tokencache.Options)) *tokencache.Cache[int64] {
	t.Helper()
	opts := append([]func(*tokencache.Options){func(o *tokencache.Options) {
		o.Clock = f.clk
		o.Margin = time.Minute
		o.RefreshBefore = 5 * time.Minute
		o.JitterFrac = -1
	}}, opt...)
	c := tokencache.New(f.fetch, opts...)
	t.Cleanup(func() { c.Close() })
	return c
}

// Many callers missing at once share one fetch, and each caller's context
// only bounds its own wait.
func TestSingleFlight(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute, block: make(chan struct{})}
	c := newCache(t, f)
	const n = 200
	var wg sync.WaitGroup
	got := make([]int64, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			got[i], errs[i] = c.Get(context.Background())
		}(i)
	}
	// A caller with a short deadline gives up without cancelling the fetch.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := c.Get(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled caller: got %v", err)
	}
	for c.Fetches() == 0 {
		time.Sleep(time.Millisecond)
	}
	close(f.block)
	wg.Wait()
	for i := range got {
		if errs[i] != nil || got[i] != 1 {
			t.Fatalf("caller %d: got %d, %v", i, got[i], errs[i])
		}
	}
	if f.n.Load() != 1 || c.Fetches() != 1 {
		t.Fatalf("fetches = %d, want 1", f.n.Load())
	}
}

func TestEarlyRefreshAndMargin(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f)
	ctx := context.Background()
	if v, _ := c.Get(ctx); v != 1 {
		t.Fatalf("first = %d", v)
	}
	// Servable until 14 min; refresh due 5 min before that, at 9 min.
	f.clk.Advance(8*time.Minute + 59*time.Second)
	if v, _ := c.Get(ctx); v != 1 || f.n.Load() != 1 {
		t.Fatalf("before refresh point: v=%d fetches=%d", v, f.n.Load())
	}
	f.clk.Advance(2 * time.Second)
	// Stale but valid: served at once while a refresh runs.
	if v, _ := c.Get(ctx); v != 1 {
		t.Fatalf("stale-while-refresh served %d", v)
	}
	waitFor(t, func() bool { v, _ := c.Get(ctx); return v == 2 })
	if f.n.Load() != 2 {
		t.Fatalf("fetches = %d, want 2", f.n.Load())
	}
}

func TestRefreshFailureKeepsValidValueThenErrors(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	var hookErrs atomic.Int64
	c := newCache(t, f, func(o *tokencache.Options) {
		o.RetryBackoff = 10 * time.Second
		o.OnError = func(error) { hookErrs.Add(1) }
	})
	ctx := context.Background()
	c.Get(ctx)
	f.fail.Store(true)
	f.clk.Advance(10 * time.Minute) // past the refresh point
	for i := 0; i < 50; i++ {
		if v, err := c.Get(ctx); err != nil || v != 1 {
			t.Fatalf("valid value not served during failed refresh: %d %v", v, err)
		}
	}
	waitFor(t, func() bool { return hookErrs.Load() >= 1 })
	// Back-off: the 50 calls above started one fetch, not 50.
	if n := f.n.Load(); n != 2 {
		t.Fatalf("fetches during back-off = %d, want 2", n)
	}
	f.clk.Advance(4 * time.Minute) // 14 min: past serveUntil
	if _, err := c.Get(ctx); err == nil || err.Error() != "mint failed" {
		t.Fatalf("after the value's end: got %v, want the fetch error", err)
	}
	f.fail.Store(false)
	if v, err := c.Get(ctx); err != nil || v < 3 {
		t.Fatalf("recovery: %d %v", v, err)
	}
}

func TestShortLivedValueCappedAndNeverServedExpired(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 90 * time.Second}
	c := newCache(t, f)
	ctx := context.Background()
	v, _ := c.Get(ctx)
	f.clk.Advance(31 * time.Second) // refresh at half of 30 s servable life
	c.Get(ctx)
	waitFor(t, func() bool { w, _ := c.Get(ctx); return w != v })

	// A value that expires within the margin is handed out once but not cached.
	f.life = 30 * time.Second
	c.Invalidate()
	a, err := c.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := c.Get(ctx)
	if a == b {
		t.Fatalf("value inside the margin was cached")
	}
	f.life = -time.Second
	c.Invalidate()
	if _, err := c.Get(ctx); err == nil {
		t.Fatal("already-expired value accepted")
	}
}

func TestInvalidateAndClose(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f)
	ctx := context.Background()
	c.Get(ctx)
	c.Invalidate()
	if v, _ := c.Get(ctx); v != 2 {
		t.Fatalf("after Invalidate got %d", v)
	}
	var seen atomic.Int64
	c.OnRefresh(func(v int64) { seen.Store(v) })
	c.Invalidate()
	c.Get(ctx)
	if seen.Load() != 3 {
		t.Fatalf("OnRefresh saw %d", seen.Load())
	}
	c.Close()
	if _, err := c.Get(ctx); !errors.Is(err, tokencache.ErrClosed) {
		t.Fatalf("after Close: %v", err)
	}
	if f.clk.Pending() != 0 {
		t.Fatalf("timers left after Close: %d", f.clk.Pending())
	}
}

func TestProactive(t *testing.T) {
	f := &fetcher{clk: clock.NewFake(t0), life: 15 * time.Minute}
	c := newCache(t, f, func(o *tokencache.Options) { o.Proactive = true })
	c.Get(context.Background())
	f.clk.Advance(9*time.Minute + time.Second)
	waitFor(t, func() bool { return f.n.Load() == 2 })
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkHit(b *testing.B) {
	c := tokencache.New(func(context.Context) (string, time.Time, error) {
		return "token", time.Now().Add(15 * time.Minute), nil
	})
	defer c.Close()
	ctx := context.Background()
	c.Get(ctx)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.Get(ctx); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// A caller that misses just as a fetch completes must take the stored value,
// not start a second fetch; and after Invalidate no caller may receive the
// invalidated value. Repeated to give the race a chance.
func TestNoSecondFetchAfterCompletion(t *testing.T) {
	for round := 0; round < 200; round++ {
		clk := clock.NewFake(t0)
		var n atomic.Int64
		c := tokencache.New(func(context.Context) (int64, time.Time, error) {
			return n.Add(1), clk.Now().Add(15 * time.Minute), nil
		}, func(o *tokencache.Options) { o.Clock = clk })
		var wg sync.WaitGroup
		for i := 0; i < 50; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := c.Get(context.Background()); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		if got := c.Fetches(); got != 1 {
			t.Fatalf("round %d: %d fetches for one cold storm", round, got)
		}
		bad, _ := c.Get(context.Background())
		c.Invalidate()
		var seenBad atomic.Bool
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if v, _ := c.Get(context.Background()); v == bad {
					seenBad.Store(true)
				}
			}()
		}
		wg.Wait()
		if seenBad.Load() {
			t.Fatalf("round %d: invalidated value served", round)
		}
		c.Close()
	}
}
