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

// FleetBackoff is the delay the patient credential fetch waits after
// attempt failed with a throttling error (or another retryable error),
// with r standing for the random draw in [0, 1).
func FleetBackoff(attempt int, throttle bool, r float64) time.Duration {
	b := fleetBackoff{rand: func() float64 { return r }, throttle: retry.IsErrorThrottleFunc(func(error) aws.Ternary {
		return aws.BoolTernary(throttle)
	})}
	d, _ := b.BackoffDelay(attempt, nil)
	return d
}

// PatientAttempts is how many attempts a credential fetch makes while no
// valid credentials are cached.
const PatientAttempts = patientAttempts
