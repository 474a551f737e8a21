package procs

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// PostgresOptions configure StartPostgres. Every field has a usable zero value.
type PostgresOptions struct {
	// MaxConnections is postgres' max_connections. Default 700, enough for
	// a 500-connection storm plus the pools of the other tests.
	MaxConnections int
	// Superuser is the bootstrap superuser initdb creates. Default "postgres".
	Superuser string
	// StartTimeout bounds initdb plus the first start. Default 60 s.
	StartTimeout time.Duration
}

// Postgres is a real PostgreSQL server in a temporary directory, listening on
// a random 127.0.0.1 port and on a unix socket in that directory. It trusts
// every local connection (its pg_hba.conf allows only the socket and
// loopback), so the fronts in internal/awstest do all authentication.
// It is safe for concurrent use.
type Postgres struct {
	// Dir is the temporary directory holding the data directory, the socket
	// and the server log.
	Dir string
	// Port is the TCP (and socket) port.
	Port int
	// Superuser is the bootstrap superuser.
	Superuser string

	bin     string // directory of postgres and initdb
	maxConn int
	cred    *syscall.Credential

	mu  sync.Mutex
	cmd *exec.Cmd
	// exited is closed when cmd has been waited for.
	exited chan struct{}
}

// StartPostgres runs initdb in a new temporary directory and starts postgres
// on it. When running as root, both run as the `postgres` OS user, which owns
// the directory. Callers Close it when done.
func StartPostgres(ctx context.Context, optFns ...func(*PostgresOptions)) (*Postgres, error) {
	o := PostgresOptions{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.MaxConnections <= 0 {
		o.MaxConnections = 700
	}
	if o.Superuser == "" {
		o.Superuser = "postgres"
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = 60 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()

	bin, err := postgresBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "irsakit-pg-")
	if err != nil {
		return nil, fmt.Errorf("procs: %w", err)
	}
	p := &Postgres{Dir: dir, Superuser: o.Superuser, bin: bin, maxConn: o.MaxConnections}
	fail := func(err error) (*Postgres, error) {
		os.RemoveAll(dir)
		return nil, err
	}
	if os.Geteuid() == 0 {
		// initdb and postgres refuse to run as root.
		cred, err := postgresUser()
		if err != nil {
			return fail(err)
		}
		p.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("procs: %w", err))
		}
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return fail(fmt.Errorf("procs: %w", err))
	}
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"),
		"-D", p.dataDir(), "-U", o.Superuser, "--auth=trust", "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	initdb.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("procs: initdb: %w\n%s", err, tail(out)))
	}
	port, err := FreePort()
	if err != nil {
		return fail(fmt.Errorf("procs: %w", err))
	}
	p.Port = port
	if err := p.Start(ctx); err != nil {
		return fail(err)
	}
	return p, nil
}

func postgresBinDir() (string, error) {
	pg, err := LookBin("postgres", "postgresql", "/usr/lib/postgresql/*/bin/postgres")
	if err != nil {
		return "", err
	}
	if real, err := filepath.EvalSymlinks(pg); err == nil {
		pg = real
	}
	dir := filepath.Dir(pg)
	if _, err := os.Stat(filepath.Join(dir, "initdb")); err != nil {
		return "", fmt.Errorf("procs: initdb not found next to %s: install the Debian package postgresql", pg)
	}
	return dir, nil
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("procs: running as root needs the OS user postgres (install the Debian package postgresql): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("procs: user postgres has a non-numeric uid/gid %s/%s", u.Uid, u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), NoSetGroups: true}, nil
}

func (p *Postgres) dataDir() string { return filepath.Join(p.Dir, "data") }
func (p *Postgres) logFile() string { return filepath.Join(p.Dir, "postgres.log") }

// SocketDir is the directory of the server's unix socket.
func (p *Postgres) SocketDir() string { return p.Dir }

// SocketPath is the path of the server's unix socket.
func (p *Postgres) SocketPath() string {
	return filepath.Join(p.Dir, ".s.PGSQL."+strconv.Itoa(p.Port))
}

// Addr is the server's TCP address, 127.0.0.1:PORT.
func (p *Postgres) Addr() string { return "127.0.0.1:" + strconv.Itoa(p.Port) }

// ConnString returns a keyword/value connection string reaching the server
// over its unix socket as user (the superuser when empty) in database
// (postgres when empty).
func (p *Postgres) ConnString(user, database string) string {
	if user == "" {
		user = p.Superuser
	}
	if database == "" {
		database = "postgres"
	}
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable", p.Dir, p.Port, user, database)
}

// Start starts the server if it is not running and waits until it accepts
// queries.
func (p *Postgres) Start(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(p.logFile(), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("procs: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(filepath.Join(p.bin, "postgres"),
		"-D", p.dataDir(),
		"-p", strconv.Itoa(p.Port),
		"-k", p.Dir,
		"-c", "listen_addresses=127.0.0.1",
		"-c", "max_connections="+strconv.Itoa(p.maxConn),
		"-c", "shared_buffers=32MB",
		"-c", "fsync=off",
		"-c", "synchronous_commit=off",
		"-c", "full_page_writes=off",
		"-c", "max_wal_senders=0",
		"-c", "wal_level=minimal",
		"-c", "dynamic_shared_memory_type=mmap",
		"-c", "log_min_messages=warning",
	)
	cmd.Env = append(os.Environ(), "TZ=UTC", "LC_ALL=C")
	cmd.Stdout, cmd.Stderr = logf, logf
	// Own process group: a test binary's interrupt does not reach postgres
	// before Close asks it to stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: p.cred, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("procs: starting postgres: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait()
		close(exited)
	}()
	if err := p.waitReady(ctx, exited); err != nil {
		cmd.Process.Kill()
		<-exited
		return err
	}
	p.cmd, p.exited = cmd, exited
	return nil
}

func (p *Postgres) waitReady(ctx context.Context, exited <-chan struct{}) error {
	for {
		cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		c, err := pgconn.Connect(cctx, p.ConnString("", ""))
		cancel()
		if err == nil {
			c.Close(ctx)
			return nil
		}
		select {
		case <-exited:
			return fmt.Errorf("procs: postgres exited during startup\n%s", p.LogTail())
		case <-ctx.Done():
			return fmt.Errorf("procs: postgres did not become ready: %w\n%s", err, p.LogTail())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// Stop shuts the server down (fast shutdown: open sessions are terminated)
// and waits for it to exit. Stopping a stopped server does nothing.
func (p *Postgres) Stop() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil
	}
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.exited:
	case <-time.After(30 * time.Second):
		p.cmd.Process.Kill()
		<-p.exited
	}
	p.cmd, p.exited = nil, nil
	return nil
}

// Restart stops and starts the server on the same port and data directory.
func (p *Postgres) Restart(ctx context.Context) error {
	if err := p.Stop(); err != nil {
		return err
	}
	return p.Start(ctx)
}

// Close stops the server and removes its directory.
func (p *Postgres) Close() error {
	err := p.Stop()
	if rmErr := os.RemoveAll(p.Dir); err == nil {
		err = rmErr
	}
	return err
}

// Exec runs sql as the superuser over the unix socket.
func (p *Postgres) Exec(ctx context.Context, sql string) error {
	c, err := pgconn.Connect(ctx, p.ConnString("", ""))
	if err != nil {
		return fmt.Errorf("procs: %w", err)
	}
	defer c.Close(ctx)
	if _, err := c.Exec(ctx, sql).ReadAll(); err != nil {
		return fmt.Errorf("procs: %w", err)
	}
	return nil
}

// CreateRole creates a LOGIN role (if absent) that owns a database of the
// same name, the shape of an application user on RDS.
func (p *Postgres) CreateRole(ctx context.Context, name string) error {
	if name == "" || strings.ContainsAny(name, "\"\x00") {
		return fmt.Errorf("procs: invalid role name %q", name)
	}
	id := `"` + name + `"`
	sql := fmt.Sprintf(`DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = %s) THEN
    CREATE ROLE %s LOGIN;
  END IF;
END $$;`, quoteLiteral(name), id)
	if err := p.Exec(ctx, sql); err != nil {
		return err
	}
	err := p.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", id, id))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "42P04" { // duplicate_database
		return nil
	}
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// LogTail returns the last lines of the server log.
func (p *Postgres) LogTail() string {
	b, _ := os.ReadFile(p.logFile())
	return tail(b)
}

func tail(b []byte) string {
	b = bytes.TrimSpace(b)
	lines := bytes.Split(b, []byte("\n"))
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}
