package elasticacheauth_test

import (
	"context"
	"errors"
	"log/slog"
	"net/url"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

const testRole = "arn:aws:iam::111122223333:role/app"

// fakeWorld is a registry and IAM on a fake clock, for tests of the token
// cache that move time.
type fakeWorld struct {
	clk *clock.Fake
	reg *sigv4.Registry
	iam *iam.IAM
}

func newFakeWorld(t *testing.T) *fakeWorld {
	t.Helper()
	w := &fakeWorld{clk: clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))}
	w.reg = sigv4.NewRegistry(w.clk)
	w.iam = iam.New(sigv4.DefaultAccount)
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	memorydb := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"memorydb:Connect","Resource":["arn:aws:memorydb:us-east-1:111122223333:cluster/orders","arn:aws:memorydb:us-east-1:111122223333:user/app-user"]}]}`)
	require.NoError(t, w.iam.PutRole(testRole, trust, connectPolicy("us-east-1", "orders", "sessions"), memorydb))
	return w
}

// creds issues session credentials valid for ttl as a provider with
// CanExpire, like the SDK's credential cache returns them.
func (w *fakeWorld) creds(t testing.TB, ttl time.Duration) aws.Credentials {
	t.Helper()
	c, err := w.reg.IssueSession(testRole, "test", ttl)
	require.NoError(t, err)
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires, Source: "test"}
}

func static(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

func (w *fakeWorld) verify(t *testing.T, tok elasticacheauth.Token, check redisfront.Check) {
	t.Helper()
	_, err := redisfront.VerifyToken(w.reg, w.iam, check, tok.User(), tok.Value())
	require.NoError(t, err, "the documented verifier refuses the token")
}

func TestTokenFormat(t *testing.T) {
	w := newFakeWorld(t)
	creds := w.creds(t, time.Hour)
	tests := []struct {
		name      string
		cache     string
		opts      func(*elasticacheauth.Options)
		wantHost  string
		service   string
		extraKeys []string
	}{
		{"replication group", "orders", nil, "orders", "elasticache", nil},
		{"upper-case name is lower-cased", "Orders", nil, "orders", "elasticache", nil},
		{"serverless", "sessions", func(o *elasticacheauth.Options) { o.Serverless = true }, "sessions", "elasticache", []string{"ResourceType"}},
		{"memorydb", "orders", func(o *elasticacheauth.Options) { o.MemoryDB = true }, "orders", "memorydb", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src, err := elasticacheauth.NewTokenSource(tc.cache, userID, static(creds), func(o *elasticacheauth.Options) {
				o.Region = "us-east-1"
				elasticacheauth.WithClock(w.clk)(o)
				if tc.opts != nil {
					tc.opts(o)
				}
			})
			require.NoError(t, err)
			defer src.Close()
			tok, err := src.Token(context.Background())
			require.NoError(t, err)
			v := tok.Value()
			require.NotContains(t, v, "://", "token has a scheme: it must be the URL without http://")
			u, err := url.Parse("http://" + v)
			require.NoError(t, err)
			assert.Equal(t, tc.wantHost, u.Host)
			assert.Equal(t, "/", u.Path)
			q := u.Query()
			var keys []string
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := append([]string{"Action", "User", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token", "X-Amz-Signature", "X-Amz-SignedHeaders"}, tc.extraKeys...)
			sort.Strings(want)
			require.Equal(t, want, keys, "query keys")
			for k, v := range map[string]string{
				"Action": "connect", "User": userID, "X-Amz-Expires": "900", "X-Amz-SignedHeaders": "host",
				"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": "20260301T120000Z",
			} {
				assert.Equal(t, v, q.Get(k), k)
			}
			if tc.extraKeys != nil {
				assert.Equal(t, "ServerlessCache", q.Get("ResourceType"))
			}
			assert.True(t, strings.HasSuffix(q.Get("X-Amz-Credential"), "/20260301/us-east-1/"+tc.service+"/aws4_request"), "credential scope %q", q.Get("X-Amz-Credential"))
			assert.Equal(t, tc.wantHost, tok.CacheName())
			assert.Equal(t, userID, tok.User())
			assert.Equal(t, "us-east-1", tok.Region())
			assert.Equal(t, w.clk.Now().Add(15*time.Minute), tok.Expires())
			// The verifier written from the AWS documentation accepts it.
			w.verify(t, tok, redisfront.Check{Service: tc.service, Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: tc.wantHost, Serverless: tc.extraKeys != nil})
		})
	}
}

func TestTokenVerifierRefusesMismatches(t *testing.T) {
	w := newFakeWorld(t)
	src, err := elasticacheauth.NewTokenSource("orders", userID, static(w.creds(t, time.Hour)), func(o *elasticacheauth.Options) {
		o.Region = "us-east-1"
		elasticacheauth.WithClock(w.clk)(o)
	})
	require.NoError(t, err)
	defer src.Close()
	tok, err := src.Token(context.Background())
	require.NoError(t, err)
	good := redisfront.Check{Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"}
	for name, c := range map[string]redisfront.Check{
		"serverless cache": {Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders", Serverless: true},
		"other region":     {Region: "eu-west-1", Account: sigv4.DefaultAccount, CacheName: "orders"},
		"other cache":      {Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "payments"},
		"memorydb":         {Service: "memorydb", Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"},
	} {
		_, err := redisfront.VerifyToken(w.reg, w.iam, c, userID, tok.Value())
		assert.Error(t, err, "%s: accepted", name)
	}
	_, err = redisfront.VerifyToken(w.reg, w.iam, good, "other-user", tok.Value())
	assert.Error(t, err, "other user: accepted")
	w.clk.Advance(15 * time.Minute)
	_, err = redisfront.VerifyToken(w.reg, w.iam, good, userID, tok.Value())
	assert.Error(t, err, "accepted after 15 minutes")
}

func TestNewTokenSourceRejectsBadInput(t *testing.T) {
	creds := static(aws.Credentials{AccessKeyID: "AKIA", SecretAccessKey: "s"})
	region := func(o *elasticacheauth.Options) { o.Region = "us-east-1" }
	tests := []struct {
		name, cache, user string
		creds             aws.CredentialsProvider
		opts              func(*elasticacheauth.Options)
		want              error
	}{
		{"no cache name", "", userID, creds, region, elasticacheauth.ErrInvalidCacheName},
		{"endpoint host as cache name", "master.orders.abc123.use1.cache.amazonaws.com", userID, creds, region, elasticacheauth.ErrInvalidCacheName},
		{"cache name with slash", "orders/x", userID, creds, region, elasticacheauth.ErrInvalidCacheName},
		{"no user", "orders", "", creds, region, elasticacheauth.ErrInvalidUser},
		{"user with space", "orders", "app user", creds, region, elasticacheauth.ErrInvalidUser},
		{"no credentials", "orders", userID, nil, region, elasticacheauth.ErrNoCredentials},
		{"no region", "orders", userID, creds, nil, elasticacheauth.ErrNoRegion},
		{"region code instead of name", "orders", userID, creds, func(o *elasticacheauth.Options) { o.Region = "use1" }, elasticacheauth.ErrNoRegion},
		{"memorydb serverless", "orders", userID, creds, func(o *elasticacheauth.Options) {
			o.Region, o.MemoryDB, o.Serverless = "us-east-1", true, true
		}, elasticacheauth.ErrInvalidOptions},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var fns []func(*elasticacheauth.Options)
			if tc.opts != nil {
				fns = append(fns, tc.opts)
			}
			_, err := elasticacheauth.NewTokenSource(tc.cache, tc.user, tc.creds, fns...)
			assert.ErrorIs(t, err, tc.want)
		})
	}
}

func newSource(t *testing.T, w *fakeWorld, p aws.CredentialsProvider, optFns ...func(*elasticacheauth.Options)) *elasticacheauth.TokenSource {
	t.Helper()
	src, err := elasticacheauth.NewTokenSource("orders", userID, p, append([]func(*elasticacheauth.Options){func(o *elasticacheauth.Options) {
		o.Region = "us-east-1"
		elasticacheauth.WithClock(w.clk)(o)
		o.JitterFrac = -1
	}}, optFns...)...)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 20*time.Second, time.Millisecond, "waiting for %s", what)
}

func TestTokenCacheHitsRefreshesAndInvalidates(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, 2*time.Hour)))
	ctx := context.Background()
	first, err := src.Token(ctx)
	require.NoError(t, err)
	for i := 0; i < 1000; i++ {
		tok, err := src.Token(ctx)
		require.NoError(t, err)
		require.Equal(t, first.Value(), tok.Value(), "hit %d", i)
	}
	require.Equal(t, int64(1), src.Mints(), "mints after 1001 Token calls")
	// Served until 14 min (1 min margin), refreshed early from 9 min (5 min
	// before, no jitter): the old token is answered while a new one mints.
	w.clk.Advance(9 * time.Minute)
	tok, _ := src.Token(ctx)
	require.Equal(t, first.Value(), tok.Value(), "early refresh did not answer the still-valid token")
	waitFor(t, "the early refresh", func() bool {
		tok, _ := src.Token(ctx)
		return tok.Value() != first.Value()
	})
	require.Equal(t, int64(2), src.Mints())
	assert.Equal(t, int64(1), src.Stats().EarlyRefreshes)
	second, _ := src.Token(ctx)
	// Invalidating an older (or the zero) token does nothing; the current
	// one drops it.
	src.Invalidate(first)
	src.Invalidate(elasticacheauth.Token{})
	tok, _ = src.Token(ctx)
	require.Equal(t, second.Value(), tok.Value(), "invalidating a stale token dropped the current one")
	require.Equal(t, int64(2), src.Mints())
	w.clk.Advance(time.Second) // a new signing time, so a new value
	src.Invalidate(second)
	tok, err = src.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, second.Value(), tok.Value(), "the invalidated token was served")
	assert.Equal(t, int64(3), src.Mints())
}

func TestTokenLifetimeCappedByCredentials(t *testing.T) {
	w := newFakeWorld(t)
	var calls atomic.Int64
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		calls.Add(1)
		return w.creds(t, 5*time.Minute), nil
	})
	src := newSource(t, w, p)
	ctx := context.Background()
	tok, err := src.Token(ctx)
	require.NoError(t, err)
	require.Equal(t, w.clk.Now().Add(5*time.Minute), tok.Expires(), "the credentials' expiry caps the token's")
	// Not served within the margin (1 min) of the credentials' expiry.
	w.clk.Advance(4 * time.Minute)
	next, err := src.Token(ctx)
	require.NoError(t, err)
	require.NotEqual(t, tok.Value(), next.Value(), "token served past its credentials' expiry minus margin")
	w.verify(t, next, redisfront.Check{Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"})
}

func TestExpiredCredentialsAreRefused(t *testing.T) {
	w := newFakeWorld(t)
	c := w.creds(t, time.Minute)
	w.clk.Advance(2 * time.Minute)
	src := newSource(t, w, static(c))
	_, err := src.Token(context.Background())
	require.ErrorIs(t, err, elasticacheauth.ErrCredentialsExpired)
	assert.NotContains(t, err.Error(), c.AccessKeyID, "error leaks the key")
	assert.NotContains(t, err.Error(), c.SecretAccessKey, "error leaks the key")
	assert.Equal(t, "credentials", src.Stats().LastErrorClass)
}

func TestFailedRefreshKeepsLastGoodToken(t *testing.T) {
	w := newFakeWorld(t)
	good := w.creds(t, 2*time.Hour)
	var calls atomic.Int64
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		if calls.Add(1) > 1 {
			return aws.Credentials{}, errors.New("sts unavailable")
		}
		return good, nil
	})
	logs := &countingHandler{}
	src := newSource(t, w, p, func(o *elasticacheauth.Options) { o.Logger = slog.New(logs) })
	ctx := context.Background()
	first, err := src.Token(ctx)
	require.NoError(t, err)
	w.clk.Advance(10 * time.Minute)
	for i := 0; i < 3; i++ {
		tok, err := src.Token(ctx)
		require.NoError(t, err, "during failing refresh")
		require.Equal(t, first.Value(), tok.Value())
		// Asking again starts the refresh once the previous attempt has
		// fully finished; each answer is still the old token.
		waitFor(t, "a failed refresh", func() bool {
			tok, err := src.Token(ctx)
			require.NoError(t, err, "during failing refresh")
			require.Equal(t, first.Value(), tok.Value())
			return logs.n.Load() >= int64(1+i)
		})
		w.clk.Advance(6 * time.Second) // past the retry back-off
	}
	assert.Equal(t, int64(4), calls.Load(), "credential calls")
	assert.False(t, logs.leaked.Load(), "a log record holds the token")
	st := src.Stats()
	assert.Equal(t, int64(3), st.Failures)
	assert.Equal(t, "credentials", st.LastErrorClass)
	assert.Positive(t, st.ServedStale)
	// Past the serving window, the failure surfaces.
	w.clk.Set(first.SignedAt().Add(14 * time.Minute))
	_, err = src.Token(ctx)
	require.ErrorContains(t, err, "sts unavailable", "after the window")
}

func TestConcurrentMissesMintOnce(t *testing.T) {
	w := newFakeWorld(t)
	c := w.creds(t, time.Hour)
	release := make(chan struct{})
	var calls atomic.Int64
	p := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		calls.Add(1)
		<-release
		return c, nil
	})
	src := newSource(t, w, p)
	var wg sync.WaitGroup
	vals := make([]string, 100)
	for i := range vals {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tok, err := src.Token(context.Background())
			assert.NoError(t, err)
			vals[i] = tok.Value()
		}()
	}
	waitFor(t, "the mint to start", func() bool { return calls.Load() == 1 })
	close(release)
	wg.Wait()
	require.NotEmpty(t, vals[0])
	for _, v := range vals {
		require.Equal(t, vals[0], v, "callers got different tokens")
	}
	assert.Equal(t, int64(1), calls.Load())
	assert.Equal(t, int64(1), src.Mints())
}

func TestCallerContextBoundsTheWait(t *testing.T) {
	w := newFakeWorld(t)
	block := make(chan struct{})
	defer close(block)
	p := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		<-block
		return aws.Credentials{}, errors.New("unreachable")
	})
	src := newSource(t, w, p)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := src.Token(ctx)
	assert.ErrorIs(t, err, context.Canceled)
	assert.True(t, strings.HasPrefix(err.Error(), "elasticacheauth: "), "error %q lacks the package prefix", err)
}

func TestClosedSource(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, time.Hour)))
	require.NoError(t, src.Close())
	_, err := src.Token(context.Background())
	assert.ErrorIs(t, err, elasticacheauth.ErrClosed)
}

// countingHandler counts warnings and checks no record holds a token.
type countingHandler struct {
	n      atomic.Int64
	leaked atomic.Bool
}

func (h *countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *countingHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Level >= slog.LevelWarn {
		h.n.Add(1)
	}
	r.Attrs(func(a slog.Attr) bool {
		if strings.Contains(a.Value.String(), "X-Amz-Signature") {
			h.leaked.Store(true)
		}
		return true
	})
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }

var zeroCreds = aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret"}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A failed mint is logged at Warn, the recovery at Info, without a token or
// key; Stats tells the same story.
func TestLogsFailureAndRecovery(t *testing.T) {
	w := newFakeWorld(t)
	good := w.creds(t, 2*time.Hour)
	var failing atomic.Bool
	p := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		if failing.Load() {
			return aws.Credentials{}, errors.New("sts unavailable")
		}
		return good, nil
	})
	var buf lockedBuffer
	src := newSource(t, w, p, func(o *elasticacheauth.Options) { o.Logger = slog.New(slog.NewJSONHandler(&buf, nil)) })
	ctx := context.Background()
	first, err := src.Token(ctx)
	require.NoError(t, err)
	failing.Store(true)
	w.clk.Advance(14 * time.Minute) // past the serving window: the failure surfaces
	_, err = src.Token(ctx)
	require.Error(t, err)
	failing.Store(false)
	second, err := src.Token(ctx)
	require.NoError(t, err)
	waitFor(t, "the recovery record", func() bool { return strings.Contains(buf.String(), "works again") })
	out := buf.String()
	assert.Contains(t, out, `"level":"WARN","msg":"elasticacheauth: minting a token failed"`)
	assert.Contains(t, out, `"error_class":"credentials"`)
	assert.Contains(t, out, `"level":"INFO","msg":"elasticacheauth: minting tokens works again","user":"app-user","cache":"orders","failures":1`)
	for _, secret := range []string{first.Value(), second.Value(), good.SecretAccessKey, good.SessionToken, "X-Amz-Signature"} {
		assert.NotContains(t, out, secret, "log shows a secret")
	}
	st := src.Stats()
	assert.Equal(t, int64(3), st.Fetches)
	assert.Equal(t, int64(1), st.Failures)
	assert.Empty(t, st.LastErrorClass)
	assert.Equal(t, 1, st.Entries)
	assert.Equal(t, second.Expires(), st.Expires)
	assert.Equal(t, w.clk.Now(), st.LastRefresh)
}

// Close cancels a mint waiting on the credentials provider and returns only
// once it has returned.
func TestCloseCancelsAMintInFlight(t *testing.T) {
	w := newFakeWorld(t)
	arrived := make(chan struct{})
	var returned atomic.Bool
	p := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		close(arrived)
		defer returned.Store(true)
		<-ctx.Done()
		return aws.Credentials{}, ctx.Err()
	})
	src := newSource(t, w, p)
	errc := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background())
		errc <- err
	}()
	<-arrived
	require.NoError(t, src.Close())
	assert.True(t, returned.Load(), "Close returned before the mint did")
	assert.ErrorIs(t, <-errc, elasticacheauth.ErrClosed)
}
