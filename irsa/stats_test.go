package irsa_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/irsa"
)

func oneAttempt(o *irsa.Options) {
	o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(1))
}

// Through an STS outage during a refresh: the counters, the Warn line of
// the failure (with its class, without a secret), the cached credentials
// served, and the Info line of the recovery.
func TestStatsAndLogsThroughAnOutage(t *testing.T) {
	ctx := context.Background()
	clk := clock.NewFake(time.Now())
	env := awstest.Start(t, func(o *awstest.Options) { o.Clock = clk; o.CredentialTTL = 10 * time.Minute })
	env.Setenv(t)
	sess, logs := load(t, irsa.WithClock(clk), oneAttempt)
	assert.Equal(t, irsa.Stats{}, sess.Stats(), "counters before the first use")

	first, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	issued, ok := env.Registry.Lookup(first.AccessKeyID)
	require.True(t, ok)
	st := sess.Stats()
	assert.EqualValues(t, 1, st.Fetches)
	assert.Zero(t, st.EarlyRefreshes)
	assert.Zero(t, st.Failures)
	assert.Equal(t, clk.Now(), st.LastRefresh)
	assert.WithinDuration(t, issued.Expires, st.Expires, 0, "Expires is the real expiry, not the cache's refresh time")
	assert.Empty(t, st.LastErrorClass)

	// STS goes down; seven minutes on the refresh window has begun (the
	// cache reads the wall clock: Invalidate stands for it).
	cache := sess.Credentials().(*aws.CredentialsCache)
	env.STS.SetDown(true)
	clk.Advance(7 * time.Minute)
	cache.Invalidate()
	during, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err, "cached credentials must be served while valid")
	assert.Equal(t, first.AccessKeyID, during.AccessKeyID)
	st = sess.Stats()
	assert.EqualValues(t, 2, st.Fetches)
	assert.EqualValues(t, 1, st.EarlyRefreshes)
	assert.EqualValues(t, 1, st.Failures)
	assert.EqualValues(t, 1, st.ServedStale)
	assert.Equal(t, "network", st.LastErrorClass)
	assert.Equal(t, clk.Now(), st.LastFailure)
	assert.WithinDuration(t, issued.Expires, st.Expires, 0)
	warn := lineWith(t, logs.String(), "serving cached credentials until they expire")
	assert.Contains(t, warn, `"level":"WARN"`)
	assert.Contains(t, warn, `"error_class":"network"`)
	assert.Contains(t, warn, `"failures":1`)
	assert.Contains(t, warn, `"role_arn":"`+env.RoleARN+`"`)

	env.STS.SetDown(false)
	clk.Advance(time.Minute)
	cache.Invalidate()
	next, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessKeyID, next.AccessKeyID)
	st = sess.Stats()
	assert.EqualValues(t, 3, st.Fetches)
	assert.EqualValues(t, 1, st.Failures)
	assert.Empty(t, st.LastErrorClass, "the class is cleared by a success")
	assert.Equal(t, clk.Now(), st.LastRefresh)
	assert.True(t, st.Expires.After(issued.Expires))
	info := lineWith(t, logs.String(), "irsa: credential refresh works again")
	assert.Contains(t, info, `"level":"INFO"`)
	assert.Contains(t, info, `"failures":1`)

	tok, err := os.ReadFile(env.TokenFile)
	require.NoError(t, err)
	for _, secret := range []string{first.SecretAccessKey, first.SessionToken, next.SecretAccessKey, next.SessionToken, strings.TrimSpace(string(tok))} {
		assert.NotContains(t, logs.String(), secret, "a secret reached the log")
	}
}

func lineWith(t *testing.T, logs, msg string) string {
	t.Helper()
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, msg) {
			return l
		}
	}
	t.Fatalf("no log line %q in:\n%s", msg, logs)
	return ""
}

// Each kind of failure gets the class label the project's caches use, in
// Stats and in the Warn line.
func TestStatsErrorClasses(t *testing.T) {
	cases := []struct {
		class string
		setup func(t *testing.T, env *awstest.Env)
		opts  func(*irsa.Options)
	}{
		{"throttled", func(t *testing.T, env *awstest.Env) { env.STS.ThrottleNext(100) }, nil},
		{"access-denied", func(t *testing.T, env *awstest.Env) { write(t, env, oidc.ServiceAccountSubject("mcp", "intruder")) }, nil},
		{"credentials", func(t *testing.T, env *awstest.Env) { write(t, env, env.Subject, oidc.SignedByForeignKey()) }, nil},
		{"network", func(t *testing.T, env *awstest.Env) { env.STS.SetDown(true) }, nil},
		{"timeout", func(t *testing.T, env *awstest.Env) { env.STS.SetDelay(time.Minute) },
			func(o *irsa.Options) { o.HTTPClient = awshttp.NewBuildableClient().WithTimeout(100 * time.Millisecond) }},
		{"other", func(t *testing.T, env *awstest.Env) { env.STS.FailNext(100, "InternalFailure") }, nil},
	}
	for _, c := range cases {
		t.Run(c.class, func(t *testing.T) {
			env := awstest.Start(t)
			env.Setenv(t)
			c.setup(t, env)
			fns := []func(*irsa.Options){oneAttempt}
			if c.opts != nil {
				fns = append(fns, c.opts)
			}
			sess, logs := load(t, fns...)
			_, err := sess.Credentials().Retrieve(context.Background())
			require.Error(t, err)
			st := sess.Stats()
			assert.EqualValues(t, 1, st.Failures)
			assert.Equal(t, c.class, st.LastErrorClass)
			assert.True(t, st.LastRefresh.IsZero())
			warn := lineWith(t, logs.String(), "irsa: fetching credentials failed")
			assert.Contains(t, warn, `"error_class":"`+c.class+`"`)
		})
	}
}

// The SDK's own providers (environment keys here) are not counted.
func TestStatsZeroForSDKProviders(t *testing.T) {
	clearAWS(t)
	t.Setenv("AWS_REGION", "eu-west-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "dev-secret-value")
	sess, _ := load(t)
	_, err := sess.Credentials().Retrieve(context.Background())
	require.NoError(t, err)
	assert.Equal(t, irsa.Stats{}, sess.Stats())
}
