package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
	"github.com/irsakit/irsakit/irsa"
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
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if into != nil {
		if err := json.Unmarshal(b, into); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode
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
	ready := make(chan string, 1)
	done := make(chan error, 1)
	go func() { done <- run(ctx, log, getenv(map[string]string{"LISTEN_ADDR": "127.0.0.1:0"}), ready) }()
	var addr string
	select {
	case addr = <-ready:
	case err := <-done:
		t.Fatalf("run: %v\n%s", err, logs.String())
	}
	base := "http://" + addr
	if !strings.Contains(logs.String(), "Using IRSA authentication for AWS services") {
		t.Errorf("no IRSA log line:\n%s", logs.String())
	}

	if code := call(t, "GET", base+"/healthz", nil, nil); code != 200 {
		t.Errorf("/healthz = %d", code)
	}
	var rd Readiness
	if code := call(t, "GET", base+"/readyz", nil, &rd); code != 200 || !rd.Ready {
		t.Fatalf("/readyz = %d %+v", code, rd)
	}
	if rd.Mode != "web-identity" || rd.RoleARN != sb.Vars["AWS_ROLE_ARN"] {
		t.Errorf("mode %q role %q", rd.Mode, rd.RoleARN)
	}
	for dep, want := range map[string]string{"database": "ok", "cache": "ok", "secrets": "ok", "s3": "ok"} {
		if got := rd.Dependencies[dep].Status; got != want {
			t.Errorf("%s: %s (%s), want %s", dep, got, rd.Dependencies[dep].Detail, want)
		}
	}

	var who map[string]string
	if code := call(t, "GET", base+"/api/whoami", nil, &who); code != 200 || !strings.Contains(who["identity"], ":assumed-role/mcp-server-role/") {
		t.Errorf("/api/whoami = %d %v", code, who)
	}

	var created struct {
		Note         Note     `json:"note"`
		NotesCreated int64    `json:"notes_created"`
		Receipt      string   `json:"receipt"`
		StoredIn     []string `json:"stored_in"`
	}
	if code := call(t, "POST", base+"/api/notes", map[string]string{"text": "hello from IRSA"}, &created); code != 201 {
		t.Fatalf("POST /api/notes = %d", code)
	}
	if created.Note.ID == 0 || created.NotesCreated < 1 || len(created.Receipt) != 64 {
		t.Errorf("created %+v", created)
	}
	// The note went to the sandbox's S3 too, under the prefix the role's
	// s3store.Policy allows; /readyz's listing now sees it.
	wantObj := fmt.Sprintf("s3://%s/%s%d.json", sb.Vars["S3_BUCKET"], sb.Vars["S3_PREFIX"], created.Note.ID)
	if len(created.StoredIn) != 2 || created.StoredIn[1] != wantObj {
		t.Errorf("stored_in %v, want database and %s", created.StoredIn, wantObj)
	}
	if call(t, "GET", base+"/readyz", nil, &rd); !strings.Contains(rd.Dependencies["s3"].Detail, "(1 key(s) seen)") {
		t.Errorf("s3 after the note: %+v", rd.Dependencies["s3"])
	}
	var list struct {
		Source string `json:"source"`
		Notes  []Note `json:"notes"`
	}
	if call(t, "GET", base+"/api/notes", nil, &list); list.Source != "database" || len(list.Notes) == 0 || list.Notes[0].Text != "hello from IRSA" {
		t.Errorf("first list: %+v", list)
	}
	if call(t, "GET", base+"/api/notes", nil, &list); list.Source != "cache" || len(list.Notes) == 0 {
		t.Errorf("second list not from the cache: %+v", list)
	}
	if code := call(t, "POST", base+"/api/notes", map[string]string{}, nil); code != 400 {
		t.Errorf("empty note = %d", code)
	}

	// Graceful shutdown on SIGTERM (the signal cancels run's context).
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run after shutdown: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no shutdown within 30s")
	}
	if !strings.Contains(logs.String(), "stopped cleanly") {
		t.Errorf("no clean stop logged:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), "X-Amz-Signature") {
		t.Error("a token reached the logs")
	}
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
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewApp(context.Background(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if !errors.Is(err, irsa.ErrNodeRole) {
		t.Fatalf("NewApp in a pod without IRSA: %v, want irsa.ErrNodeRole", err)
	}
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
		if (tc.wantErr == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.wantErr)) {
			t.Errorf("%v: err %v, want %q", tc.env, err, tc.wantErr)
		}
	}
}
