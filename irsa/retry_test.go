package irsa_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/irsa"
)

// The backoff of a fetch with nothing cached: the n-th throttling answer
// waits a draw from [w/10, w], w = 10 s growing by half up to 30 s; the
// n-th other failure full jitter from 1 s doubling up to 20 s; the two
// counted apart, so throttling after an outage starts from the first
// window.
func TestFleetBackoffWindows(t *testing.T) {
	const s = time.Second
	throttled := []bool{true, true, true, true, true}
	assert.Equal(t, []time.Duration{s, 1500 * time.Millisecond, 2250 * time.Millisecond, 3 * s, 3 * s}, irsa.FleetBackoff(throttled, 0), "shortest waits")
	longest := irsa.FleetBackoff(throttled, 0.999999)
	for i, want := range []time.Duration{10 * s, 15 * s, 22500 * time.Millisecond, 30 * s, 30 * s} {
		assert.InDelta(t, float64(want), float64(longest[i]), float64(time.Millisecond), "longest wait after throttling answer %d", i+1)
	}
	failures := []bool{false, false, false, false, false, false}
	assert.Equal(t, make([]time.Duration, 6), irsa.FleetBackoff(failures, 0))
	longest = irsa.FleetBackoff(failures, 0.999999)
	for i, want := range []time.Duration{s, 2 * s, 4 * s, 8 * s, 16 * s, 20 * s} {
		assert.InDelta(t, float64(want), float64(longest[i]), float64(time.Millisecond), "longest wait after failure %d", i+1)
	}
	// An outage (four connection failures), then throttling: the
	// throttling windows start from the first.
	mixed := irsa.FleetBackoff([]bool{false, false, false, false, true, true}, 0)
	assert.Equal(t, []time.Duration{s, 1500 * time.Millisecond}, mixed[4:])
}

func noDelay(int, error) time.Duration { return 0 }

// With nothing cached, a fetch outlasts throttling that makes the SDK's
// default chain give up, in the same run against the same STS.
func TestColdFetchOutlastsThrottling(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	n := irsa.PatientAttempts - 1

	env.STS.ThrottleNext(n)
	sdk, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	_, err = sdk.Credentials.Retrieve(ctx)
	var ae smithy.APIError
	require.ErrorAs(t, err, &ae, "the SDK's default chain got credentials through %d throttled calls", n)
	assert.Equal(t, "Throttling", ae.ErrorCode())
	sdkCalls := env.STS.Calls(assumeOp)
	assert.EqualValues(t, 3, sdkCalls, "the SDK's standard retryer makes 3 attempts")
	env.STS.ClearFaults()
	env.STS.ResetCalls()

	env.STS.ThrottleNext(n)
	sess, _ := load(t, irsa.WithRetryDelays(noDelay))
	_, err = sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, n+1, env.STS.Calls(assumeOp))

	// Server errors too.
	env.STS.ResetCalls()
	env.STS.FailNext(3, "InternalFailure")
	sess, _ = load(t, irsa.WithRetryDelays(noDelay))
	_, err = sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 4, env.STS.Calls(assumeOp))
}

// With valid credentials cached, a refresh retries as briefly as the SDK
// does and the cached credentials are served.
func TestWarmRefreshIsBrief(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	sess, _ := load(t, irsa.WithRetryDelays(noDelay))
	first, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	env.STS.ResetCalls()
	env.STS.ThrottleNext(100)
	defer env.STS.ClearFaults()
	sess.Credentials().(*aws.CredentialsCache).Invalidate()
	c, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, first.AccessKeyID, c.AccessKeyID)
	assert.EqualValues(t, 3, env.STS.Calls(assumeOp), "a refresh with valid credentials cached makes the SDK's 3 attempts")
	assert.EqualValues(t, 1, sess.Stats().ServedStale)
}

// Retry settings in the configuration win: a maximum of attempts caps the
// patient fetch, a retryer replaces the policy.
func TestRetrySettingsOfTheConfigWin(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	env.STS.ThrottleNext(100)
	defer env.STS.ClearFaults()

	sess, _ := load(t, irsa.WithRetryDelays(noDelay), func(o *irsa.Options) {
		o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(2))
	})
	_, err := sess.Credentials().Retrieve(ctx)
	require.Error(t, err)
	assert.EqualValues(t, 2, env.STS.Calls(assumeOp))

	env.STS.ResetCalls()
	t.Setenv("AWS_MAX_ATTEMPTS", "4")
	sess, _ = load(t, irsa.WithRetryDelays(noDelay))
	_, err = sess.Credentials().Retrieve(ctx)
	require.Error(t, err)
	assert.EqualValues(t, 4, env.STS.Calls(assumeOp), "AWS_MAX_ATTEMPTS")

	env.STS.ResetCalls()
	sess, _ = load(t, func(o *irsa.Options) {
		o.ConfigOptions = append(o.ConfigOptions, config.WithRetryer(func() aws.Retryer { return aws.NopRetryer{} }))
	})
	_, err = sess.Credentials().Retrieve(ctx)
	require.Error(t, err)
	assert.EqualValues(t, 1, env.STS.Calls(assumeOp), "config.WithRetryer")
}
