package sts_test

import (
	"context"
	"encoding/xml"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/internal/clock"
)

// post sends an AssumeRoleWithWebIdentity for role without a token: a
// ValidationError when admitted, Throttling when the account's bucket is
// empty.
func post(t *testing.T, s *sts.Server, role string) (int, string) {
	t.Helper()
	form := url.Values{"Action": {"AssumeRoleWithWebIdentity"}, "Version": {"2011-06-15"}, "RoleArn": {role}, "RoleSessionName": {"throttle"}}
	resp, err := http.Post(s.URL()+"/", "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	var er errorResponse
	require.NoError(t, xml.Unmarshal(b, &er), "%s", b)
	return resp.StatusCode, er.Error.Code + ": " + er.Error.Message
}

// The token bucket: a burst, then Throttling "Rate exceeded" (400) until
// the clock refills it, per account; no limit once removed. The clock is
// fake: nothing here depends on speed.
func TestRateLimitRejectsOverRate(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s, err := sts.New(reg, im, func(o *sts.Options) { o.Clock = clk; o.RateLimit = 5; o.RateBurst = 3 })
	require.NoError(t, err)
	defer s.Close()
	roleA := "arn:aws:iam::111122223333:role/a"
	roleB := "arn:aws:iam::444455556666:role/b"
	const throttled = "Throttling: Rate exceeded"

	for i := range 3 {
		status, got := post(t, s, roleA)
		assert.Equal(t, 400, status)
		assert.NotEqual(t, throttled, got, "request %d of the burst throttled", i+1)
	}
	status, got := post(t, s, roleA)
	assert.Equal(t, 400, status)
	assert.Equal(t, throttled, got, "request over the burst")
	_, got = post(t, s, roleB)
	assert.NotEqual(t, throttled, got, "another account shares the bucket")

	clk.Advance(200 * time.Millisecond) // 5/s: one token
	_, got = post(t, s, roleA)
	assert.NotEqual(t, throttled, got, "the refilled token was not granted")
	_, got = post(t, s, roleA)
	assert.Equal(t, throttled, got)

	clk.Advance(time.Hour) // refills to the burst, not beyond
	for range 3 {
		_, got = post(t, s, roleA)
		assert.NotEqual(t, throttled, got)
	}
	_, got = post(t, s, roleA)
	assert.Equal(t, throttled, got, "the bucket grew past its burst")

	// Throttled requests are calls, logged with their code and time.
	assert.EqualValues(t, 11, s.Calls(sts.ActionAssumeRoleWithWebIdentity))
	n := 0
	for _, c := range s.CallLog() {
		assert.False(t, c.At.IsZero())
		if c.Code == "Throttling" {
			n++
		}
	}
	assert.Equal(t, 3, n)

	// The SDK sees the throttling error its retryer backs off on.
	c := awssts.New(awssts.Options{Region: region, BaseEndpoint: aws.String(s.URL()), Retryer: aws.NopRetryer{}})
	_, err = c.AssumeRoleWithWebIdentity(context.Background(), &awssts.AssumeRoleWithWebIdentityInput{
		RoleArn: aws.String(roleA), RoleSessionName: aws.String("sdk"), WebIdentityToken: aws.String("x.y.z"),
	})
	wantAPIError(t, err, "Throttling", 400)
	assert.Equal(t, aws.TrueTernary, retry.IsErrorThrottles(retry.DefaultThrottles).IsErrorThrottle(err))

	s.SetRateLimit(0, 0)
	for range 10 {
		_, got = post(t, s, roleA)
		assert.NotEqual(t, throttled, got, "throttled without a limit")
	}
}

// Signed requests count against the signing credentials' account.
func TestRateLimitBySigningAccount(t *testing.T) {
	clk := clock.NewFake(time.Now())
	s, err := sts.New(reg, im, func(o *sts.Options) { o.Clock = clk; o.RateLimit = 1 })
	require.NoError(t, err)
	defer s.Close()
	a, err := reg.IssueSession("arn:aws:iam::111122223333:role/a", "s", time.Hour)
	require.NoError(t, err)
	b, err := reg.IssueSession("arn:aws:iam::444455556666:role/b", "s", time.Hour)
	require.NoError(t, err)
	call := func(c sigv4.Credentials) error {
		_, err := awssts.New(awssts.Options{Region: region, BaseEndpoint: aws.String(s.URL()), Retryer: aws.NopRetryer{}, Credentials: signer(c)}).
			GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
		return err
	}
	require.NoError(t, call(a))
	wantAPIError(t, call(a), "Throttling", 400)
	require.NoError(t, call(b), "account b throttled by account a's calls")
}
