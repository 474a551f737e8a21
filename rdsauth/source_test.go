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

	"github.com/irsakit/irsakit/rdsauth"
)

// advance moves the shared clock and keeps the projected service-account
// token fresh, as the kubelet would.
func advance(t testing.TB, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	if err := env.RotateToken(); err != nil {
		t.Fatal(err)
	}
}

// verify checks tok the way the front (RDS) would, now.
func verify(t *testing.T, tok rdsauth.Token) {
	t.Helper()
	if _, err := front.VerifyToken(tok.Value(), tok.User(), tok.Endpoint()); err != nil {
		t.Fatalf("token refused at %s: %v", clk.Now().UTC().Format(time.RFC3339), err)
	}
}

func newSource(t *testing.T, creds aws.CredentialsProvider, optFns ...func(*rdsauth.Options)) *rdsauth.TokenSource {
	t.Helper()
	src, err := rdsauth.NewTokenSource(front.Addr(), "app", creds, append([]func(*rdsauth.Options){fakeClock, func(o *rdsauth.Options) { o.Region = front.Region() }}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func TestTokenIsAcceptedAndCached(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, time.Hour)
	src := newSource(t, creds)
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, tok)
	if tok.User() != "app" || tok.Endpoint() != front.Addr() || tok.Region() != "us-east-1" {
		t.Errorf("token describes %s@%s in %s", tok.User(), tok.Endpoint(), tok.Region())
	}
	if want := tok.SignedAt().Add(15 * time.Minute); !tok.Expires().Equal(want) {
		t.Errorf("Expires = %v, want signing time + 15m = %v", tok.Expires(), want)
	}
	if !strings.Contains(tok.Value(), "X-Amz-Expires=900") || !strings.Contains(tok.Value(), "Action=connect") || !strings.HasPrefix(tok.Value(), front.Addr()+"/?") {
		t.Errorf("token does not have the RDS shape")
	}
	for range 10 {
		again, err := src.Token(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if again.Value() != tok.Value() {
			t.Fatal("cache hit returned another token")
		}
	}
	if src.Mints() != 1 || creds.retrieves.Load() != 1 {
		t.Errorf("mints %d, credential retrievals %d; want 1 and 1", src.Mints(), creds.retrieves.Load())
	}
}

func TestTokenLifetimeCappedByCredentials(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, 5*time.Minute)
	src := newSource(t, creds)
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if want := creds.cur.Load().Expires; !tok.Expires().Equal(want) {
		t.Errorf("Expires = %v, want the credentials' expiry %v", tok.Expires(), want)
	}
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
				if err != nil {
					t.Fatal(err)
				}
				verify(t, tok)
				if !clk.Now().Before(tok.Expires()) {
					t.Fatalf("served a token that expired at %v (now %v)", tok.Expires(), clk.Now())
				}
				c, _ := creds.Retrieve(ctx)
				_ = c
				advance(t, 7*time.Second)
			}
		})
	}
}

func TestExpiredCredentialsAreNamed(t *testing.T) {
	ctx := context.Background()
	c, err := env.Registry.IssueSession(env.RoleARN, "old", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	advance(t, 2*time.Second)
	stale := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires}, nil
	})
	src := newSource(t, stale)
	_, err = src.Token(ctx)
	if !errors.Is(err, rdsauth.ErrCredentialsExpired) {
		t.Fatalf("err = %v, want ErrCredentialsExpired", err)
	}
	if strings.Contains(err.Error(), c.AccessKeyID) || strings.Contains(err.Error(), c.SecretAccessKey) {
		t.Error("error shows the credentials")
	}
}

// An aws.CredentialsCache judges expiry by the real clock; when the
// source's clock says its credentials expired, it is invalidated and asked
// again instead of signing with them.
func TestCredentialsCacheInvalidatedWhenExpired(t *testing.T) {
	ctx := context.Background()
	cfg := sessionConfig(t)
	src := newSource(t, cfg.Credentials)
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	advance(t, 61*time.Minute) // past the 1-hour credentials
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	verify(t, tok)
	if got := env.STS.Calls("AssumeRoleWithWebIdentity") - before; got != 1 {
		t.Errorf("STS calls = %d, want 1", got)
	}
}

func TestConcurrentMissesMintOnce(t *testing.T) {
	ctx := context.Background()
	release := make(chan struct{})
	creds := newSwitchableCreds(t, time.Hour)
	blocking := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
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
	time.Sleep(10 * time.Millisecond) // let the callers pile up on the one fetch
	close(release)
	wg.Wait()
	for i := range toks {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if toks[i].Value() != toks[0].Value() {
			t.Fatal("callers got different tokens")
		}
	}
	if src.Mints() != 1 || creds.retrieves.Load() != 1 {
		t.Errorf("mints %d, retrievals %d; want 1 and 1", src.Mints(), creds.retrieves.Load())
	}
}

func TestEarlyRefreshAndStaleWhileValid(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, 2*time.Hour)
	var failing atomic.Bool
	var attempts atomic.Int64
	prov := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		attempts.Add(1)
		if failing.Load() {
			return aws.Credentials{}, errors.New("sts unavailable")
		}
		return creds.Retrieve(ctx)
	})
	src := newSource(t, prov)
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	// Past the latest early-refresh point (14m served, refresh 2.5m to 5m
	// before that), before the token stops being served.
	advance(t, 12*time.Minute)
	for range 3 {
		tok, err := src.Token(ctx)
		if err != nil {
			t.Fatalf("failed refresh surfaced while the token was valid: %v", err)
		}
		if tok.Value() != first.Value() {
			t.Fatal("token changed although refreshes fail")
		}
	}
	waitFor(t, func() bool { return attempts.Load() >= 2 }) // the background refresh ran
	// The refresh works again: once past the retry back-off the next
	// request triggers one, and a new token is served.
	failing.Store(false)
	advance(t, 10*time.Second)
	src.Token(ctx)
	// Mints counts a mint as it starts; the new token is served once stored.
	var tok rdsauth.Token
	waitFor(t, func() bool {
		tok, err = src.Token(ctx)
		return err == nil && tok.Value() != first.Value()
	})
	if src.Mints() != 2 {
		t.Fatalf("mints = %d, want 2", src.Mints())
	}
	verify(t, tok)
	// When refreshes keep failing until the token must stop being
	// served, the error surfaces.
	failing.Store(true)
	advance(t, 15*time.Minute)
	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), "sts unavailable") {
		t.Fatalf("err = %v, want the credential error", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCachePerHostPortUser(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, time.Hour)
	src := newSource(t, creds)
	def, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	same, err := src.TokenFor(ctx, "127.0.0.1", uint16(front.Port()), "app")
	if err != nil {
		t.Fatal(err)
	}
	if same.Value() != def.Value() {
		t.Error("TokenFor the default key minted again")
	}
	keys := []struct {
		host string
		port uint16
		user string
	}{
		{"127.0.0.1", uint16(front2.Port()), "app"},
		{"localhost", uint16(front.Port()), "app"},
		{"127.0.0.1", uint16(front.Port()), "other"},
		{"db.abc.eu-west-1.rds.amazonaws.com", 5432, "app"}, // own region
	}
	seen := map[string]bool{def.Value(): true}
	for _, k := range keys {
		_, err := src.TokenFor(ctx, k.host, k.port, k.user)
		if k.host == "db.abc.eu-west-1.rds.amazonaws.com" {
			// Options.Region (us-east-1) contradicts the name.
			if !errors.Is(err, rdsauth.ErrRegionMismatch) {
				t.Errorf("err = %v, want ErrRegionMismatch", err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		tok, _ := src.TokenFor(ctx, k.host, k.port, k.user)
		if seen[tok.Value()] {
			t.Errorf("%s@%s:%d shares a token with another key", k.user, k.host, k.port)
		}
		seen[tok.Value()] = true
		if tok.Endpoint() != fmt.Sprintf("%s:%d", k.host, k.port) || tok.User() != k.user {
			t.Errorf("token for %s@%s", tok.User(), tok.Endpoint())
		}
	}
	if got := src.Mints(); got != 4 {
		t.Errorf("mints = %d, want 4", got)
	}
}

func TestInvalidateOnlyDropsTheRefusedToken(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	old, _ := src.Token(ctx)
	advance(t, time.Second) // a token minted in the same second with the same key is the same token
	src.Invalidate(old)
	fresh, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if fresh.Value() == old.Value() || src.Mints() != 2 {
		t.Fatalf("Invalidate did not force a new mint (mints %d)", src.Mints())
	}
	// A late report about the old token must not throw away the new one.
	src.Invalidate(old)
	again, _ := src.Token(ctx)
	if again.Value() != fresh.Value() || src.Mints() != 2 {
		t.Error("invalidating a superseded token dropped the current one")
	}
}

func TestCloseStopsTheSource(t *testing.T) {
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	src.Close()
	if _, err := src.Token(context.Background()); !errors.Is(err, rdsauth.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
}

func TestCacheHitDoesNotAllocate(t *testing.T) {
	ctx := context.Background()
	src := newSource(t, newSwitchableCreds(t, time.Hour))
	if _, err := src.Token(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := src.TokenFor(ctx, "127.0.0.1", uint16(front.Port()), "app"); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(1000, func() { src.Token(ctx) }); n != 0 {
		t.Errorf("Token hit allocates %v times", n)
	}
	port := uint16(front.Port())
	if n := testing.AllocsPerRun(1000, func() { src.TokenFor(ctx, "127.0.0.1", port, "app") }); n != 0 {
		t.Errorf("TokenFor hit allocates %v times", n)
	}
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
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if !strings.HasPrefix(err.Error(), "rdsauth: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
	t.Run("region from the endpoint", func(t *testing.T) {
		src, err := rdsauth.NewTokenSource("mydb.cluster-ro-abc123.eu-central-1.rds.amazonaws.com:5432", "app", creds)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if src.Region() != "eu-central-1" {
			t.Errorf("Region = %q", src.Region())
		}
	})
}

func TestLogsNeverShowTokensOrKeys(t *testing.T) {
	ctx := context.Background()
	var buf strings.Builder
	var mu sync.Mutex
	logger := slog.New(slog.NewJSONHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	creds := newSwitchableCreds(t, time.Hour)
	var failing atomic.Bool
	prov := aws.CredentialsProviderFunc(func(ctx context.Context) (aws.Credentials, error) {
		if failing.Load() {
			return aws.Credentials{}, errors.New("sts unavailable")
		}
		return creds.Retrieve(ctx)
	})
	src := newSource(t, prov, func(o *rdsauth.Options) { o.Logger = logger })
	tok, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	failing.Store(true)
	advance(t, 15*time.Minute)
	if _, err := src.Token(ctx); err == nil {
		t.Fatal("no error")
	}
	mu.Lock()
	out := buf.String()
	mu.Unlock()
	c := creds.cur.Load()
	for _, secret := range []string{tok.Value(), c.SecretAccessKey, c.SessionToken, "X-Amz-Signature"} {
		if strings.Contains(out, secret) {
			t.Errorf("log shows a secret:\n%s", out)
		}
	}
	if !strings.Contains(out, "minted a token") || !strings.Contains(out, "sts unavailable") {
		t.Errorf("log lacks the mint or the failure:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
