package clock_test

import (
	"testing"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
)

func TestFakeRunsDueCallbacksInOrder(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	var got []int
	c.AfterFunc(3*time.Second, func() { got = append(got, 3) })
	c.AfterFunc(1*time.Second, func() {
		got = append(got, 1)
		// A callback may schedule another that is already due.
		c.AfterFunc(0, func() { got = append(got, 10) })
	})
	stopped := c.AfterFunc(2*time.Second, func() { got = append(got, 2) })
	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop must report true once")
	}
	c.Advance(time.Second)
	if len(got) != 2 || got[0] != 1 || got[1] != 10 {
		t.Fatalf("after 1 s: %v", got)
	}
	c.Set(t0) // never backwards
	if !c.Now().Equal(t0.Add(time.Second)) {
		t.Fatalf("clock went back to %v", c.Now())
	}
	if c.Pending() != 1 {
		t.Fatalf("pending = %d", c.Pending())
	}
	c.Advance(5 * time.Second)
	if len(got) != 3 || got[2] != 3 || c.Pending() != 0 {
		t.Fatalf("after 6 s: %v, pending %d", got, c.Pending())
	}
}

func TestOr(t *testing.T) {
	if _, ok := clock.Or(nil).(clock.Real); !ok {
		t.Fatal("Or(nil) is not the real clock")
	}
	f := clock.NewFake(time.Now())
	if clock.Or(f) != f {
		t.Fatal("Or dropped the given clock")
	}
}
