package elasticacheauth

import "github.com/irsakit/irsakit/internal/clock"

// WithClock makes a TokenSource read time from clk.
func WithClock(clk clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = clk }
}

// WithStreamingClock makes a StreamingCredentialsProvider schedule its
// pushes on clk.
func WithStreamingClock(clk clock.Clock) func(*StreamingOptions) {
	return func(o *StreamingOptions) { o.clock = clk }
}

// WithClientClock makes NewClient and NewClusterClient use clk for the token
// cache and the pushes.
func WithClientClock(clk clock.Clock) func(*ClientOptions) {
	return func(o *ClientOptions) { o.clock = clk }
}
