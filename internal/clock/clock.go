// Package clock is the time source of irsakit's caches. Production code uses
// [Real]; tests use [Fake] to move time forward without sleeping.
package clock

import (
	"sort"
	"sync"
	"time"
)

// Clock tells the time and schedules callbacks. Implementations are safe for
// concurrent use.
type Clock interface {
	Now() time.Time
	// AfterFunc calls f in its own goroutine once d has elapsed.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a scheduled callback.
type Timer interface {
	// Stop prevents the callback from running; it reports whether it did so.
	Stop() bool
}

// Real is the system clock.
type Real struct{}

// Now returns time.Now().
func (Real) Now() time.Time { return time.Now() }

// AfterFunc wraps time.AfterFunc.
func (Real) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }

// Or returns c, or [Real] when c is nil.
func Or(c Clock) Clock {
	if c == nil {
		return Real{}
	}
	return c
}

// Fake is a manually advanced clock for tests. Callbacks scheduled with
// AfterFunc run synchronously inside Advance/Set, in deadline order.
type Fake struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *Fake
	at   time.Time
	f    func()
	done bool
}

// NewFake returns a fake clock reading t.
func NewFake(t time.Time) *Fake { return &Fake{now: t} }

// Now returns the fake time.
func (c *Fake) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// AfterFunc schedules f at Now()+d. A non-positive d runs f on the next
// Advance or Set (including Advance(0)).
func (c *Fake) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the clock forward by d and runs every callback now due.
func (c *Fake) Advance(d time.Duration) {
	c.mu.Lock()
	t := c.now.Add(d)
	c.mu.Unlock()
	c.Set(t)
}

// Set moves the clock to t (never backwards) and runs every callback now due.
func (c *Fake) Set(t time.Time) {
	for {
		c.mu.Lock()
		if t.After(c.now) {
			c.now = t
		}
		var due []*fakeTimer
		keep := c.timers[:0]
		for _, tm := range c.timers {
			switch {
			case tm.done:
			case !tm.at.After(c.now):
				tm.done = true
				due = append(due, tm)
			default:
				keep = append(keep, tm)
			}
		}
		c.timers = keep
		c.mu.Unlock()
		if len(due) == 0 {
			return
		}
		sort.SliceStable(due, func(i, j int) bool { return due[i].at.Before(due[j].at) })
		for _, tm := range due {
			tm.f()
		}
		// Callbacks may have scheduled timers that are already due.
	}
}

// Pending reports how many callbacks are scheduled and not yet run.
func (c *Fake) Pending() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, t := range c.timers {
		if !t.done {
			n++
		}
	}
	return n
}
