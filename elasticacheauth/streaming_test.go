package elasticacheauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
)

// logLines keeps every log record as text.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

func (h *logLines) Enabled(context.Context, slog.Level) bool { return true }
func (h *logLines) Handle(_ context.Context, r slog.Record) error {
	s := r.Level.String() + " " + r.Message
	r.Attrs(func(a slog.Attr) bool { s += " " + a.String(); return true })
	h.mu.Lock()
	h.lines = append(h.lines, s)
	h.mu.Unlock()
	return nil
}
func (h *logLines) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *logLines) WithGroup(string) slog.Handler      { return h }

func (h *logLines) all() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.lines...)
}

// A credentials provider that fails (STS unreachable) never makes the
// provider report an error to go-redis: rounds that get no token push
// nothing and are retried with back-off, new connections get the last good
// token while it is valid, and the first round that gets a token pushes it.
func TestStreamingProviderRidesOutAFailingCredentialsProvider(t *testing.T) {
	w := newFakeWorld(t)
	good := w.creds(t, 3*time.Hour)
	var down atomic.Bool
	var calls atomic.Int64
	creds := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls.Add(1)
		if down.Load() {
			return aws.Credentials{}, errors.New("sts: connection refused")
		}
		return good, nil
	})
	src := newSource(t, w, creds)
	logs := &logLines{}
	const interval = 14*time.Minute + 30*time.Second
	p := elasticacheauth.NewStreamingCredentialsProvider(src, elasticacheauth.StreamingClock(w.clk), func(o *elasticacheauth.StreamingOptions) {
		o.Interval = interval
		o.RetryInterval = 10 * time.Second
		o.Logger = slog.New(logs)
	})
	defer p.Close()
	live := &countingListener{}
	c1, _, err := p.Subscribe(live)
	require.NoError(t, err)
	_, first := c1.BasicAuth()

	// STS goes down. The first token stops being served at 14:00 (a
	// minute before it expires); the round at 14:30 gets none.
	down.Store(true)
	w.clk.Advance(interval)
	assert.Zero(t, live.errs.Load(), "an error reached go-redis's listener (go-redis closes the connection)")
	assert.Zero(t, live.next.Load(), "pushed without a token")
	assert.Zero(t, p.Pushes())
	require.Len(t, logs.all(), 1, "one warning per round without a token")
	assert.Contains(t, logs.all()[0], "stay authenticated")

	// A new connection gets the last good token, valid for 30 s more.
	c2, _, err := p.Subscribe(&countingListener{})
	require.NoError(t, err, "a new connection while the last good token is valid")
	_, pw := c2.BasicAuth()
	assert.Equal(t, first, pw, "not the last good token")

	// Rounds are retried with back-off: the next within RetryInterval, then
	// doubling up to the interval.
	rounds := func() int { return len(logs.all()) }
	w.clk.Advance(10 * time.Second)
	assert.Equal(t, 2, rounds(), "the first retry comes within RetryInterval")
	for range 10 * 60 {
		w.clk.Advance(time.Second)
	}
	t.Logf("%d rounds in 10 min 10 s of outage, %d credential retrievals", rounds(), calls.Load())
	// Retries 10, 20, 40, 80, 160, 320 s apart, each shortened by up to a
	// quarter: 6 or 7 rounds by now. Without back-off there would be 62.
	assert.GreaterOrEqual(t, rounds(), 6, "retried too rarely")
	assert.LessOrEqual(t, rounds(), 7, "retried without back-off")
	assert.Zero(t, live.errs.Load(), "an error reached go-redis's listener")

	// The last good token has expired: a new connection cannot be
	// authenticated and fails with the credentials error; the live one
	// is still not told anything.
	_, _, err = p.Subscribe(&countingListener{})
	require.Error(t, err, "a new connection without any valid token")
	assert.Contains(t, err.Error(), "sts: connection refused")
	assert.Zero(t, live.errs.Load())

	// STS is back: the next round (at most the interval later) pushes a
	// fresh token, and rounds return to the interval.
	down.Store(false)
	w.clk.Advance(interval)
	require.Equal(t, int64(1), live.next.Load(), "no push after recovery")
	assert.Equal(t, int64(1), p.Pushes())
	c3, _, err := p.Subscribe(live)
	require.NoError(t, err)
	_, fresh := c3.BasicAuth()
	assert.NotEqual(t, first, fresh, "pushed the old token")
	before := rounds()
	w.clk.Advance(interval - time.Second)
	assert.Equal(t, int64(1), live.next.Load(), "pushed before the interval")
	w.clk.Advance(time.Second)
	assert.Equal(t, int64(2), live.next.Load(), "no push after the interval")
	assert.Equal(t, before, rounds(), "warned while healthy")

	for _, l := range logs.all() {
		assert.NotContains(t, l, "X-Amz-Signature", "a token in the log")
		assert.NotContains(t, l, first)
	}
	assert.NotContains(t, fmt.Sprint(err), "X-Amz-Signature")
}
