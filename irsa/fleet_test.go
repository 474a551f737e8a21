package irsa_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/irsa"
)

// Options.StartJitter delays a session's first credential fetch, and only
// that one.
func TestStartJitterDelaysOnlyTheFirstFetch(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Now())
	env := awstest.Start(t, func(o *awstest.Options) { o.Clock = clk })
	env.Setenv(t)
	sess, _ := load(t, irsa.WithClock(clk), func(o *irsa.Options) { o.StartJitter = time.Hour })

	done := make(chan error, 1)
	go func() {
		_, err := sess.Credentials().Retrieve(ctx)
		done <- err
	}()
	require.Eventually(t, func() bool { return clk.Pending() > 0 }, 10*time.Second, time.Millisecond, "the first fetch waits on the clock")
	assert.Zero(t, env.STS.Calls(assumeOp), "STS called before the start jitter ended")
	select {
	case err := <-done:
		t.Fatalf("the first fetch did not wait: %v", err)
	default:
	}
	clk.Advance(time.Hour)
	require.NoError(t, <-done)
	assert.EqualValues(t, 1, env.STS.Calls(assumeOp))

	// A refresh starts at once.
	sess.Credentials().(*aws.CredentialsCache).Invalidate()
	_, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.EqualValues(t, 2, env.STS.Calls(assumeOp))

	// A caller that gives up while waiting gets its context's error, and
	// STS is not called.
	sess2, _ := load(t, irsa.WithClock(clk), func(o *irsa.Options) { o.StartJitter = time.Hour })
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	_, err = sess2.Credentials().Retrieve(cctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.EqualValues(t, 2, env.STS.Calls(assumeOp))
}

// While STS is down and cached credentials are valid, the pause before the
// next refresh doubles with each failure in a row, up to two minutes, so a
// fleet waiting out an outage sends a trickle of retries.
func TestStaleRetryBacksOff(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Now())
	env := awstest.Start(t, func(o *awstest.Options) { o.Clock = clk; o.CredentialTTL = time.Hour })
	env.Setenv(t)
	sess, _ := load(t, irsa.WithClock(clk), oneAttempt)
	first, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)

	env.STS.SetDown(true)
	cache := sess.Credentials().(*aws.CredentialsCache)
	windows := []struct{ lo, hi time.Duration }{
		{5 * time.Second, 10 * time.Second},
		{10 * time.Second, 20 * time.Second},
		{20 * time.Second, 40 * time.Second},
		{40 * time.Second, 80 * time.Second},
		{60 * time.Second, 120 * time.Second},
		{60 * time.Second, 120 * time.Second},
	}
	for i, w := range windows {
		cache.Invalidate()
		c, err := sess.Credentials().Retrieve(ctx)
		require.NoError(t, err, "failure %d: cached credentials must be served", i+1)
		assert.Equal(t, first.AccessKeyID, c.AccessKeyID)
		next := c.Expires.Sub(clk.Now())
		assert.True(t, next >= w.lo && next <= w.hi, "failure %d: next refresh in %s, want %s..%s", i+1, next, w.lo, w.hi)
		clk.Advance(next)
	}
	assert.EqualValues(t, len(windows), sess.Stats().ServedStale)
}
