package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"expvar"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/s3store"
	"github.com/irsakit/irsakit/secrets"
)

// App is the backend: one IRSA session feeding every client. Safe for
// concurrent use.
type App struct {
	cfg         Config
	log         *slog.Logger
	sess        *irsa.Session
	db          *pgxpool.Pool                // nil: disabled
	dbTokens    *rdsauth.TokenSource         // the pool\'s IAM tokens
	cache       cacheClient                  // nil: disabled
	cacheTokens *elasticacheauth.TokenSource // the cache client's IAM tokens
	store       *s3store.Store               // nil: disabled
	secrets     *secrets.Cache               // nil: disabled

	closeOnce sync.Once
}

// cacheClient is what the App uses of its cache: an elasticacheauth.Client
// in production; the commands it sends are the ones the walk-through's
// ElastiCache access string allows (walkthrough_test.go).
type cacheClient interface {
	redis.Cmdable
	Close() error
}

// The App's keys: the walk-through's access string allows ~notes:*.
const (
	latestKey  = "notes:latest"
	createdKey = "notes:created"
)

// NewApp loads the IRSA session and connects to every configured
// dependency. Connection problems surface here with the library's error,
// which names the cause and the fix.
func NewApp(ctx context.Context, cfg Config, log *slog.Logger) (_ *App, err error) {
	sess, err := irsa.Load(ctx, func(o *irsa.Options) { o.Logger = log })
	if err != nil {
		return nil, err
	}
	a := &App{cfg: cfg, log: log, sess: sess}
	defer func() {
		if err != nil {
			a.Close()
		}
	}()
	awsCfg := sess.Config()
	if cfg.DatabaseEndpoint != "" {
		dsn := (&url.URL{Scheme: "postgres", User: url.User(cfg.DatabaseUser), Host: cfg.DatabaseEndpoint, Path: "/" + cfg.DatabaseName,
			RawQuery: "sslmode=verify-full&pool_max_conns=8"}).String()
		// ConfigurePool rather than NewPool: it hands back the token
		// source, which Close closes with the pool (the pool does not know
		// it: NewPool's stays open, timers armed, after pool.Close).
		poolCfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		if a.dbTokens, err = rdsauth.ConfigurePool(poolCfg, awsCfg, func(o *rdsauth.Options) { o.RootCAFile = cfg.DatabaseCAFile }); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		if a.db, err = pgxpool.NewWithConfig(ctx, poolCfg); err != nil {
			return nil, fmt.Errorf("database: %w", err)
		}
		if _, err = a.db.Exec(ctx, `CREATE TABLE IF NOT EXISTS notes (
			id bigserial PRIMARY KEY,
			text text NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now())`); err != nil {
			return nil, fmt.Errorf("database: creating table notes: %w", err)
		}
	}
	if cfg.RedisEndpoint != "" {
		var pool *x509.CertPool
		if cfg.RedisCAFile != "" {
			pem, err := os.ReadFile(cfg.RedisCAFile)
			if err != nil {
				return nil, fmt.Errorf("cache: %w", err)
			}
			pool = x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, fmt.Errorf("cache: %s holds no PEM certificate", cfg.RedisCAFile)
			}
		}
		rc, err := elasticacheauth.NewClient(ctx, cfg.RedisEndpoint, cfg.RedisCacheName, cfg.RedisUser, awsCfg,
			func(o *elasticacheauth.ClientOptions) { o.RootCAs = pool })
		if err != nil {
			return nil, fmt.Errorf("cache: %w", err)
		}
		a.cache = rc // only a working client: a nil *Client in the interface would not be nil
		a.cacheTokens = rc.TokenSource()
	}
	if cfg.S3Bucket != "" {
		a.store, err = s3store.New(awsCfg, cfg.S3Bucket, func(o *s3store.Options) { o.UsePathStyle = cfg.S3PathStyle })
		if err != nil {
			return nil, fmt.Errorf("s3: %w", err)
		}
	}
	if cfg.SecretID != "" {
		a.secrets, err = secrets.New(awsCfg)
		if err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
		if _, err = a.secrets.Get(ctx, cfg.SecretID); err != nil {
			return nil, fmt.Errorf("secrets: %w", err)
		}
	}
	return a, nil
}

// Close releases every client.
func (a *App) Close() {
	a.closeOnce.Do(func() {
		unpublishExpvar(a)
		if a.db != nil {
			a.db.Close()
		}
		if a.dbTokens != nil {
			a.dbTokens.Close()
		}
		if a.cache != nil {
			a.cache.Close()
		}
		if a.secrets != nil {
			a.secrets.Close()
		}
	})
}

// Handler routes the API to a.
func (a *App) Handler() http.Handler {
	r := newRouter()
	r.setApp(a)
	return r
}

// router serves /healthz from the start and the rest once the App is
// connected (503 before).
type router struct {
	app atomic.Pointer[App]
	mux *http.ServeMux
}

func newRouter() *router {
	r := &router{mux: http.NewServeMux()}
	// Liveness: the process answers. No dependency, no AWS call.
	r.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	r.mux.HandleFunc("GET /readyz", r.withApp((*App).readyz))
	r.mux.HandleFunc("GET /statusz", r.withApp((*App).statusz))
	r.mux.HandleFunc("GET /api/whoami", r.withApp((*App).whoami))
	r.mux.HandleFunc("GET /api/notes", r.withApp((*App).listNotes))
	r.mux.HandleFunc("POST /api/notes", r.withApp((*App).createNote))
	// The caches' counters (no credential, token or secret), as JSON and
	// through expvar.
	r.mux.HandleFunc("GET /debug/irsa", r.withApp((*App).debugIRSA))
	r.mux.Handle("GET /debug/vars", expvar.Handler())
	return r
}

func (r *router) setApp(a *App) {
	r.app.Store(a)
	publishExpvar(a)
}

func (r *router) ServeHTTP(w http.ResponseWriter, req *http.Request) { r.mux.ServeHTTP(w, req) }

func (r *router) withApp(fn func(*App, http.ResponseWriter, *http.Request)) http.HandlerFunc {
	return func(w http.ResponseWriter, req *http.Request) {
		a := r.app.Load()
		if a == nil {
			writeJSON(w, http.StatusServiceUnavailable, ReadyState{Ready: false, Detail: "starting: connecting to the dependencies"})
			return
		}
		fn(a, w, req)
	}
}

// ReadyState is the /readyz body.
type ReadyState struct {
	Ready  bool   `json:"ready"`
	Detail string `json:"detail"`
}

// readyz checks only what the pod cannot serve without: its database
// (every notes call reads or writes it). The cache, S3 and Secrets
// Manager are shared by every replica: their outage would take all pods
// out of the Service at once while reads still work; /statusz shows them.
func (a *App) readyz(w http.ResponseWriter, r *http.Request) {
	if a.db == nil {
		writeJSON(w, http.StatusOK, ReadyState{Ready: true, Detail: "no database configured"})
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	if err := a.db.Ping(ctx); err != nil {
		writeJSON(w, http.StatusServiceUnavailable, ReadyState{Ready: false, Detail: "database: " + err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ReadyState{Ready: true, Detail: "database answers"})
}

// DependencyStatus is one dependency's answer in /readyz.
type DependencyStatus struct {
	Status string `json:"status"` // ok, failed, disabled
	Detail string `json:"detail"`
}

// Readiness is the /statusz body: every dependency probed.
type Readiness struct {
	Ready        bool                        `json:"ready"`
	Mode         string                      `json:"mode"`
	RoleARN      string                      `json:"role_arn,omitempty"`
	Region       string                      `json:"region"`
	Dependencies map[string]DependencyStatus `json:"dependencies"`
}

// statusz probes every dependency, for people and the demo (not a probe).
func (a *App) statusz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 3*time.Second)
	defer cancel()
	rd := Readiness{Ready: true, Mode: a.sess.Mode().String(), RoleARN: a.sess.RoleARN(), Region: a.sess.Region(), Dependencies: map[string]DependencyStatus{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	check := func(name string, enabled bool, probe func(context.Context) (string, error)) {
		if !enabled {
			mu.Lock() // probes started before write the map too
			rd.Dependencies[name] = DependencyStatus{Status: "disabled", Detail: "not configured"}
			mu.Unlock()
			return
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			detail, err := probe(ctx)
			st := DependencyStatus{Status: "ok", Detail: detail}
			if err != nil {
				st = DependencyStatus{Status: "failed", Detail: err.Error()}
			}
			mu.Lock()
			rd.Dependencies[name] = st
			if err != nil {
				rd.Ready = false
			}
			mu.Unlock()
		}()
	}
	check("database", a.db != nil, func(ctx context.Context) (string, error) {
		var user, version string
		err := a.db.QueryRow(ctx, "SELECT current_user, split_part(version(), ' ', 2)").Scan(&user, &version)
		return fmt.Sprintf("PostgreSQL %s, IAM user %s, %d connection(s)", version, user, a.db.Stat().TotalConns()), err
	})
	check("cache", a.cache != nil, func(ctx context.Context) (string, error) {
		pong, err := a.cache.Ping(ctx).Result()
		return fmt.Sprintf("PING → %s as IAM user %s on %s", pong, a.cfg.RedisUser, a.cfg.RedisCacheName), err
	})
	check("s3", a.store != nil, func(ctx context.Context) (string, error) {
		n := 0
		for _, err := range a.store.List(ctx, a.cfg.S3Prefix) {
			if err != nil {
				return "", err
			}
			n++
			break
		}
		return fmt.Sprintf("s3://%s/%s listable (%d key(s) seen)", a.cfg.S3Bucket, a.cfg.S3Prefix, n), nil
	})
	check("secrets", a.secrets != nil, func(ctx context.Context) (string, error) {
		v, err := a.secrets.Get(ctx, a.cfg.SecretID)
		if err != nil {
			return "", err
		}
		return fmt.Sprintf("%s version %s %v (%d bytes, value not shown)", a.cfg.SecretID, v.VersionID, v.VersionStages(), len(v.Bytes())), nil
	})
	wg.Wait()
	code := http.StatusOK
	if !rd.Ready {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, rd)
}

func (a *App) whoami(w http.ResponseWriter, r *http.Request) {
	id, err := a.sess.Identity(r.Context())
	if err != nil {
		a.fail(w, r, http.StatusBadGateway, "sts", err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"mode": a.sess.Mode().String(), "role_arn": a.sess.RoleARN(), "region": a.sess.Region(), "identity": id.Arn, "account": id.Account})
}

// Note is a stored note.
type Note struct {
	ID        int64     `json:"id"`
	Text      string    `json:"text"`
	CreatedAt time.Time `json:"created_at"`
}

func (a *App) createNote(w http.ResponseWriter, r *http.Request) {
	if a.db == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database not configured"})
		return
	}
	var in struct {
		Text string `json:"text"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&in); err != nil || in.Text == "" {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": `want {"text": "..."}`})
		return
	}
	ctx := r.Context()
	var n Note
	if err := a.db.QueryRow(ctx, "INSERT INTO notes (text) VALUES ($1) RETURNING id, text, created_at", in.Text).Scan(&n.ID, &n.Text, &n.CreatedAt); err != nil {
		a.fail(w, r, http.StatusBadGateway, "database", err)
		return
	}
	out := map[string]any{"note": n}
	stored := []string{"database"}
	if a.cache != nil {
		pipe := a.cache.TxPipeline()
		total := pipe.Incr(ctx, createdKey)
		pipe.Del(ctx, latestKey)
		if _, err := pipe.Exec(ctx); err != nil {
			a.fail(w, r, http.StatusBadGateway, "cache", err)
			return
		}
		out["notes_created"] = total.Val()
	}
	if a.store != nil {
		body, _ := json.Marshal(n)
		key := a.cfg.S3Prefix + strconv.FormatInt(n.ID, 10) + ".json"
		if _, err := a.store.Put(ctx, key, bytes.NewReader(body), func(o *s3store.PutOptions) { o.ContentType = "application/json" }); err != nil {
			a.fail(w, r, http.StatusBadGateway, "s3", err)
			return
		}
		stored = append(stored, "s3://"+a.cfg.S3Bucket+"/"+key)
	}
	out["stored_in"] = stored
	if a.secrets != nil {
		key, err := a.secrets.Bytes(ctx, a.cfg.SecretID)
		if err != nil {
			a.fail(w, r, http.StatusBadGateway, "secrets", err)
			return
		}
		mac := hmac.New(sha256.New, key)
		fmt.Fprintf(mac, "%d:%s", n.ID, n.Text)
		out["receipt"] = hex.EncodeToString(mac.Sum(nil))
	}
	writeJSON(w, http.StatusCreated, out)
}

func (a *App) listNotes(w http.ResponseWriter, r *http.Request) {
	if a.db == nil {
		writeJSON(w, http.StatusServiceUnavailable, map[string]string{"error": "database not configured"})
		return
	}
	ctx := r.Context()
	if a.cache != nil {
		b, err := a.cache.Get(ctx, latestKey).Bytes()
		switch {
		case err == nil:
			var notes []Note
			if json.Unmarshal(b, &notes) == nil {
				writeJSON(w, http.StatusOK, map[string]any{"source": "cache", "notes": notes})
				return
			}
		case !errors.Is(err, redis.Nil):
			a.log.WarnContext(ctx, "cache read failed; using the database", slog.String("error", err.Error()))
		}
	}
	rows, err := a.db.Query(ctx, "SELECT id, text, created_at FROM notes ORDER BY id DESC LIMIT 20")
	if err != nil {
		a.fail(w, r, http.StatusBadGateway, "database", err)
		return
	}
	notes := []Note{}
	for rows.Next() {
		var n Note
		if err := rows.Scan(&n.ID, &n.Text, &n.CreatedAt); err != nil {
			rows.Close()
			a.fail(w, r, http.StatusBadGateway, "database", err)
			return
		}
		notes = append(notes, n)
	}
	if err := rows.Err(); err != nil {
		a.fail(w, r, http.StatusBadGateway, "database", err)
		return
	}
	if a.cache != nil {
		if b, err := json.Marshal(notes); err == nil {
			a.cache.Set(ctx, latestKey, b, time.Minute)
		}
	}
	writeJSON(w, http.StatusOK, map[string]any{"source": "database", "notes": notes})
}

func (a *App) fail(w http.ResponseWriter, r *http.Request, code int, dep string, err error) {
	a.log.ErrorContext(r.Context(), "request failed", slog.String("dependency", dep), slog.String("error", err.Error()))
	writeJSON(w, code, map[string]string{"error": dep + ": " + err.Error()})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}
