package irsa

import (
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"

	"github.com/irsakit/irsakit/internal/clock"
)

// WithClock makes Load use clk for token checks and for the stale
// credential fallback.
func WithClock(clk clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = clk }
}

// WithRetryDelays replaces the backoff of credential fetches (of the
// session and the roles it assumes) with delay, so tests count attempts
// without waiting.
func WithRetryDelays(delay func(attempt int, err error) time.Duration) func(*Options) {
	return func(o *Options) {
		o.retryDelays = retry.BackoffDelayerFunc(func(attempt int, err error) (time.Duration, error) { return delay(attempt, err), nil })
	}
}

// FleetBackoff returns the delays one patient credential fetch waits
// after a sequence of failures — throttling answers where throttles[i] is
// true, other retryable failures elsewhere — with r standing for every
// random draw in [0, 1).
func FleetBackoff(throttles []bool, r float64) []time.Duration {
	var next bool
	b := &fleetBackoff{rand: func() float64 { return r }, throttle: retry.IsErrorThrottleFunc(func(error) aws.Ternary {
		return aws.BoolTernary(next)
	})}
	var out []time.Duration
	for i, t := range throttles {
		next = t
		d, _ := b.BackoffDelay(i+1, nil)
		out = append(out, d)
	}
	return out
}

// PatientAttempts is how many attempts a credential fetch makes while no
// valid credentials are cached.
const PatientAttempts = patientAttempts
