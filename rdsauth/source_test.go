package rdsauth_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/rdsauth"
)

// advance moves the shared clock and keeps the projected service-account
// token fresh, as the kubelet would.
func advance(t testing.TB, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	require.NoError(t, env.RotateToken())
}

// verify checks tok the way the front (RDS) would, now.
func verify(t *testing.T, tok rdsauth.Token) {
	t.Helper()
	_, err := front.VerifyToken(tok.Value(), tok.User(), tok.Endpoint())
	require.NoError(t, err, "token refused at %s", clk.Now().UTC().Format(time.RFC3339))
}

func newSource(t *testing.T, creds aws.CredentialsProvider, optFns ...func(*rdsauth.Options)) *rdsauth.TokenSource {
	t.Helper()
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, append([]func(*rdsauth.Options){fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() }}, optFns...)...)
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

// failingCreds hands out creds until told to fail, counting attempts.
type failingCreds struct {
	creds    *switchableCreds
	failing  atomic.Bool
	attempts atomic.Int64
}

func (f *failingCreds) Retrieve(ctx context.Context) (aws.Credentials, error) {
	f.attempts.Add(1)
	if f.failing.Load() {
		return aws.Credentials{}, errors.New("sts unavailable")
	}
	return f.creds.Retrieve(ctx)
}

func TestTokenIsAcceptedAndCached(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, time.Hour)
	src := newSource(t, creds)
	tok, err := src.Token(ctx)
	require.NoError(t, err)
	verify(t, tok)
	assert.Equal(t, "app", tok.User())
	assert.Equal(t, front.Addr(), tok.Endpoint())
	assert.Equal(t, "us-east-1", tok.Region())
	assert.Equal(t, tok.SignedAt().Add(15*time.Minute), tok.Expires(), "expiry is signing time + 15m")
	assert.Contains(t, tok.Value(), "X-Amz-Expires=900")
	assert.Contains(t, tok.Value(), "Action=connect")
	assert.True(t, strings.HasPrefix(tok.Value(), front.Addr()+"/?"), "token does not have the RDS shape")
	for range 10 {
		again, err := src.Token(ctx)
		require.NoError(t, err)
		require.Equal(t, tok.Value(), again.Value(), "cache hit returned another token")
	}
	assert.Equal(t, int64(1), src.Mints())
	assert.Equal(t, int64(1), creds.retrieves.Load())
}

func TestTokenLifetimeCappedByCredentials(t *testing.T) {
	creds := newSwitchableCreds(t, 5*time.Minute)
	src := newSource(t, creds)
	tok, err := src.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, creds.cur.Load().Expires, tok.Expires(), "the credentials' expiry caps the token's")
}

// Short-lived credentials (60 s) are never used to sign a token past their
// expiry, and no token is served after its credentials expire.
func TestShortLivedCredentialsNeverSignExpiredTokens(t *testing.T) {
	ctx := context.Background()
	// A provider that behaves like aws.CredentialsCache on the fake clock:
	// same credentials until they expire, then new 60-second ones.
	var mu sync.Mutex
	creds := newSwitchableCreds(t, 60*time.Second)
	prov := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		mu.Lock()
		defer mu.Unlock()
		if !clk.Now().Before(creds.cur.Load().Expires) {
			creds.rotate(t, 60*time.Second)
		}
		return creds.Retrieve(ctx)
	})
	for _, margin := range []time.Duration{0, 10 * time.Second} {
		t.Run(fmt.Sprintf("margin %v", margin), func(t *testing.T) {
			src := newSource(t, prov, func(o *rdsauth.Options) { o.Margin = margin })
			for range 60 {
				tok, err := src.Token(ctx)
				require.NoError(t, err)
				verify(t, tok)
				require.True(t, clk.Now().Before(tok.Expires()), "served a token that expired at %v (now %v)", tok.Expires(), clk.Now())
				advance(t, 7*time.Second)
			}
		})
	}
}

func TestExpiredCredentialsAreNamed(t *testing.T) {
	c, err := env.Registry.IssueSession(env.RoleARN, "old", time.Second)
	require.NoError(t, err)
	advance(t, 2*time.Second)
	stale := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires}, nil
	})
	src := newSource(t, stale)
	_, err = src.Token(context.Background())
	require.ErrorIs(t, err, rdsauth.ErrCredentialsExpired)
	assert.NotContains(t, err.Error(), c.AccessKeyID, "error shows the credentials")
	assert.NotContains(t, err.Error(), c.SecretAccessKey, "error shows the credentials")
	assert.Equal(t, "credentials", src.Stats().LastErrorClass)
}

// An aws.CredentialsCache judges expiry by the real clock; when the
// source's clock says its credentials expired, it is invalidated and asked
// again instead of signing with them.
func TestCredentialsCacheInvalidatedWhenExpired(t *testing.T) {
	ctx := context.Background()
	cfg := sessionConfig(t)
	src := newSource(t, cfg.Credentials)
	_, err := src.Token(ctx)
	require.NoError(t, err)
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	advance(t, 61*time.Minute) // past the 1-hour credentials
	tok, err := src.Token(ctx)
	require.NoError(t, err)
	verify(t, tok)
	assert.EqualValues(t, 1, env.STS.Calls("AssumeRoleWithWebIdentity")-before, "STS calls")
}

func TestConcurrentMissesMintOnce(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	arrived := make(chan struct{}, 1)
	creds := newSwitchableCreds(t, time.Hour)
	blocking := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		arrived <- struct{}{}
		<-release
		return creds.Retrieve(ctx)
	})
	src := newSource(t, blocking)
	var wg sync.WaitGroup
	toks := make([]rdsauth.Token, 100)
	errs := make([]error, 100)
	for i := range toks {
		wg.Go(func() { toks[i], errs[i] = src.Token(ctx) })
	}
	<-arrived // the one mint is under way; the callers pile up on it
	close(release)
	wg.Wait()
	for i := range toks {
		require.NoError(t, errs[i])
		require.Equal(t, toks[0].Value(), toks[i].Value(), "callers got different tokens")
	}
	assert.Equal(t, int64(1), src.Mints())
	assert.Equal(t, int64(1), creds.retrieves.Load())
}

func TestEarlyRefreshAndStaleWhileValid(t *testing.T) {
	ctx := context.Background()
	prov := &failingCreds{creds: newSwitchableCreds(t, 2*time.Hour)}
	src := newSource(t, prov)
	first, err := src.Token(ctx)
	require.NoError(t, err)
	prov.failing.Store(true)
	// Past the latest early-refresh point (14m served, refresh 2.5m to 5m
	// before that), before the token stops being served.
	advance(t, 12*time.Minute)
	for range 3 {
		tok, err := src.Token(ctx)
		require.NoError(t, err, "failed refresh surfaced while the token was valid")
		require.Equal(t, first.Value(), tok.Value(), "token changed although refreshes fail")
	}
	waitFor(t, func() bool { return src.Stats().Failures == 1 }) // the background refresh ran
	// Within the retry back-off: answered with the kept token, and counted.
	stale := src.Stats().ServedStale
	for range 3 {
		tok, err := src.Token(ctx)
		require.NoError(t, err)
		require.Equal(t, first.Value(), tok.Value())
	}
	assert.Equal(t, stale+3, src.Stats().ServedStale, "requests answered after the failed refresh")
	// The refresh works again: once past the retry back-off the next
	// request triggers one, and a new token is served.
	prov.failing.Store(false)
	advance(t, 10*time.Second)
	src.Token(ctx)
	var tok rdsauth.Token
	waitFor(t, func() bool {
		tok, err = src.Token(ctx)
		return err == nil && tok.Value() != first.Value()
	})
	assert.Equal(t, int64(2), src.Mints())
	verify(t, tok)
	st := src.Stats()
	assert.Equal(t, int64(2), st.EarlyRefreshes, "both refreshes ran ahead of expiry")
	assert.Equal(t, int64(1), st.Failures)
	assert.Empty(t, st.LastErrorClass, "a refresh succeeded since the failure")
	assert.Equal(t, tok.Expires(), st.Expires)
	// When refreshes keep failing until the token must stop being
	// served, the error surfaces.
	prov.failing.Store(true)
	advance(t, 15*time.Minute)
	_, err = src.Token(ctx)
	require.ErrorContains(t, err, "sts unavailable")
	assert.Equal(t, "credentials", src.Stats().LastErrorClass)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	require.Eventually(t, cond, 10*time.Second, time.Millisecond)
}

func TestCachePerHostPortUser(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	def, err := src.Token(ctx)
	require.NoError(t, err)
	same, err := src.TokenFor(ctx, "127.0.0.1", uint16(front.Port()), "app")
	require.NoError(t, err)
	assert.Equal(t, def.Value(), same.Value(), "TokenFor the default key minted again")
	keys := []struct {
		host string
		port uint16
		user string
	}{
		{"127.0.0.1", uint16(front2.Port()), "app"},
		{"localhost", uint16(front.Port()), "app"},
		{"127.0.0.1", uint16(front.Port()), "other"},
	}
	seen := map[string]bool{def.Value(): true}
	for _, k := range keys {
		tok, err := src.TokenFor(ctx, k.host, k.port, k.user)
		require.NoError(t, err)
		assert.False(t, seen[tok.Value()], "%s@%s:%d shares a token with another key", k.user, k.host, k.port)
		seen[tok.Value()] = true
		assert.Equal(t, fmt.Sprintf("%s:%d", k.host, k.port), tok.Endpoint())
		assert.Equal(t, k.user, tok.User())
	}
	// Options.Region (us-east-1) contradicts the endpoint name's region.
	_, err = src.TokenFor(ctx, "db.abc.eu-west-1.rds.amazonaws.com", 5432, "app")
	assert.ErrorIs(t, err, rdsauth.ErrRegionMismatch)
	assert.Equal(t, int64(4), src.Mints())
	assert.Equal(t, 4, src.Stats().Entries)
}

func TestInvalidateOnlyDropsTheRefusedToken(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	old, _ := src.Token(ctx)
	advance(t, time.Second) // a token minted in the same second with the same key is the same token
	src.Invalidate(old)
	fresh, err := src.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, old.Value(), fresh.Value(), "Invalidate did not force a new mint")
	assert.Equal(t, int64(2), src.Mints())
	// A late report about the old token must not throw away the new one.
	src.Invalidate(old)
	again, _ := src.Token(ctx)
	assert.Equal(t, fresh.Value(), again.Value(), "invalidating a superseded token dropped the current one")
	assert.Equal(t, int64(2), src.Mints())
}

func TestCloseStopsTheSource(t *testing.T) {
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	require.NoError(t, src.Close())
	_, err := src.Token(context.Background())
	assert.ErrorIs(t, err, rdsauth.ErrClosed)
	require.NoError(t, src.Close(), "second Close")
}

// Close cancels a mint waiting on the credentials provider and returns only
// once it has returned.
func TestCloseCancelsAMintInFlight(t *testing.T) {
	arrived := make(chan struct{})
	var returned atomic.Bool
	prov := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		close(arrived)
		defer returned.Store(true)
		<-ctx.Done()
		return aws.Credentials{}, ctx.Err()
	})
	src := newSource(t, prov)
	errc := make(chan error, 1)
	go func() {
		_, err := src.Token(context.Background())
		errc <- err
	}()
	<-arrived
	require.NoError(t, src.Close())
	assert.True(t, returned.Load(), "Close returned before the mint did")
	assert.ErrorIs(t, <-errc, rdsauth.ErrClosed)
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	_, err := src.Token(ctx)
	require.NoError(t, err)
	port := uint16(front.Port())
	_, err = src.TokenFor(ctx, "127.0.0.1", port, "app")
	require.NoError(t, err)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { src.Token(ctx) }), "Token hit allocates")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { src.TokenFor(ctx, "127.0.0.1", port, "app") }), "TokenFor hit allocates")
}

func TestNewTokenSourceErrors(t *testing.T) {
	creds := newSwitchableCreds(t, time.Hour)
	tests := []struct {
		name     string
		endpoint string
		user     string
		creds    aws.CredentialsProvider
		region   string
		want     error
	}{
		{"no port", "mydb.abc123.us-east-1.rds.amazonaws.com", "app", creds, "", rdsauth.ErrMissingPort},
		{"empty port", "mydb.abc123.us-east-1.rds.amazonaws.com:", "app", creds, "", rdsauth.ErrMissingPort},
		{"IPv6 without port", "[::1]", "app", creds, "us-east-1", rdsauth.ErrMissingPort},
		{"scheme", "postgres://mydb.abc123.us-east-1.rds.amazonaws.com:5432", "app", creds, "", rdsauth.ErrInvalidEndpoint},
		{"path", "mydb.abc123.us-east-1.rds.amazonaws.com:5432/app", "app", creds, "", rdsauth.ErrInvalidEndpoint},
		{"port 0", "h.example:0", "app", creds, "us-east-1", rdsauth.ErrInvalidEndpoint},
		{"port too big", "h.example:70000", "app", creds, "us-east-1", rdsauth.ErrInvalidEndpoint},
		{"wrong region", "mydb.abc123.us-east-1.rds.amazonaws.com:5432", "app", creds, "eu-west-1", rdsauth.ErrRegionMismatch},
		{"no region", "10.0.0.7:5432", "app", creds, "", rdsauth.ErrNoRegion},
		{"malformed region", "10.0.0.7:5432", "app", creds, "us_east_1", rdsauth.ErrInvalidRegion},
		{"no user", "10.0.0.7:5432", "", creds, "us-east-1", rdsauth.ErrInvalidUser},
		{"no credentials", "10.0.0.7:5432", "app", nil, "us-east-1", rdsauth.ErrNoCredentials},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rdsauth.NewTokenSource(tt.endpoint, tt.user, tt.creds, func(o *rdsauth.Options) { o.Region = tt.region })
			require.ErrorIs(t, err, tt.want)
			assert.True(t, strings.HasPrefix(err.Error(), "rdsauth: "), "error %q lacks the package prefix", err)
		})
	}
	t.Run("region from the endpoint", func(t *testing.T) {
		src, err := rdsauth.NewTokenSource("mydb.cluster-ro-abc123.eu-central-1.rds.amazonaws.com:5432", "app", creds)
		require.NoError(t, err)
		defer src.Close()
		assert.Equal(t, "eu-central-1", src.Region())
	})
}

// lockedBuffer collects log output from several goroutines.
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

// Failed mints are logged at Warn and the recovery at Info, through the
// configured logger, and no record shows a token or a key.
func TestLogsFailuresAndRecoveryWithoutSecrets(t *testing.T) {
	ctx := context.Background()
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	prov := &failingCreds{creds: newSwitchableCreds(t, time.Hour)}
	src := newSource(t, prov, func(o *rdsauth.Options) { o.Logger = logger })
	tok, err := src.Token(ctx)
	require.NoError(t, err)
	prov.failing.Store(true)
	advance(t, 15*time.Minute)
	_, err = src.Token(ctx)
	require.Error(t, err)
	prov.failing.Store(false)
	again, err := src.Token(ctx)
	require.NoError(t, err)
	waitFor(t, func() bool { return strings.Contains(buf.String(), "works again") })

	out := buf.String()
	c := prov.creds.cur.Load()
	for _, secret := range []string{tok.Value(), again.Value(), c.SecretAccessKey, c.SessionToken, "X-Amz-Signature"} {
		assert.NotContains(t, out, secret, "log shows a secret")
	}
	assert.Contains(t, out, `"level":"DEBUG","msg":"rdsauth: minted a token"`)
	assert.Contains(t, out, `"level":"WARN","msg":"rdsauth: minting a token failed"`)
	assert.Contains(t, out, `"error_class":"credentials"`)
	assert.Contains(t, out, "sts unavailable")
	assert.Contains(t, out, `"level":"INFO","msg":"rdsauth: minting tokens works again"`)
	assert.Contains(t, out, `"endpoint":"`+front.Addr()+`"`)
}
