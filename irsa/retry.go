package irsa

import (
	"context"
	"math"
	"math/rand/v2"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// The retry policy of credential fetches from STS.
//
// A pod without credentials can do nothing, and a fleet that starts at once
// (a rollout of thousands of pods) meets STS's per-account rate limit: the
// SDK's standard retryer gives up after 3 attempts within about 3 seconds,
// so most pods of such a fleet fail their first AWS call and their retries
// arrive together again. While no valid credentials are cached, a fetch
// therefore retries patiently: the n-th throttling answer is retried after
// a delay drawn uniformly from [w/10, w], w = 10 s growing by half with n
// up to 30 s, which spreads a fleet's retries over the seconds STS needs
// to serve it instead of sending them back at once; the n-th other
// retryable failure (5xx, connection errors) backs off with full jitter
// from 1 s doubling up to 20 s, so the retries of pods waiting out an
// outage are spread when STS comes back. The two are counted apart: a
// fleet that waited out an outage meets the throttling after it with the
// first, short windows, not with windows grown by the outage's failures.
// No delay comes before the first attempt: a pod starting alone
// is not slowed. The SDK's client-side retry quota is off for these
// fetches: one fetch per process is in flight, never a storm.
//
// While valid credentials are cached (a refresh ahead of expiry), the
// fetch uses the SDK's standard retryer: a failed refresh only means the
// cached credentials are served a little longer (see resilientProvider).
const (
	patientAttempts      = 10
	throttleWindow       = 10 * time.Second
	throttleWindowGrowth = 1.5
	maxThrottleWindow    = 30 * time.Second
	failureBackoffBase   = time.Second
	failureBackoffGrowth = 2
	maxFailureBackoff    = 20 * time.Second
)

// fleetBackoff is the backoff of one patient fetch: it counts the
// throttling answers and the other failures of that fetch (the retry
// middleware asks for delays one at a time, so it needs no lock).
type fleetBackoff struct {
	throttle            retry.IsErrorThrottle
	rand                func() float64
	throttles, failures int
}

func (b *fleetBackoff) BackoffDelay(_ int, err error) (time.Duration, error) {
	r := b.rand()
	if b.throttle.IsErrorThrottle(err).Bool() {
		b.throttles++
		w := time.Duration(math.Min(float64(maxThrottleWindow), float64(throttleWindow)*math.Pow(throttleWindowGrowth, float64(b.throttles-1))))
		return w/10 + time.Duration(r*float64(w-w/10)), nil
	}
	b.failures++
	w := time.Duration(math.Min(float64(maxFailureBackoff), float64(failureBackoffBase)*math.Pow(failureBackoffGrowth, float64(b.failures-1))))
	return time.Duration(r * float64(w)), nil
}

// retryPolicy picks the retryer of each credential fetch.
type retryPolicy struct {
	// patient returns a retryer for one fetch with nothing cached.
	patient func() aws.Retryer
	brief   aws.Retryer
	// warm reports whether valid credentials are cached.
	warm func() bool
}

// newRetryPolicy builds the policy for a session's config. A retryer set
// in the config (config.WithRetryer) replaces irsakit's policy; a maximum
// number of attempts (config.WithRetryMaxAttempts, AWS_MAX_ATTEMPTS,
// max_attempts) caps both retryers. delays, when set, replaces both
// backoffs (tests).
func newRetryPolicy(cfg aws.Config, delays retry.BackoffDelayer) *retryPolicy {
	if cfg.Retryer != nil {
		r := cfg.Retryer()
		return &retryPolicy{patient: func() aws.Retryer { return r }, brief: r}
	}
	capped := func(r aws.Retryer) aws.Retryer {
		if n := cfg.RetryMaxAttempts; n > 0 {
			return retry.AddWithMaxAttempts(r, n)
		}
		return r
	}
	patient := func() aws.Retryer {
		return capped(retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = patientAttempts
			o.Backoff = &fleetBackoff{throttle: retry.IsErrorThrottles(o.Throttles), rand: rand.Float64}
			if delays != nil {
				o.Backoff = delays
			}
			o.RateLimiter = ratelimit.None
		}))
	}
	brief := capped(retry.NewStandard(func(o *retry.StandardOptions) {
		if delays != nil {
			o.Backoff = delays
		}
	}))
	return &retryPolicy{patient: patient, brief: brief}
}

// apply sets the retryer of one fetch's STS call.
func (p *retryPolicy) apply(o *sts.Options) {
	if p.warm != nil && p.warm() {
		o.Retryer = p.brief
		return
	}
	o.Retryer = p.patient()
}

var (
	_ stscreds.AssumeRoleWithWebIdentityAPIClient = stsCredentialClient{}
	_ stscreds.AssumeRoleAPIClient                = stsCredentialClient{}
)

// stsCredentialClient is the STS client of a credential provider, with the
// retry policy applied to each call.
type stsCredentialClient struct {
	client *sts.Client
	policy *retryPolicy
}

func (c stsCredentialClient) AssumeRoleWithWebIdentity(ctx context.Context, in *sts.AssumeRoleWithWebIdentityInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleWithWebIdentityOutput, error) {
	return c.client.AssumeRoleWithWebIdentity(ctx, in, append(optFns, c.policy.apply)...)
}

func (c stsCredentialClient) AssumeRole(ctx context.Context, in *sts.AssumeRoleInput, optFns ...func(*sts.Options)) (*sts.AssumeRoleOutput, error) {
	return c.client.AssumeRole(ctx, in, append(optFns, c.policy.apply)...)
}
