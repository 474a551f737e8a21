package irsa

import "github.com/irsakit/irsakit/internal/clock"

// WithClock makes Load use clk for token checks and for the stale
// credential fallback.
func WithClock(clk clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = clk }
}
