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
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

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
		require.NoError(t, err)
	}
	assert.Equal(t, 1, srv.Calls(standin.OpGetSecretValue)-before, "GetSecretValue calls at the server")
	assert.Equal(t, int64(1), c.Fetches())
}

func TestRotationSeenAfterTTL(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "v1")
	c := newCache(t, func(o *secrets.Options) { secrets.WithClock(clk)(o); o.TTL = 10 * time.Minute })

	read := func(want string) {
		t.Helper()
		got, err := c.String(ctx, name)
		require.NoError(t, err)
		require.Equal(t, want, got)
	}
	read("v1")
	rotate(t, name, "v2")
	read("v1") // cached: the TTL has not passed
	clk.Advance(10*time.Minute - time.Second)
	read("v1")
	assert.Equal(t, int64(1), c.Fetches(), "fetches before the TTL")
	clk.Advance(time.Second)
	read("v2")
	assert.Equal(t, int64(2), c.Fetches(), "fetches after the TTL")
}

func TestStaleServedWhileDownThenClearError(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "last-good")
	var rec errRecorder
	c := newCache(t, func(o *secrets.Options) {
		secrets.WithClock(clk)(o)
		o.TTL = time.Hour
		o.MaxStaleness = 30 * time.Minute
		o.RetryBackoff = time.Minute
		o.OnError = rec.add
	})
	_, err := c.String(ctx, name)
	require.NoError(t, err)
	srv.SetDown(true)
	defer srv.SetDown(false)

	clk.Advance(time.Hour)
	got, err := c.String(ctx, name)
	require.NoError(t, err, "during the outage: want the stale value")
	require.Equal(t, "last-good", got)
	errs := rec.all()
	require.Len(t, errs, 1, "OnError")
	var se *secrets.Error
	require.ErrorAs(t, errs[0], &se)
	assert.True(t, se.ServedStale)
	assert.Equal(t, name, se.SecretID)
	assert.NotErrorIs(t, errs[0], secrets.ErrStale)
	assert.NotContains(t, errs[0].Error(), "last-good", "error leaks the value")

	// Within the back-off the stale value is served without asking again.
	fetches := c.Fetches()
	got, err = c.String(ctx, name)
	require.NoError(t, err)
	require.Equal(t, "last-good", got)
	assert.Equal(t, fetches, c.Fetches(), "a read within the back-off fetched again")
	clk.Advance(time.Minute)
	got, err = c.String(ctx, name)
	require.NoError(t, err)
	require.Equal(t, "last-good", got)
	assert.Equal(t, fetches+1, c.Fetches(), "a read after the back-off did not retry")
	st := c.Stats()
	assert.Equal(t, int64(3), st.ServedStale, "three reads answered with the stale value")
	assert.Equal(t, int64(2), st.Failures)
	assert.Equal(t, "network", st.LastErrorClass)

	// Past MaxStaleness: a clear error, no value.
	clk.Advance(30 * time.Minute)
	got, err = c.String(ctx, name)
	require.Error(t, err, "past MaxStaleness")
	assert.Empty(t, got)
	assert.ErrorIs(t, err, secrets.ErrStale)
	assert.ErrorContains(t, err, "MaxStaleness")
	assert.ErrorContains(t, err, name)
	assert.NotContains(t, err.Error(), "last-good", "error leaks the value")

	// Back up: fresh value again.
	srv.SetDown(false)
	got, err = c.String(ctx, name)
	require.NoError(t, err, "after recovery")
	assert.Equal(t, "last-good", got)
}

func TestStaleDisabled(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "v")
	c := newCache(t, func(o *secrets.Options) { secrets.WithClock(clk)(o); o.MaxStaleness = -1 })
	_, err := c.String(ctx, name)
	require.NoError(t, err)
	srv.FailNext(standin.OpGetSecretValue, 1, "InternalServiceError")
	clk.Advance(secrets.DefaultTTL)
	_, err = c.String(ctx, name)
	var ise *types.InternalServiceError
	assert.ErrorAs(t, err, &ise, "with stale serving off")
}

func TestTypedErrors(t *testing.T) {
	ctx := context.Background()
	c := newCache(t)
	bin := secretName(t, "bin/")
	_, _, err := srv.CreateBinary(bin, []byte{1, 2, 3})
	require.NoError(t, err)
	kms := secretName(t, "app/kms")
	create(t, kms, "k")
	require.NoError(t, srv.SetDecryptFailure(kms, true))
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
			require.Error(t, err)
			if tc.is != nil {
				assert.ErrorIs(t, err, tc.is)
			}
			for _, other := range []error{secrets.ErrNotFound, secrets.ErrAccessDenied, secrets.ErrStale} {
				if other != tc.is {
					assert.NotErrorIs(t, err, other)
				}
			}
			if tc.asType != nil {
				assert.True(t, tc.asType(err), "SDK error not reachable with errors.As: %#v", err)
			}
			var se *secrets.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.id, se.SecretID)
			assert.True(t, strings.HasPrefix(err.Error(), "secrets: "))
			assert.NotContains(t, err.Error(), "hidden-value", "error leaks a value")
		})
	}
	// Failed fetches leave nothing cached; only the binary secret (read
	// fine, refused by String) is.
	assert.Equal(t, 1, c.Len(), "entries cached after failures")
	b, err := c.Bytes(ctx, bin)
	require.NoError(t, err)
	assert.Equal(t, []byte{1, 2, 3}, b)
	v, err := c.Get(ctx, bin)
	require.NoError(t, err)
	assert.True(t, v.IsBinary())
	assert.Equal(t, []byte{1, 2, 3}, v.SecretBinary())
	assert.Empty(t, v.SecretString())
	assert.IsType(t, (*secretsmanager.Client)(nil), c.Client())
	st := c.Stats()
	assert.Equal(t, int64(4), st.Failures, "four reads failed")
	assert.Empty(t, st.LastErrorClass, "the last fetch (the binary secret) worked")
	assert.Equal(t, int64(5), st.Fetches)
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
			require.NoError(t, err)
			assert.Equal(t, tc.want, v.SecretString())
			assert.Equal(t, tc.ver, v.VersionID)
			assert.Equal(t, arn, v.ARN)
			assert.Equal(t, name, v.Name)
			assert.False(t, v.IsBinary())
		})
	}
	v, _ := c.Get(ctx, name, secrets.WithVersionStage("AWSPREVIOUS"))
	assert.Equal(t, []string{"AWSPREVIOUS"}, v.VersionStages())
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
		_, err := c.String(ctx, id)
		require.NoError(t, err)
		assert.Equal(t, wantFetch, c.Fetches() != before, "read %s fetched", id)
	}
	read(a, true)
	read(b, true)
	read(a, false) // a is now the most recently read
	read(d, true)  // evicts b, the least recently read
	assert.Equal(t, 2, c.Len())
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
	c := newCache(t, func(o *secrets.Options) { secrets.WithClock(clk)(o); o.RefreshInterval = time.Minute })
	changes := make(chan secrets.Value, 4)
	stop, err := c.Watch(ctx, name, func(v secrets.Value) { changes <- v })
	require.NoError(t, err)
	defer stop()

	clk.Advance(time.Minute) // a refresh that finds nothing new
	v2 := rotate(t, name, "after")
	clk.Advance(time.Minute)
	v := <-changes
	assert.Equal(t, v2, v.VersionID)
	assert.Equal(t, "after", v.SecretString())
	// The background refresh updated the cache: no fetch on read, long
	// before the TTL.
	before := c.Fetches()
	got, err := c.String(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "after", got)
	assert.Equal(t, before, c.Fetches(), "read after a background refresh fetched")
	select {
	case v := <-changes:
		assert.Fail(t, "a refresh without rotation notified", "%v", v)
	default:
	}
}

// Without RefreshInterval a watched secret is refreshed when its TTL ends.
func TestWatchRefreshesAtTTL(t *testing.T) {
	ctx := context.Background()
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "before")
	c := newCache(t, func(o *secrets.Options) { secrets.WithClock(clk)(o); o.TTL = 5 * time.Minute })
	changes := make(chan string, 4)
	stop, err := c.Watch(ctx, name, func(v secrets.Value) { changes <- v.SecretString() })
	require.NoError(t, err)
	rotate(t, name, "after")
	clk.Advance(5 * time.Minute)
	assert.Equal(t, "after", <-changes)
	stop()
	_, err = c.Watch(ctx, "app/missing-for-watch", func(secrets.Value) {})
	assert.ErrorIs(t, err, secrets.ErrNotFound, "Watch of a missing secret")
}

func TestContextDeadline(t *testing.T) {
	clk := fakeClock()
	name := secretName(t, "app/")
	create(t, name, "kept")
	c := newCache(t, func(o *secrets.Options) { secrets.WithClock(clk)(o) })
	_, err := c.String(context.Background(), name)
	require.NoError(t, err)
	srv.SetDelay(time.Hour)
	defer srv.SetDelay(0)
	clk.Advance(secrets.DefaultTTL)

	// A caller who cannot wait gets the stale value.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	got, err := c.String(ctx, name)
	cancel()
	require.NoError(t, err, "stale on deadline")
	assert.Equal(t, "kept", got)
	// With nothing cached it gets the context's error.
	other := secretName(t, "app/other")
	ctx, cancel = context.WithTimeout(context.Background(), 20*time.Millisecond)
	_, err = c.String(ctx, other)
	cancel()
	assert.ErrorIs(t, err, context.DeadlineExceeded, "cold read on deadline")
	assert.ErrorContains(t, err, `secrets: "`+other+`": waiting for Secrets Manager: context deadline exceeded`)
}

func TestClose(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "app/")
	create(t, name, "v")
	c := newCache(t, func(o *secrets.Options) { o.RefreshInterval = time.Hour })
	_, err := c.String(ctx, name)
	require.NoError(t, err)
	// A read waiting on an in-flight fetch when Close comes.
	srv.SetDelay(time.Hour)
	defer srv.SetDelay(0)
	done := make(chan error, 1)
	go func() {
		_, err := c.String(ctx, secretName(t, "app/slow"))
		done <- err
	}()
	require.Eventually(t, func() bool { return c.Fetches() >= 2 }, 10*time.Second, time.Millisecond)
	require.NoError(t, c.Close())
	assert.ErrorIs(t, <-done, secrets.ErrClosed, "in-flight read after Close")
	for _, f := range []func() error{
		func() error { _, err := c.String(ctx, name); return err },
		func() error { _, err := c.Bytes(ctx, name); return err },
		func() error { _, err := c.Get(ctx, name); return err },
		func() error { _, err := secrets.JSON[map[string]string](ctx, c, name); return err },
		func() error { _, err := c.Watch(ctx, name, func(secrets.Value) {}); return err },
	} {
		assert.ErrorIs(t, f(), secrets.ErrClosed, "after Close")
	}
	require.NoError(t, c.Close(), "second Close")
}

// A policy from Policy, loaded into the mini-IAM, allows exactly the named
// secrets.
func TestPolicyAllowsExactlyTheNamedSecrets(t *testing.T) {
	ctx := context.Background()
	role := "arn:aws:iam::" + env.Account + ":role/policy-test"
	doc, err := secrets.Policy(env.Region, env.Account, []string{"team/db", "team/api-*"})
	require.NoError(t, err)
	require.NoError(t, env.IAM.PutRole(role, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`), []byte(doc)))
	for _, n := range []string{"team/db", "team/db-old", "team/dbx", "team/api-key", "team/other"} {
		if _, ok := srv.ARN(n); !ok {
			create(t, n, "value of "+n)
		}
	}
	c, err := secrets.New(configFor(t, role))
	require.NoError(t, err)
	defer c.Close()
	for _, tc := range []struct {
		id      string
		allowed bool
	}{{"team/db", true}, {"team/api-key", true}, {"team/db-old", false}, {"team/dbx", false}, {"team/other", false}} {
		_, err := c.String(ctx, tc.id)
		if tc.allowed {
			assert.NoError(t, err, tc.id)
		} else {
			assert.ErrorIs(t, err, secrets.ErrAccessDenied, tc.id)
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
	require.NoError(t, err)
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	c, err := secrets.New(sess.Config())
	require.NoError(t, err)
	defer c.Close()
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := 0; i < 50; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			creds, err := c.RDS(ctx, name)
			if !assert.NoError(t, err) || !assert.Equal(t, "pw-e2e", creds.Password()) || !assert.Equal(t, 5432, creds.Port) {
				failed.Add(1)
			}
		}()
	}
	wg.Wait()
	if failed.Load() > 0 {
		return
	}
	assert.EqualValues(t, 1, env.STS.Calls("AssumeRoleWithWebIdentity")-before, "AssumeRoleWithWebIdentity calls")
	assert.Equal(t, int64(1), c.Fetches())
}

func TestNewValidation(t *testing.T) {
	cfg := awsConfig(t)
	cfg.Region = ""
	_, err := secrets.New(cfg)
	assert.ErrorContains(t, err, "Region", "New without region")
	_, err = secrets.NewFromClient(nil)
	assert.Error(t, err, "NewFromClient(nil) succeeded")
	c := newCache(t)
	_, err = c.String(context.Background(), "")
	assert.ErrorContains(t, err, "empty secret id")
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
		secrets.WithClock(clk)(o)
		o.Logger = slog.New(slog.NewJSONHandler(&buf, nil))
	})
	_, err := c.String(ctx, name)
	require.NoError(t, err)
	srv.FailNext(standin.OpGetSecretValue, 1, "ThrottlingException")
	clk.Advance(secrets.DefaultTTL)
	got, err := c.String(ctx, name)
	require.NoError(t, err, "stale read")
	assert.Equal(t, "logged-never", got)
	// The next refresh works: the recovery is recorded at Info.
	clk.Advance(secrets.DefaultRetryBackoff)
	got, err = c.String(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "logged-never", got)
	require.Eventually(t, func() bool { return strings.Contains(buf.String(), "works again") }, 10*time.Second, time.Millisecond)
	out := buf.String()
	for _, want := range []string{`"level":"WARN"`, `"secret_id":"` + name + `"`, `"served_stale":true`, "ThrottlingException", `"error_class":"throttled"`,
		`"level":"INFO","msg":"secrets: fetching secret works again","secret_id":"` + name + `","failures":1`} {
		assert.Contains(t, out, want)
	}
	assert.NotContains(t, out, "logged-never", "log leaks the value")
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

// Refresh reads a secret now, whatever its TTL, and caches the result;
// Invalidate drops a cached value so the next read fetches it.
func TestRefreshAndInvalidate(t *testing.T) {
	ctx := context.Background()
	name := secretName(t, "app/")
	create(t, name, "one")
	c := newCache(t)
	got, err := c.String(ctx, name)
	require.NoError(t, err)
	require.Equal(t, "one", got)
	v2 := rotate(t, name, "two")
	got, _ = c.String(ctx, name)
	assert.Equal(t, "one", got, "cached within its TTL")

	v, err := c.Refresh(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, v2, v.VersionID)
	assert.Equal(t, "two", v.SecretString())
	fetches := c.Fetches()
	got, _ = c.String(ctx, name)
	assert.Equal(t, "two", got)
	assert.Equal(t, fetches, c.Fetches(), "the refreshed value is cached")

	rotate(t, name, "three")
	c.Invalidate(name)
	got, err = c.String(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "three", got)
	assert.Equal(t, fetches+1, c.Fetches())

	_, err = c.Refresh(ctx, "app/missing-for-refresh")
	assert.ErrorIs(t, err, secrets.ErrNotFound)
	_, err = c.Refresh(ctx, "")
	assert.ErrorContains(t, err, "empty secret id")
	// A failed Refresh reports the failure; readers keep the cached value.
	srv.FailNext(standin.OpGetSecretValue, 1, "ThrottlingException")
	_, err = c.Refresh(ctx, name)
	var se *secrets.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, name, se.SecretID)
	got, err = c.String(ctx, name)
	require.NoError(t, err)
	assert.Equal(t, "three", got)
	st := c.Stats()
	assert.Equal(t, "throttled", st.LastErrorClass)
	assert.Zero(t, st.ServedStale, "the value is within its TTL: not stale")
	require.NoError(t, c.Close())
	_, err = c.Refresh(ctx, name)
	assert.ErrorIs(t, err, secrets.ErrClosed)
}
