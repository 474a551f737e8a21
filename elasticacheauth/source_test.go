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
	if err := w.iam.PutRole(testRole, trust, connectPolicy("us-east-1", "orders", "sessions"), memorydb); err != nil {
		t.Fatal(err)
	}
	return w
}

// creds issues session credentials valid for ttl as a provider with
// CanExpire, like the SDK's credential cache returns them.
func (w *fakeWorld) creds(t testing.TB, ttl time.Duration) aws.Credentials {
	t.Helper()
	c, err := w.reg.IssueSession(testRole, "test", ttl)
	if err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires, Source: "test"}
}

func static(c aws.Credentials) aws.CredentialsProvider {
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return c, nil })
}

func (w *fakeWorld) verify(t *testing.T, tok elasticacheauth.Token, check redisfront.Check) {
	t.Helper()
	if _, err := redisfront.VerifyToken(w.reg, w.iam, check, tok.User(), tok.Value()); err != nil {
		t.Fatalf("the documented verifier refuses the token: %v", err)
	}
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
				o.Clock = w.clk
				if tc.opts != nil {
					tc.opts(o)
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			tok, err := src.Token(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			v := tok.Value()
			if strings.Contains(v, "://") {
				t.Fatalf("token has a scheme: it must be the URL without http://")
			}
			u, err := url.Parse("http://" + v)
			if err != nil {
				t.Fatal(err)
			}
			if u.Host != tc.wantHost || u.Path != "/" {
				t.Fatalf("host %q path %q, want %q and /", u.Host, u.Path, tc.wantHost)
			}
			q := u.Query()
			var keys []string
			for k := range q {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			want := append([]string{"Action", "User", "X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-Security-Token", "X-Amz-Signature", "X-Amz-SignedHeaders"}, tc.extraKeys...)
			sort.Strings(want)
			if strings.Join(keys, ",") != strings.Join(want, ",") {
				t.Fatalf("query keys %v, want %v", keys, want)
			}
			for k, v := range map[string]string{
				"Action": "connect", "User": userID, "X-Amz-Expires": "900", "X-Amz-SignedHeaders": "host",
				"X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Date": "20260301T120000Z",
			} {
				if q.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, q.Get(k), v)
				}
			}
			if tc.extraKeys != nil && q.Get("ResourceType") != "ServerlessCache" {
				t.Errorf("ResourceType = %q", q.Get("ResourceType"))
			}
			if !strings.HasSuffix(q.Get("X-Amz-Credential"), "/20260301/us-east-1/"+tc.service+"/aws4_request") {
				t.Errorf("credential scope %q", q.Get("X-Amz-Credential"))
			}
			if tok.CacheName() != tc.wantHost || tok.User() != userID || tok.Region() != "us-east-1" {
				t.Errorf("accessors: %v", tok)
			}
			if !tok.Expires().Equal(w.clk.Now().Add(15 * time.Minute)) {
				t.Errorf("Expires = %v", tok.Expires())
			}
			// The verifier written from the AWS documentation accepts it.
			w.verify(t, tok, redisfront.Check{Service: tc.service, Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: tc.wantHost, Serverless: tc.extraKeys != nil})
		})
	}
}

func TestTokenVerifierRefusesMismatches(t *testing.T) {
	w := newFakeWorld(t)
	src, err := elasticacheauth.NewTokenSource("orders", userID, static(w.creds(t, time.Hour)), func(o *elasticacheauth.Options) {
		o.Region = "us-east-1"
		o.Clock = w.clk
	})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	good := redisfront.Check{Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"}
	for name, c := range map[string]redisfront.Check{
		"serverless cache": {Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders", Serverless: true},
		"other region":     {Region: "eu-west-1", Account: sigv4.DefaultAccount, CacheName: "orders"},
		"other cache":      {Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "payments"},
		"memorydb":         {Service: "memorydb", Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"},
	} {
		if _, err := redisfront.VerifyToken(w.reg, w.iam, c, userID, tok.Value()); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := redisfront.VerifyToken(w.reg, w.iam, good, "other-user", tok.Value()); err == nil {
		t.Error("other user: accepted")
	}
	w.clk.Advance(15 * time.Minute)
	if _, err := redisfront.VerifyToken(w.reg, w.iam, good, userID, tok.Value()); err == nil {
		t.Error("accepted after 15 minutes")
	}
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
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func newSource(t *testing.T, w *fakeWorld, p aws.CredentialsProvider, optFns ...func(*elasticacheauth.Options)) *elasticacheauth.TokenSource {
	t.Helper()
	src, err := elasticacheauth.NewTokenSource("orders", userID, p, append([]func(*elasticacheauth.Options){func(o *elasticacheauth.Options) {
		o.Region = "us-east-1"
		o.Clock = w.clk
		o.JitterFrac = -1
	}}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestTokenCacheHitsRefreshesAndInvalidates(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, 2*time.Hour)))
	ctx := context.Background()
	first, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 1000; i++ {
		tok, err := src.Token(ctx)
		if err != nil || tok.Value() != first.Value() {
			t.Fatalf("hit %d: %v", i, err)
		}
	}
	if src.Mints() != 1 {
		t.Fatalf("Mints = %d after 1001 Token calls", src.Mints())
	}
	// Served until 14 min (1 min margin), refreshed early from 9 min (5 min
	// before, no jitter): the old token is answered while a new one mints.
	w.clk.Advance(9 * time.Minute)
	if tok, _ := src.Token(ctx); tok.Value() != first.Value() {
		t.Fatal("early refresh did not answer the still-valid token")
	}
	waitFor(t, "the early refresh", func() bool {
		tok, _ := src.Token(ctx)
		return tok.Value() != first.Value()
	})
	if src.Mints() != 2 {
		t.Fatalf("Mints = %d, want 2", src.Mints())
	}
	second, _ := src.Token(ctx)
	// Invalidating an older (or the zero) token does nothing; the current
	// one drops it.
	src.Invalidate(first)
	src.Invalidate(elasticacheauth.Token{})
	if tok, _ := src.Token(ctx); tok.Value() != second.Value() || src.Mints() != 2 {
		t.Fatal("invalidating a stale token dropped the current one")
	}
	w.clk.Advance(time.Second) // a new signing time, so a new value
	src.Invalidate(second)
	// (internal/tokencache may answer the first Get after Invalidate from
	// the fetch that just finished; the one after it mints.)
	waitFor(t, "a fresh token after Invalidate", func() bool {
		tok, err := src.Token(ctx)
		return err == nil && tok.Value() != second.Value()
	})
	if src.Mints() != 3 {
		t.Fatalf("after Invalidate: mints %d, want 3", src.Mints())
	}
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
	if err != nil {
		t.Fatal(err)
	}
	if want := w.clk.Now().Add(5 * time.Minute); !tok.Expires().Equal(want) {
		t.Fatalf("Expires = %v, want the credentials' expiry %v", tok.Expires(), want)
	}
	// Not served within the margin (1 min) of the credentials' expiry.
	w.clk.Advance(4 * time.Minute)
	next, err := src.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if next.Value() == tok.Value() {
		t.Fatal("token served past its credentials' expiry minus margin")
	}
	w.verify(t, next, redisfront.Check{Region: "us-east-1", Account: sigv4.DefaultAccount, CacheName: "orders"})
}

func TestExpiredCredentialsAreRefused(t *testing.T) {
	w := newFakeWorld(t)
	c := w.creds(t, time.Minute)
	w.clk.Advance(2 * time.Minute)
	src := newSource(t, w, static(c))
	_, err := src.Token(context.Background())
	if !errors.Is(err, elasticacheauth.ErrCredentialsExpired) {
		t.Fatalf("err = %v, want ErrCredentialsExpired", err)
	}
	if strings.Contains(err.Error(), c.AccessKeyID) || strings.Contains(err.Error(), c.SecretAccessKey) {
		t.Fatalf("error leaks the key: %v", err)
	}
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
	if err != nil {
		t.Fatal(err)
	}
	w.clk.Advance(10 * time.Minute)
	for i := 0; i < 3; i++ {
		tok, err := src.Token(ctx)
		if err != nil || tok.Value() != first.Value() {
			t.Fatalf("during failing refresh: %v", err)
		}
		// Asking again starts the refresh once the previous attempt has
		// fully finished; each answer is still the old token.
		waitFor(t, "a failed refresh", func() bool {
			if tok, err := src.Token(ctx); err != nil || tok.Value() != first.Value() {
				t.Fatalf("during failing refresh: %v", err)
			}
			return logs.n.Load() >= int64(1+i)
		})
		w.clk.Advance(6 * time.Second) // past the retry back-off
	}
	if calls.Load() != 4 {
		t.Fatalf("%d credential calls, want 4", calls.Load())
	}
	if logs.leaked.Load() {
		t.Fatal("a log record holds the token")
	}
	// Past the serving window, the failure surfaces.
	w.clk.Set(first.SignedAt().Add(14 * time.Minute))
	if _, err := src.Token(ctx); err == nil || !strings.Contains(err.Error(), "sts unavailable") {
		t.Fatalf("after the window: err = %v", err)
	}
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
			if err != nil {
				t.Error(err)
			}
			vals[i] = tok.Value()
		}()
	}
	waitFor(t, "the mint to start", func() bool { return calls.Load() == 1 })
	close(release)
	wg.Wait()
	for _, v := range vals {
		if v != vals[0] || v == "" {
			t.Fatal("callers got different tokens")
		}
	}
	if calls.Load() != 1 || src.Mints() != 1 {
		t.Fatalf("credential calls %d, mints %d, want 1 and 1", calls.Load(), src.Mints())
	}
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
	if _, err := src.Token(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

func TestClosedSource(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, time.Hour)))
	src.Close()
	if _, err := src.Token(context.Background()); !errors.Is(err, elasticacheauth.ErrClosed) {
		t.Fatalf("err = %v, want ErrClosed", err)
	}
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
