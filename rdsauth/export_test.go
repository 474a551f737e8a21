package rdsauth

import "github.com/irsakit/irsakit/internal/clock"

// WithClock makes a TokenSource (and the pool helpers) read time from clk.
func WithClock(clk clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = clk }
}
