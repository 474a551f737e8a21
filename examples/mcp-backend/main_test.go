package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/secrets"
)

var sb *sandboxtest.Sandbox

func TestMain(m *testing.M) { os.Exit(runTests(m)) }

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "mcp-backend-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := sandboxtest.BuildIrsactl(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if sb, err = sandboxtest.Start(ctx, bin, dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	code := m.Run()
	if err := sb.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return code
}

// getenv is the pod's environment: the sandbox's variables over nothing else.
func getenv(extra map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := extra[k]; ok {
			return v
		}
		return sb.Vars[k]
	}
}

// syncBuffer collects log output from the server goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

func call(t *testing.T, method, url string, body any, into any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		require.NoError(t, err)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, rd)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	if into != nil {
		require.NoError(t, json.Unmarshal(b, into), "%s %s: %s", method, url, b)
	}
	return resp.StatusCode
}

// started runs run in the background and returns its address once it
// listens, a channel closed when it is ready, and its result.
func started(t *testing.T, ctx context.Context, log *slog.Logger, env map[string]string) (base string, ready <-chan struct{}, done <-chan error) {
	t.Helper()
	addrc := make(chan string, 1)
	readyc := make(chan struct{})
	donec := make(chan error, 1)
	env = maps.Clone(env)
	if env == nil {
		env = map[string]string{}
	}
	env["LISTEN_ADDR"] = "127.0.0.1:0"
	go func() {
		donec <- run(ctx, log, getenv(env), hooks{listening: func(a string) { addrc <- a }, ready: func() { close(readyc) }})
	}()
	select {
	case a := <-addrc:
		return "http://" + a, readyc, donec
	case err := <-donec:
		require.FailNow(t, "run ended before listening", "%v", err)
	}
	return "", nil, nil
}

func TestBackendAgainstSandbox(t *testing.T) {
	// The process environment is what irsa.Load and the SDK read.
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, ready, done := started(t, ctx, log, nil)
	select {
	case <-ready:
	case err := <-done:
		require.FailNow(t, "run failed", "%v\n%s", err, logs.String())
	}
	assert.Contains(t, logs.String(), "Using IRSA authentication for AWS services")

	assert.Equal(t, 200, call(t, "GET", base+"/healthz", nil, nil))
	var rs ReadyState
	require.Equal(t, 200, call(t, "GET", base+"/readyz", nil, &rs), "%+v", rs)
	assert.True(t, rs.Ready)
	var rd Readiness
	require.Equal(t, 200, call(t, "GET", base+"/statusz", nil, &rd), "%+v", rd)
	assert.True(t, rd.Ready)
	assert.Equal(t, "web-identity", rd.Mode)
	assert.Equal(t, sb.Vars["AWS_ROLE_ARN"], rd.RoleARN)
	for _, dep := range []string{"database", "cache", "secrets", "s3"} {
		assert.Equal(t, "ok", rd.Dependencies[dep].Status, "%s: %s", dep, rd.Dependencies[dep].Detail)
	}

	var who map[string]string
	assert.Equal(t, 200, call(t, "GET", base+"/api/whoami", nil, &who))
	assert.Contains(t, who["identity"], ":assumed-role/mcp-server-role/")

	var created struct {
		Note         Note     `json:"note"`
		NotesCreated int64    `json:"notes_created"`
		Receipt      string   `json:"receipt"`
		StoredIn     []string `json:"stored_in"`
	}
	require.Equal(t, 201, call(t, "POST", base+"/api/notes", map[string]string{"text": "hello from IRSA"}, &created))
	assert.NotZero(t, created.Note.ID)
	assert.GreaterOrEqual(t, created.NotesCreated, int64(1))
	assert.Len(t, created.Receipt, 64)
	// The note went to the sandbox's S3 too, under the prefix the role's
	// s3store.Policy allows; /statusz's listing now sees it.
	wantObj := fmt.Sprintf("s3://%s/%s%d.json", sb.Vars["S3_BUCKET"], sb.Vars["S3_PREFIX"], created.Note.ID)
	assert.Equal(t, []string{"database", wantObj}, created.StoredIn)
	call(t, "GET", base+"/statusz", nil, &rd)
	assert.Contains(t, rd.Dependencies["s3"].Detail, "(1 key(s) seen)")
	var list struct {
		Source string `json:"source"`
		Notes  []Note `json:"notes"`
	}
	call(t, "GET", base+"/api/notes", nil, &list)
	assert.Equal(t, "database", list.Source)
	require.NotEmpty(t, list.Notes)
	assert.Equal(t, "hello from IRSA", list.Notes[0].Text)
	call(t, "GET", base+"/api/notes", nil, &list)
	assert.Equal(t, "cache", list.Source, "the second list did not come from the cache")
	assert.Equal(t, 400, call(t, "POST", base+"/api/notes", map[string]string{}, nil))

	// Graceful shutdown on SIGTERM (the signal cancels run's context).
	cancel()
	select {
	case err := <-done:
		require.NoError(t, err, "run after shutdown")
	case <-time.After(30 * time.Second):
		require.FailNow(t, "no shutdown within 30s")
	}
	assert.Contains(t, logs.String(), "stopped cleanly")
	assert.NotContains(t, logs.String(), "X-Amz-Signature", "a token reached the logs")
}

// TestLivenessDoesNotDependOnAWS: with STS not answering, the pod is
// alive (/healthz) while it is not ready (/readyz, the API).
func TestLivenessDoesNotDependOnAWS(t *testing.T) {
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	silent, err := net.Listen("tcp", "127.0.0.1:0") // accepts, never answers
	require.NoError(t, err)
	defer silent.Close()
	t.Setenv("AWS_ENDPOINT_URL_STS", "http://"+silent.Addr().String())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, ready, done := started(t, ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)

	assert.Equal(t, 200, call(t, "GET", base+"/healthz", nil, nil))
	var rs ReadyState
	assert.Equal(t, 503, call(t, "GET", base+"/readyz", nil, &rs))
	assert.False(t, rs.Ready)
	assert.Contains(t, rs.Detail, "starting")
	assert.Equal(t, 503, call(t, "GET", base+"/api/notes", nil, nil))
	assert.Equal(t, 503, call(t, "GET", base+"/debug/irsa", nil, nil), "counters of an App not yet connected")
	select {
	case <-ready:
		require.FailNow(t, "ready without STS")
	default:
	}
	cancel()
	assert.Error(t, <-done, "run connected without STS")
}

// TestReadinessIgnoresSharedDependencies: S3 unreachable makes /statusz
// report it, not the pod unready; the notes the database serves still
// list.
func TestReadinessIgnoresSharedDependencies(t *testing.T) {
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	closedURL := "http://" + closed.Addr().String()
	closed.Close()
	t.Setenv("AWS_ENDPOINT_URL_S3", closedURL)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	base, ready, done := started(t, ctx, slog.New(slog.NewTextHandler(io.Discard, nil)), nil)
	select {
	case <-ready:
	case err := <-done:
		require.FailNow(t, "run failed", "%v", err)
	}
	var rs ReadyState
	assert.Equal(t, 200, call(t, "GET", base+"/readyz", nil, &rs), "%+v", rs)
	var rd Readiness
	assert.Equal(t, 503, call(t, "GET", base+"/statusz", nil, &rd))
	assert.Equal(t, "failed", rd.Dependencies["s3"].Status)
	assert.Equal(t, "ok", rd.Dependencies["database"].Status)
	assert.Equal(t, 200, call(t, "GET", base+"/api/notes", nil, nil))
	cancel()
	assert.NoError(t, <-done)
}

func TestNodeRoleIsRefused(t *testing.T) {
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	t.Setenv("AWS_ROLE_ARN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	os.Unsetenv("AWS_ROLE_ARN")
	os.Unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE")
	cfg, err := LoadConfig(getenv(nil))
	require.NoError(t, err)
	_, err = NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	assert.ErrorIs(t, err, irsa.ErrNodeRole)
}

func TestLoadConfig(t *testing.T) {
	cases := []struct {
		env     map[string]string
		wantErr string
	}{
		{map[string]string{}, ""},
		{map[string]string{"DATABASE_ENDPOINT": "db:5432"}, "DATABASE_USER"},
		{map[string]string{"REDIS_ENDPOINT": "r:6379", "REDIS_USER": "app"}, "REDIS_CACHE_NAME"},
		{map[string]string{"S3_PATH_STYLE": "maybe"}, "S3_PATH_STYLE"},
		{map[string]string{"SHUTDOWN_TIMEOUT": "-1s"}, "SHUTDOWN_TIMEOUT"},
	}
	for _, tc := range cases {
		_, err := LoadConfig(func(k string) string { return tc.env[k] })
		if tc.wantErr == "" {
			assert.NoError(t, err, "%v", tc.env)
		} else {
			assert.ErrorContains(t, err, tc.wantErr, "%v", tc.env)
		}
	}
}

// TestCloseClosesEveryCache: after Close no token source or secret cache
// of the App is left serving (or holding refresh timers): each answers
// ErrClosed.
func TestCloseClosesEveryCache(t *testing.T) {
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	cfg, err := LoadConfig(getenv(nil))
	require.NoError(t, err)
	a, err := NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	ctx := context.Background()
	_, err = a.dbTokens.Token(ctx)
	require.NoError(t, err, "the pool's token source before Close")
	a.Close()
	_, err = a.dbTokens.Token(ctx)
	assert.ErrorIs(t, err, rdsauth.ErrClosed, "the database token source outlives the App")
	_, err = a.secrets.Get(ctx, cfg.SecretID)
	assert.ErrorIs(t, err, secrets.ErrClosed, "the secrets cache outlives the App")
	_, err = a.cache.(*elasticacheauth.Client).TokenSource().Token(ctx)
	assert.ErrorIs(t, err, elasticacheauth.ErrClosed, "the cache's token source outlives the App")
}

// getJSON GETs url into v and returns the body.
func getJSON(t *testing.T, url string, v any) string {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode, "GET %s: %s", url, b)
	require.NoError(t, json.Unmarshal(b, v), "GET %s: %s", url, b)
	return string(b)
}

// TestDebugIRSA: /debug/irsa and expvar's /debug/vars serve the counters of
// every cache of the App; a request whose connection mints a token moves
// them; no credential, token or secret is among them.
func TestDebugIRSA(t *testing.T) {
	for k, v := range sb.Vars {
		t.Setenv(k, v)
	}
	ctx := context.Background()
	cfg, err := LoadConfig(getenv(nil))
	require.NoError(t, err)
	a, err := NewApp(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()

	var before DebugStats
	getJSON(t, srv.URL+"/debug/irsa", &before)
	assert.Equal(t, "web-identity", before.Mode)
	assert.EqualValues(t, 1, before.Session.Fetches, "credentials fetched once")
	assert.Zero(t, before.Session.Failures)
	assert.True(t, before.Session.Expires.After(time.Now()), "session expiry %s", before.Session.Expires)
	require.NotNil(t, before.DB)
	assert.EqualValues(t, 1, before.DB.Fetches, "the pool's first connection minted one token")
	require.NotNil(t, before.Secrets)
	assert.EqualValues(t, 1, before.Secrets.Fetches, "NewApp read the secret once")
	require.NotNil(t, before.Cache)
	assert.EqualValues(t, 1, before.Cache.Fetches, "the cache client mints its first token when it is made")
	require.NotNil(t, before.Cache.Entries)
	assert.Equal(t, 1, *before.Cache.Entries)

	// Requests on live connections mint nothing.
	require.Equal(t, http.StatusCreated, call(t, "POST", srv.URL+"/api/notes", map[string]string{"text": "counted"}, nil))
	var same DebugStats
	getJSON(t, srv.URL+"/debug/irsa", &same)
	assert.Equal(t, before.DB.Fetches, same.DB.Fetches)
	assert.Equal(t, before.Cache.Fetches, same.Cache.Fetches)

	// A request on a new connection after its token left the cache (as
	// when a connection is replaced after the token's cache window) mints.
	tok, err := a.dbTokens.Token(ctx)
	require.NoError(t, err)
	a.dbTokens.Invalidate(tok)
	a.db.Reset()
	require.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/api/notes", nil, nil))
	var after DebugStats
	body := getJSON(t, srv.URL+"/debug/irsa", &after)
	assert.Equal(t, before.DB.Fetches+1, after.DB.Fetches, "the new connection's token")
	assert.True(t, after.DB.LastRefresh.After(before.DB.LastRefresh), "last refresh %s, before %s", after.DB.LastRefresh, before.DB.LastRefresh)
	assert.Equal(t, before.Session.Fetches, after.Session.Fetches, "the session's cached credentials signed it")
	for _, f := range []string{`"session": {`, `"database": {`, `"cache": {`, `"secrets": {`, `"fetches": `, `"early_refreshes": `, `"failures": `, `"served_stale": `, `"last_refresh": `, `"expires": `, `"entries": `} {
		assert.Contains(t, body, f)
	}

	var vars map[string]json.RawMessage
	varsBody := getJSON(t, srv.URL+"/debug/vars", &vars)
	require.Contains(t, vars, "irsa", "expvar does not publish the counters")
	var published DebugStats
	require.NoError(t, json.Unmarshal(vars["irsa"], &published))
	assert.Equal(t, after.Cache.Fetches, published.Cache.Fetches)
	assert.Equal(t, after.Session.Fetches, published.Session.Fetches)
	assert.Equal(t, after.DB.Fetches, published.DB.Fetches)

	// Nothing secret: the session's keys, the tokens, the secret's value.
	creds, err := a.sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	dbTok, err := a.dbTokens.Token(ctx)
	require.NoError(t, err)
	cacheTok, err := a.cacheTokens.Token(ctx)
	require.NoError(t, err)
	secret, err := a.secrets.Bytes(ctx, cfg.SecretID)
	require.NoError(t, err)
	for name, v := range map[string]string{"secret access key": creds.SecretAccessKey, "session token": creds.SessionToken,
		"database token": dbTok.Value(), "cache token": cacheTok.Value(), "secret value": string(secret)} {
		require.NotEmpty(t, v, name)
		assert.NotContains(t, body, v, "/debug/irsa shows the %s", name)
		assert.NotContains(t, varsBody, v, "/debug/vars shows the %s", name)
	}
	assert.NotContains(t, body+varsBody, "X-Amz-Signature")

	// Closed, the App is no longer published.
	a.Close()
	vars = nil
	getJSON(t, srv.URL+"/debug/vars", &vars)
	assert.JSONEq(t, "null", string(vars["irsa"]))
}
