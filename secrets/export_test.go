package secrets

import "github.com/irsakit/irsakit/internal/clock"

// WithClock makes a Cache read time from clk.
func WithClock(clk clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = clk }
}
