package elasticacheauth

import "github.com/irsakit/irsakit/internal/clock"

// StreamingClock makes a StreamingCredentialsProvider schedule its rounds on
// c.
func StreamingClock(c clock.Clock) func(*StreamingOptions) {
	return func(o *StreamingOptions) { o.clock = c }
}
