package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/rdsauth"
)

// fencedAfter returns the first fenced code block after the line starting
// with marker in the walk-through (../README.md), as written there.
func fencedAfter(t *testing.T, marker string) string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	require.NoError(t, err)
	_, rest, ok := strings.Cut(string(b), "\n"+marker)
	require.True(t, ok, "no %q in examples/README.md", marker)
	m := regexp.MustCompile("(?s)\n```[a-z]*\n(.*?)\n```").FindStringSubmatch(rest)
	require.NotNil(t, m, "no code block after %q", marker)
	return m[1]
}

// The two statements the IRSA guides give (with the database the app
// uses), before this walk-through: on PostgreSQL 15+ they leave the app
// unable to create its table.
const guideSQL = `CREATE USER guide_app WITH LOGIN;
GRANT rds_iam TO guide_app;
GRANT CONNECT ON DATABASE guide TO guide_app;
`

// rdsLike is a real PostgreSQL set up like an RDS instance: an rds_iam
// role, a master user that is not a superuser (CREATEDB, CREATEROLE), and
// the IAM-verifying front the application connects through.
type rdsLike struct {
	pg    *procs.Postgres
	front *pgfront.Front
	env   *awstest.Env
}

func startRDSLike(t *testing.T, users ...string) *rdsLike {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pg, err := procs.StartPostgres(ctx)
	require.NoError(t, err)
	t.Cleanup(func() { pg.Close() })
	require.NoError(t, pg.Exec(ctx, `CREATE ROLE rds_iam; CREATE ROLE master LOGIN CREATEDB CREATEROLE`))
	env := awstest.Start(t)
	front, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM, Region: env.Region})
	require.NoError(t, err)
	t.Cleanup(func() { front.Close() })
	pol, err := rdsauth.Policy(env.Region, env.Account, front.ResourceID(), users)
	require.NoError(t, err)
	require.NoError(t, env.AttachPolicy(pol))
	env.Setenv(t)
	return &rdsLike{pg: pg, front: front, env: env}
}

// psql runs sql with psql as the master user, the way the walk-through
// says to (psql -f), stopping at the first error.
func (r *rdsLike) psql(t *testing.T, sql string) {
	t.Helper()
	psql, err := procs.LookBin("psql", "postgresql-client", "/usr/lib/postgresql/*/bin/psql")
	require.NoError(t, err)
	f := filepath.Join(t.TempDir(), "mcp.sql")
	require.NoError(t, os.WriteFile(f, []byte(sql), 0o644))
	require.NoError(t, os.Chmod(filepath.Dir(f), 0o755))
	cmd := exec.Command(psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", r.pg.SocketDir(), "-p", strconv.Itoa(r.pg.Port), "-U", "master", "-d", "postgres", "-f", f)
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "psql -f mcp.sql:\n%s", out)
}

func (r *rdsLike) appConfig(user, db string) Config {
	return Config{ListenAddr: "127.0.0.1:0", DatabaseEndpoint: r.front.Addr(), DatabaseUser: user, DatabaseName: db,
		DatabaseCAFile: r.front.CAFile(), S3Prefix: "notes/", ShutdownTimeout: 5 * time.Second}
}

// TestWalkthroughSQL runs the walk-through's SQL exactly as the README has
// it, then starts the app as its user through the IAM front: the app
// creates its table and stores a note. The guides' statements, in the
// same setting, fail the way users saw.
func TestWalkthroughSQL(t *testing.T) {
	r := startRDSLike(t, "mcp_app", "guide_app")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	t.Run("the guides' statements", func(t *testing.T) {
		require.NoError(t, r.pg.Exec(ctx, `CREATE DATABASE guide OWNER master`))
		r.psql(t, guideSQL)
		_, err := NewApp(ctx, r.appConfig("guide_app", "guide"), log)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "permission denied for schema public")
	})

	t.Run("the walk-through's statements", func(t *testing.T) {
		sql := fencedAfter(t, "<!-- mcp.sql")
		assert.Contains(t, sql, "CREATE DATABASE mcp", "the walk-through creates the database")
		r.psql(t, sql)
		app, err := NewApp(ctx, r.appConfig("mcp_app", "mcp"), log)
		require.NoError(t, err, "the app as mcp_app")
		defer app.Close()
		srv := httptest.NewServer(app.Handler())
		defer srv.Close()
		var created struct {
			Note Note `json:"note"`
		}
		require.Equal(t, http.StatusCreated, call(t, "POST", srv.URL+"/api/notes", map[string]string{"text": "least privilege"}, &created))
		assert.NotZero(t, created.Note.ID)
		assert.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/readyz", nil, nil))

		// The table is the app's, in its schema; it may do nothing in
		// public, and its login is IAM only (the front verified a token).
		owner := queryOne(t, r.pg, "mcp", `SELECT schemaname || ' ' || tableowner FROM pg_tables WHERE tablename = 'notes'`)
		assert.Equal(t, "mcp_app mcp_app", owner)
		assert.Equal(t, "t", queryOne(t, r.pg, "postgres", `SELECT pg_has_role('mcp_app', 'rds_iam', 'member')::text`)[:1])
		_, err = app.db.Exec(ctx, `CREATE TABLE public.sneaky (id int)`)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "permission denied for schema public")
		assert.Positive(t, r.front.Accepted(), "the app did not log in through the IAM front")
	})
}

func queryOne(t *testing.T, pg *procs.Postgres, db, sql string) string {
	t.Helper()
	ctx := context.Background()
	c, err := pgconn.Connect(ctx, pg.ConnString("", db))
	require.NoError(t, err)
	defer c.Close(ctx)
	res, err := c.Exec(ctx, sql).ReadAll()
	require.NoError(t, err)
	require.NotEmpty(t, res[0].Rows, sql)
	return string(res[0].Rows[0][0])
}

// elastiCacheUser is one `aws elasticache create-user` of the walk-through.
type elastiCacheUser struct {
	id, name, authMode, access string
}

var (
	createUserRE = regexp.MustCompile(`aws elasticache create-user --user-id (\S+) --user-name (\S+) --engine redis\s+--authentication-mode Type=(\S+)\s+--access-string "([^"]*)"`)
	userGroupRE  = regexp.MustCompile(`aws elasticache create-user-group --user-group-id \S+ --engine redis --user-ids ([^\n]*)`)
)

func walkthroughRBAC(t *testing.T) (users map[string]elastiCacheUser, group []string) {
	t.Helper()
	block := strings.ReplaceAll(fencedAfter(t, "<!-- elasticache-rbac"), "\\\n", " ")
	users = map[string]elastiCacheUser{}
	for _, m := range createUserRE.FindAllStringSubmatch(block, -1) {
		users[m[1]] = elastiCacheUser{id: m[1], name: m[2], authMode: m[3], access: m[4]}
	}
	g := userGroupRE.FindStringSubmatch(block)
	require.NotNil(t, g, "no create-user-group in:\n%s", block)
	return users, strings.Fields(g[1])
}

// applyACL gives a real redis-server the user ElastiCache would create
// (IAM authentication stood in for by a password).
func applyACL(t *testing.T, rs *procs.Redis, u elastiCacheUser, password string) {
	t.Helper()
	args := []string{"ACL", "SETUSER", u.name, "reset"}
	if password == "" {
		args = append(args, "nopass")
	} else {
		args = append(args, ">"+password)
	}
	args = append(args, strings.Fields(u.access)...)
	_, err := rs.Do(context.Background(), args...)
	require.NoError(t, err, "%v", args)
}

// TestWalkthroughElastiCacheRBAC: the user group of the walk-through holds
// no built-in default user, its own default is off, and the app user's
// access string lets the app do its work on its keys and nothing else —
// checked against a real redis-server with the same ACL rules.
func TestWalkthroughElastiCacheRBAC(t *testing.T) {
	users, group := walkthroughRBAC(t)
	require.NotContains(t, group, "default", "the built-in default user (no password, every command) is in the user group")
	var def, app elastiCacheUser
	for _, id := range group {
		u, ok := users[id]
		require.True(t, ok, "the group names %s, which the walk-through does not create", id)
		if u.name == "default" {
			def = u
		} else {
			app = u
		}
	}
	require.Equal(t, "default", def.name, "a user group needs a user named default")
	assert.True(t, strings.HasPrefix(def.access, "off "), "the group's default user is not disabled: %q", def.access)
	assert.Equal(t, "iam", app.authMode)
	assert.Equal(t, "mcp-app", app.id)
	assert.Equal(t, app.id, app.name, "IAM users: user id = user name")

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	rs, err := procs.StartRedis(ctx)
	require.NoError(t, err)
	defer rs.Stop()
	anonymousClient := func() *redis.Client {
		c := redis.NewClient(&redis.Options{Addr: rs.Addr, MaxRetries: -1, Protocol: 2, DisableIdentity: true,
			MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
		t.Cleanup(func() { c.Close() })
		return c
	}
	// The built-in default user: anyone reaching the port may do anything.
	require.NoError(t, anonymousClient().Set(ctx, "other:key", "v", 0).Err(), "the built-in default user")

	applyACL(t, rs, app, "iam-token-stand-in")
	applyACL(t, rs, def, "") // last: procs.Redis.Do connects as default
	err = anonymousClient().Ping(ctx).Err()
	require.Error(t, err, "unauthenticated access with the walk-through's default user")
	assert.Contains(t, err.Error(), "NOAUTH")

	// The app, with the go-redis options elasticacheauth uses, as mcp-app.
	rc := redis.NewClient(&redis.Options{Addr: rs.Addr, Username: app.name, Password: "iam-token-stand-in", MaxRetries: -1,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}})
	r := startRDSLike(t, "mcp_app")
	r.psql(t, fencedAfter(t, "<!-- mcp.sql"))
	a, err := NewApp(ctx, r.appConfig("mcp_app", "mcp"), slog.New(slog.NewTextHandler(io.Discard, nil)))
	require.NoError(t, err)
	a.cache = rc
	a.cfg.RedisUser, a.cfg.RedisCacheName = app.name, "mcp-cache"
	defer a.Close()
	srv := httptest.NewServer(a.Handler())
	defer srv.Close()
	var created map[string]any
	require.Equal(t, http.StatusCreated, call(t, "POST", srv.URL+"/api/notes", map[string]string{"text": "cached"}, &created), "%v", created)
	var list struct {
		Source string `json:"source"`
	}
	require.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/api/notes", nil, &list))
	require.Equal(t, http.StatusOK, call(t, "GET", srv.URL+"/api/notes", nil, &list))
	assert.Equal(t, "cache", list.Source, "the app's cache reads and writes went through")
	var st Readiness
	call(t, "GET", srv.URL+"/statusz", nil, &st)
	assert.Equal(t, "ok", st.Dependencies["cache"].Status, st.Dependencies["cache"].Detail)

	// Nothing beyond: other keys, the keyspace, administration.
	for _, cmd := range [][]any{{"get", "other:key"}, {"flushall"}, {"keys", "*"}, {"config", "get", "*"}, {"client", "kill", "id", "1"}, {"acl", "list"}} {
		err := rc.Do(ctx, cmd...).Err()
		require.Error(t, err, "%v allowed", cmd)
		assert.Contains(t, err.Error(), "NOPERM", "%v", cmd)
	}
}
