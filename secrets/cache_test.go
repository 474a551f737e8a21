package secrets_test

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"

	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/secrets"
)

// 1000 goroutines reading a secret nobody has read yet cause exactly one
// GetSecretValue at the server.
func TestConcurrentColdReadsMakeOneCall(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "app/")
	create(t, name, "s3cr3t-cold")
	c := newCache(t)

	// Hold the answer back so the readers pile up behind the one fetch.
	srv.SetDelay(100 * time.Millisecond)
	defer srv.SetDelay(0)
	before := srv.Calls(standin.OpGetSecretValue)
	const n = 1000
	var started sync.WaitGroup
	started.Add(n)
	gate := make(chan struct{})
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			started.Done()
			<-gate
			v, err := c.String(ctx, name)
			if err == nil && v != "s3cr3t-cold" {
				err = errors.New("wrong value")
			}
			errs <- err
		}()
	}
	started.Wait()
	close(gate)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := srv.Calls(standin.OpGetSecretValue) - before; got != 1 {
		t.Fatalf("%d GetSecretValue calls at the server, want 1", got)
	}
	if c.Fetches() != 1 {
		t.Fatalf("cache made %d fetches, want 1", c.Fetches())
	}
}

func TestRotationSeenAfterTTL(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "v1")
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk; o.TTL = 10 * time.Minute })

	read := func(want string) {
		t.Helper()
		got, err := c.String(ctx, name)
		if err != nil || got != want {
			t.Fatalf("String = %q, %v; want %q", got, err, want)
		}
	}
	read("v1")
	rotate(t, name, "v2")
	read("v1") // cached: the TTL has not passed
	clk.Advance(10*time.Minute - time.Second)
	read("v1")
	if c.Fetches() != 1 {
		t.Fatalf("%d fetches before the TTL, want 1", c.Fetches())
	}
	clk.Advance(time.Second)
	read("v2")
	if c.Fetches() != 2 {
		t.Fatalf("%d fetches after the TTL, want 2", c.Fetches())
	}
}

func TestStaleServedWhileDownThenClearError(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "last-good")
	var rec errRecorder
	c := newCache(t, func(o *secrets.Options) {
		o.Clock = clk
		o.TTL = time.Hour
		o.MaxStaleness = 30 * time.Minute
		o.RetryBackoff = time.Minute
		o.OnError = rec.add
	})
	if _, err := c.String(ctx, name); err != nil {
		t.Fatal(err)
	}
	srv.SetDown(true)
	defer srv.SetDown(false)

	clk.Advance(time.Hour)
	got, err := c.String(ctx, name)
	if err != nil || got != "last-good" {
		t.Fatalf("during the outage: %q, %v; want the stale value", got, err)
	}
	errs := rec.all()
	if len(errs) != 1 {
		t.Fatalf("OnError got %d errors, want 1", len(errs))
	}
	var se *secrets.Error
	if !errors.As(errs[0], &se) || !se.ServedStale || se.SecretID != name || errors.Is(errs[0], secrets.ErrStale) {
		t.Fatalf("reported error %#v", errs[0])
	}
	if strings.Contains(errs[0].Error(), "last-good") {
		t.Fatalf("error leaks the value: %v", errs[0])
	}

	// Within the back-off the stale value is served without asking again.
	fetches := c.Fetches()
	if got, err := c.String(ctx, name); err != nil || got != "last-good" {
		t.Fatalf("within back-off: %q, %v", got, err)
	}
	if c.Fetches() != fetches {
		t.Fatal("a read within the back-off fetched again")
	}
	clk.Advance(time.Minute)
	if got, err := c.String(ctx, name); err != nil || got != "last-good" {
		t.Fatalf("after back-off: %q, %v", got, err)
	}
	if c.Fetches() != fetches+1 {
		t.Fatal("a read after the back-off did not retry")
	}

	// Past MaxStaleness: a clear error, no value.
	clk.Advance(30 * time.Minute)
	got, err = c.String(ctx, name)
	if err == nil || got != "" {
		t.Fatalf("past MaxStaleness: %q, %v; want an error", got, err)
	}
	if !errors.Is(err, secrets.ErrStale) || !strings.Contains(err.Error(), "MaxStaleness") || !strings.Contains(err.Error(), name) {
		t.Fatalf("past MaxStaleness: %v", err)
	}
	if strings.Contains(err.Error(), "last-good") {
		t.Fatalf("error leaks the value: %v", err)
	}

	// Back up: fresh value again.
	srv.SetDown(false)
	if got, err := c.String(ctx, name); err != nil || got != "last-good" {
		t.Fatalf("after recovery: %q, %v", got, err)
	}
}

func TestStaleDisabled(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "v")
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk; o.MaxStaleness = -1 })
	if _, err := c.String(ctx, name); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(standin.OpGetSecretValue, 1, "InternalServiceError")
	clk.Advance(secrets.DefaultTTL)
	_, err := c.String(ctx, name)
	var ise *types.InternalServiceError
	if !errors.As(err, &ise) {
		t.Fatalf("with stale serving off: %v", err)
	}
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	bin := secretName(t, "bin/")
	if _, _, err := srv.CreateBinary(bin, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	kms := secretName(t, "app/kms")
	create(t, kms, "k")
	if err := srv.SetDecryptFailure(kms, true); err != nil {
		t.Fatal(err)
	}
	denied := secretName(t, "other/")
	create(t, denied, "hidden-value")

	cases := []struct {
		name   string
		id     string
		opts   []func(*secrets.GetOptions)
		is     error
		asType func(error) bool
	}{
		{"not found", "app/does-not-exist", nil, secrets.ErrNotFound, func(err error) bool {
			var e *types.ResourceNotFoundException
			return errors.As(err, &e)
		}},
		{"unknown stage", kms, []func(*secrets.GetOptions){secrets.WithVersionStage("NOPE")}, secrets.ErrNotFound, nil},
		{"access denied", denied, nil, secrets.ErrAccessDenied, func(err error) bool {
			var e smithy.APIError
			return errors.As(err, &e) && e.ErrorCode() == "AccessDeniedException"
		}},
		{"KMS decryption failure", kms, nil, nil, func(err error) bool {
			var e *types.DecryptionFailure
			return errors.As(err, &e)
		}},
		{"binary read as string", bin, nil, secrets.ErrBinary, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.String(ctx, tc.id, tc.opts...)
			if err == nil {
				t.Fatal("no error")
			}
			if tc.is != nil && !errors.Is(err, tc.is) {
				t.Fatalf("errors.Is(%v, %v) = false", err, tc.is)
			}
			for _, other := range []error{secrets.ErrNotFound, secrets.ErrAccessDenied, secrets.ErrStale} {
				if other != tc.is && errors.Is(err, other) {
					t.Fatalf("%v also matches %v", err, other)
				}
			}
			if tc.asType != nil && !tc.asType(err) {
				t.Fatalf("SDK error not reachable with errors.As: %#v", err)
			}
			var se *secrets.Error
			if !errors.As(err, &se) || se.SecretID != tc.id || !strings.HasPrefix(err.Error(), "secrets: ") {
				t.Fatalf("not a *secrets.Error for %q: %v", tc.id, err)
			}
			if strings.Contains(err.Error(), "hidden-value") {
				t.Fatalf("error leaks a value: %v", err)
			}
		})
	}
	// Failed fetches leave nothing cached; only the binary secret (read
	// fine, refused by String) is.
	if n := c.Len(); n != 1 {
		t.Fatalf("%d entries cached after failures, want 1", n)
	}
	if b, err := c.Bytes(ctx, bin); err != nil || string(b) != "\x01\x02\x03" {
		t.Fatalf("Bytes = %v, %v", b, err)
	}
	v, err := c.Get(ctx, bin)
	if err != nil || !v.IsBinary() || string(v.SecretBinary()) != "\x01\x02\x03" || v.SecretString() != "" {
		t.Fatalf("Get of a binary secret = %v, %v", v, err)
	}
	if _, ok := c.Client().(*secretsmanager.Client); !ok {
		t.Fatalf("Client() is %T, want the SDK client", c.Client())
	}
}

func TestVersionsAndIDs(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "app/")
	arn, v1 := create(t, name, "one")
	v2 := rotate(t, name, "two")
	c := newCache(t)
	cases := []struct {
		name string
		id   string
		opts []func(*secrets.GetOptions)
		want string
		ver  string
	}{
		{"name", name, nil, "two", v2},
		{"full ARN", arn, nil, "two", v2},
		{"partial ARN", arn[:len(arn)-7], nil, "two", v2},
		{"AWSPREVIOUS", name, []func(*secrets.GetOptions){secrets.WithVersionStage("AWSPREVIOUS")}, "one", v1},
		{"AWSCURRENT explicit", name, []func(*secrets.GetOptions){secrets.WithVersionStage("AWSCURRENT")}, "two", v2},
		{"version id", name, []func(*secrets.GetOptions){secrets.WithVersionID(v1)}, "one", v1},
		{"version id and stage", arn, []func(*secrets.GetOptions){secrets.WithVersionID(v2), secrets.WithVersionStage("AWSCURRENT")}, "two", v2},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v, err := c.Get(ctx, tc.id, tc.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if v.SecretString() != tc.want || v.VersionID != tc.ver || v.ARN != arn || v.Name != name || v.IsBinary() {
				t.Fatalf("Get = %v (%q)", v, v.SecretString())
			}
		})
	}
	v, _ := c.Get(ctx, name, secrets.WithVersionStage("AWSPREVIOUS"))
	if got := v.VersionStages(); len(got) != 1 || got[0] != "AWSPREVIOUS" {
		t.Fatalf("stages %v", got)
	}
}

func TestLRUEviction(t *testing.T) {
	ctx := context.Background()
	a, b, d := secretName(t, "app/a"), secretName(t, "app/b"), secretName(t, "app/d")
	for _, n := range []string{a, b, d} {
		create(t, n, "value of "+n)
	}
	c := newCache(t, func(o *secrets.Options) { o.MaxEntries = 2 })
	read := func(id string, wantFetch bool) {
		t.Helper()
		before := c.Fetches()
		if _, err := c.String(ctx, id); err != nil {
			t.Fatal(err)
		}
		if fetched := c.Fetches() != before; fetched != wantFetch {
			t.Fatalf("read %s: fetched=%v, want %v", id, fetched, wantFetch)
		}
	}
	read(a, true)
	read(b, true)
	read(a, false) // a is now the most recently read
	read(d, true)  // evicts b, the least recently read
	if c.Len() != 2 {
		t.Fatalf("%d entries, want 2", c.Len())
	}
	read(a, false)
	read(d, false)
	read(b, true) // evicts a
	read(d, false)
	read(a, true)
}

func TestBackgroundRefreshNotifiesWatchers(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "before")
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk; o.RefreshInterval = time.Minute })
	changes := make(chan secrets.Value, 4)
	stop, err := c.Watch(ctx, name, func(v secrets.Value) { changes <- v })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()

	clk.Advance(time.Minute) // a refresh that finds nothing new
	v2 := rotate(t, name, "after")
	clk.Advance(time.Minute)
	v := <-changes
	if v.VersionID != v2 || v.SecretString() != "after" {
		t.Fatalf("notified with %v", v)
	}
	// The background refresh updated the cache: no fetch on read, long
	// before the TTL.
	before := c.Fetches()
	if got, err := c.String(ctx, name); err != nil || got != "after" {
		t.Fatalf("after refresh: %q, %v", got, err)
	}
	if c.Fetches() != before {
		t.Fatal("read after a background refresh fetched")
	}
	select {
	case v := <-changes:
		t.Fatalf("a refresh without rotation notified %v", v)
	default:
	}
}

// Without RefreshInterval a watched secret is refreshed when its TTL ends.
func TestWatchRefreshesAtTTL(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "before")
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk; o.TTL = 5 * time.Minute })
	changes := make(chan string, 4)
	stop, err := c.Watch(ctx, name, func(v secrets.Value) { changes <- v.SecretString() })
	if err != nil {
		t.Fatal(err)
	}
	rotate(t, name, "after")
	clk.Advance(5 * time.Minute)
	if got := <-changes; got != "after" {
		t.Fatalf("notified with %q", got)
	}
	stop()
	if _, err := c.Watch(ctx, "app/missing-for-watch", func(secrets.Value) {}); !errors.Is(err, secrets.ErrNotFound) {
		t.Fatalf("Watch of a missing secret: %v", err)
	}
}

func TestContextDeadline(t *testing.T) {
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "kept")
	c := newCache(t, func(o *secrets.Options) { o.Clock = clk })
	if _, err := c.String(context.Background(), name); err != nil {
		t.Fatal(err)
	}
	srv.SetDelay(time.Hour)
	defer srv.SetDelay(0)
	clk.Advance(secrets.DefaultTTL)

	// A caller who cannot wait gets the stale value.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	got, err := c.String(ctx, name)
	cancel()
	if err != nil || got != "kept" {
		t.Fatalf("stale on deadline: %q, %v", got, err)
	}
	// With nothing cached it gets the context's error.
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = c.String(ctx, secretName(t, "app/other"))
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cold read on deadline: %v", err)
	}
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "app/")
	create(t, name, "v")
	c := newCache(t, func(o *secrets.Options) { o.RefreshInterval = time.Hour })
	if _, err := c.String(ctx, name); err != nil {
		t.Fatal(err)
	}
	// A read waiting on an in-flight fetch when Close comes.
	srv.SetDelay(time.Hour)
	defer srv.SetDelay(0)
	done := make(chan error, 1)
	go func() {
		_, err := c.String(ctx, secretName(t, "app/slow"))
		done <- err
	}()
	for c.Fetches() < 2 {
		time.Sleep(time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; !errors.Is(err, secrets.ErrClosed) {
		t.Fatalf("in-flight read after Close: %v", err)
	}
	for _, f := range []func() error{
		func() error { _, err := c.String(ctx, name); return err },
		func() error { _, err := c.Bytes(ctx, name); return err },
		func() error { _, err := c.Get(ctx, name); return err },
		func() error { _, err := secrets.JSON[map[string]string](ctx, c, name); return err },
		func() error { _, err := c.Watch(ctx, name, func(secrets.Value) {}); return err },
	} {
		if err := f(); !errors.Is(err, secrets.ErrClosed) {
			t.Fatalf("after Close: %v", err)
		}
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// A policy from Policy, loaded into the mini-IAM, allows exactly the named
// secrets.
func TestPolicyAllowsExactlyTheNamedSecrets(t *testing.T) {
	ctx := context.Background()
	role := "arn:aws:iam::" + env.Account + ":role/policy-test"
	doc, err := secrets.Policy(env.Region, env.Account, []string{"team/db", "team/api-*"})
	if err != nil {
		t.Fatal(err)
	}
	if err := env.IAM.PutRole(role, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`), []byte(doc)); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"team/db", "team/db-old", "team/dbx", "team/api-key", "team/other"} {
		if _, ok := srv.ARN(n); !ok {
			create(t, n, "value of "+n)
		}
	}
	c, err := secrets.New(configFor(t, role))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for _, tc := range []struct {
		id      string
		allowed bool
	}{{"team/db", true}, {"team/api-key", true}, {"team/db-old", false}, {"team/dbx", false}, {"team/other", false}} {
		_, err := c.String(ctx, tc.id)
		if tc.allowed && err != nil || !tc.allowed && !errors.Is(err, secrets.ErrAccessDenied) {
			t.Errorf("%s: allowed=%v, got %v", tc.id, tc.allowed, err)
		}
	}
}

// The whole IRSA path: the SDK's standard environment variables, irsa.Load,
// the STS stand-in, then Secrets Manager found through
// AWS_ENDPOINT_URL_SECRETS_MANAGER.
func TestEndToEndThroughIRSA(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "rds/")
	create(t, name, `{"engine":"postgres","host":"db.internal","port":"5432","dbname":"app","username":"app","password":"pw-e2e"}`)
	env.Setenv(t)
	t.Setenv("AWS_ENDPOINT_URL_SECRETS_MANAGER", srv.URL())
	t.Setenv("AWS_MAX_ATTEMPTS", "1")
	sess, err := irsa.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	c, err := secrets.New(sess.Config())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds, err := c.RDS(ctx, name)
			if err != nil || creds.Password != "pw-e2e" || creds.Port != 5432 {
				failed.Add(1)
				t.Errorf("RDS = %v, %v", creds, err)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return
	}
	if got := env.STS.Calls("AssumeRoleWithWebIdentity") - before; got != 1 {
		t.Fatalf("%d AssumeRoleWithWebIdentity calls, want 1", got)
	}
	if c.Fetches() != 1 {
		t.Fatalf("%d fetches, want 1", c.Fetches())
	}
}

func TestNewValidation(t *testing.T) {
	cfg := awsConfig(t)
	cfg.Region = ""
	if _, err := secrets.New(cfg); err == nil || !strings.Contains(err.Error(), "Region") {
		t.Fatalf("New without region: %v", err)
	}
	if _, err := secrets.NewFromClient(nil); err == nil {
		t.Fatal("NewFromClient(nil) succeeded")
	}
	c := newCache(t)
	if _, err := c.String(context.Background(), ""); err == nil || !strings.Contains(err.Error(), "empty secret id") {
		t.Fatalf("empty id: %v", err)
	}
}

// Failed refreshes hidden by a stale value reach the logger, without the
// value.
func TestLoggerRecordsHiddenFailures(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "logged-never")
	var buf lockedBuffer
	c := newCache(t, func(o *secrets.Options) {
		o.Clock = clk
		o.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	if _, err := c.String(ctx, name); err != nil {
		t.Fatal(err)
	}
	srv.FailNext(standin.OpGetSecretValue, 1, "ThrottlingException")
	clk.Advance(secrets.DefaultTTL)
	if got, err := c.String(ctx, name); err != nil || got != "logged-never" {
		t.Fatalf("stale read: %q, %v", got, err)
	}
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"secret_id":"` + name + `"`, `"served_stale":true`, "ThrottlingException"} {
		if !strings.Contains(out, want) {
			t.Fatalf("log lacks %s: %s", want, out)
		}
	}
	if strings.Contains(out, "logged-never") {
		t.Fatalf("log leaks the value: %s", out)
	}
}

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
