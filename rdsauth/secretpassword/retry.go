package secretpassword

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/secrets"
)

// The SQLSTATE of a refused password, and the label a refusal carries
// while the connect goes on to its retry.
//
// pgconn ends a connect at 28P01 (invalid_password) and tries its next
// configuration after any other code, so a refusal followed by a retry
// must not read 28P01 when pgconn compares. pgconn also renders each
// attempt's error text as the attempt ends, right after OnPgError, so
// the label is what a reader of a failed connect's error sees: it says
// 28P01 and that a retry followed. The field itself gets 28P01 back
// before the retry starts, so errors.As finds what the server said.
const (
	codeInvalidPassword = "28P01"
	codeRetried         = codeInvalidPassword + ", retried"
)

// errNoRetry ends a retry attempt that is not needed: the attempt before
// it was not refused for a password that has since been rotated.
var errNoRetry = errors.New("secretpassword: retry skipped: no password was refused for a rotated secret")

// target is one configuration pgconn tries: a host of the connection
// string, or the retry attempt that follows it.
type target struct {
	host  string
	port  uint16
	tls   *tls.Config
	retry bool
}

type lookupResult struct {
	addrs []string
	err   error
}

// connect is the state of one connect: pgx copies the config for each
// connection and calls BeforeConnect on the copy, so every hook installed
// by prepare serves exactly one connect (and, once it is established, the
// cancel requests of that connection).
//
// pgconn expands each configuration into one attempt per address its
// LookupFunc returns, and makes them in order, one dial each. connect
// counts lookups and dials to know which configuration an attempt is for:
// a retry attempt dials only while a refused password's refreshed version
// has not yet reached a server.
type connect struct {
	h       *hook
	ctx     context.Context
	targets []target

	mu        sync.Mutex
	lookups   map[string]lookupResult // by host name: a retry reuses its host's answer
	counts    []int                   // per target: how many attempts pgconn makes for it
	lookupPos int                     // next target to be looked up
	order     []int                   // per attempt: its target, built at the first dial
	built     bool
	dials     int
	cur       int  // target of the attempt in progress; -1 for a redial after all targets (pgconn's not-preferred server)
	login     bool // an attempt is past its network connection and not yet authenticated
	live      bool // a session is up (validating or established): dials are its cancel requests

	version  string                 // of the credentials the attempts use
	refused  string                 // the version refused before the switch
	creds    secrets.RDSCredentials // the refreshed credentials, once switched
	switched bool                   // attempts use creds (at most once per connect)
	pending  bool                   // switched, and no attempt has reached a server with creds yet
	onRetry  bool                   // the attempt in progress uses creds
	held     *pgconn.PgError        // the refusal labelled codeRetried, until the next attempt starts
}

// prepare adds a retry attempt after each target of cfg and installs the
// hooks that decide whether it dials and with which password.
func (h *hook) prepare(ctx context.Context, cfg *pgconn.Config, version string) {
	base := make([]target, 0, 1+len(cfg.Fallbacks))
	base = append(base, target{host: cfg.Host, port: cfg.Port, tls: cfg.TLSConfig})
	for _, fb := range cfg.Fallbacks {
		base = append(base, target{host: fb.Host, port: fb.Port, tls: fb.TLSConfig})
	}
	targets := make([]target, 0, 2*len(base))
	for _, t := range base {
		r := t
		r.retry = true
		targets = append(targets, t, r)
	}
	c := &connect{
		h: h, ctx: ctx, targets: targets, version: version, cur: -1,
		lookups: map[string]lookupResult{}, counts: make([]int, len(targets)),
	}
	// A new slice of new values: database/sql hands the hook a shallow
	// copy whose Fallbacks are the caller's. The TLS configs stay the same
	// pointers (pgconn keys client certificates by them).
	fbs := make([]*pgconn.FallbackConfig, 0, len(targets)-1)
	for _, t := range targets[1:] {
		fbs = append(fbs, &pgconn.FallbackConfig{Host: t.host, Port: t.port, TLSConfig: t.tls})
	}
	cfg.Fallbacks = fbs

	lookup := cfg.LookupFunc
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		return c.lookup(ctx, host, lookup)
	}
	dial := cfg.DialFunc
	if dial == nil {
		d := &net.Dialer{KeepAlive: 5 * time.Minute}
		dial = d.DialContext
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if err := c.beginAttempt(); err != nil {
			return nil, err
		}
		return dial(ctx, network, addr)
	}
	afterNet := cfg.AfterNetConnect
	cfg.AfterNetConnect = func(ctx context.Context, pc *pgconn.Config, conn net.Conn) (net.Conn, error) {
		c.beginLogin(pc)
		if afterNet != nil {
			return afterNet(ctx, pc, conn)
		}
		return conn, nil
	}
	onErr := cfg.OnPgError
	cfg.OnPgError = func(pc *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		keep := true
		if onErr != nil {
			keep = onErr(pc, pgErr)
		}
		if c.refusedLogin(pgErr) {
			// The server ends the session after a refused login anyway.
			// Returning false (as pgx's default handler does for FATAL)
			// makes pgconn return this *PgError itself, which refusedLogin
			// labelled; with true it would build a new one.
			return false
		}
		return keep
	}
	validate := cfg.ValidateConnect
	cfg.ValidateConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		// Authenticated: from here on the server's errors answer queries,
		// and a dial is a cancel request for a query the validator runs.
		c.setLive(true)
		if validate != nil {
			if err := validate(ctx, pc); err != nil {
				c.setLive(false) // pgconn closes this session and may try the next
				return err
			}
		}
		return nil
	}
}

// lookup answers pgconn's lookup of host, which it makes once per target
// in order: a retry target gets its host's answer again without a second
// query, and an error only once.
func (c *connect) lookup(ctx context.Context, host string, fn func(context.Context, string) ([]string, error)) ([]string, error) {
	c.mu.Lock()
	i := -1
	for j := c.lookupPos; j < len(c.targets); j++ {
		if c.targets[j].host == host && !isUnixSocket(host) {
			i, c.lookupPos = j, j+1
			break
		}
	}
	res, seen := c.lookups[host]
	c.mu.Unlock()
	if !seen {
		addrs, err := fn(ctx, host)
		res = lookupResult{addrs, err}
	}
	c.mu.Lock()
	c.lookups[host] = res
	if i >= 0 && res.err == nil {
		c.counts[i] = len(res.addrs)
	}
	c.mu.Unlock()
	if seen && res.err != nil && i >= 0 && c.targets[i].retry {
		return nil, nil // already reported for the host itself
	}
	return res.addrs, res.err
}

func isUnixSocket(host string) bool { return len(host) > 0 && host[0] == '/' }

// beginAttempt runs at each dial: it identifies the attempt's target,
// gives a refusal relabelled for pgconn its own code back, and refuses
// the dial of a retry attempt that is not needed.
func (c *connect) beginAttempt() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.live {
		// pgconn.CancelRequest dials the session's server: no attempt.
		return nil
	}
	if !c.built {
		c.built = true
		for i, t := range c.targets {
			n := c.counts[i]
			if isUnixSocket(t.host) {
				n = 1
			}
			for range n {
				c.order = append(c.order, i)
			}
		}
	}
	c.cur = -1
	if c.dials < len(c.order) {
		c.cur = c.order[c.dials]
	}
	c.dials++
	if c.held != nil {
		// pgconn has gone past the refusal; whoever reads the connect's
		// error (if every attempt fails) sees what the server said.
		c.held.Code = codeInvalidPassword
		c.held = nil
	}
	if c.cur >= 0 && c.targets[c.cur].retry && !c.pending {
		return errNoRetry
	}
	return nil
}

// beginLogin runs when an attempt's network connection is up, before the
// startup message: an attempt after a refused password logs in with the
// refreshed credentials.
func (c *connect) beginLogin(pc *pgconn.Config) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.login = true
	c.onRetry = c.switched
	if c.switched {
		c.pending = false
		pc.User, pc.Password = c.creds.Username, c.creds.Password()
	}
}

func (c *connect) setLive(v bool) {
	c.mu.Lock()
	c.live = v
	c.login = false
	c.mu.Unlock()
}

// refusedLogin handles a 28P01 during the login and reports whether it
// was one. The first refusal of a connect refreshes the secret; with a new
// version the refusal is relabelled so that pgconn goes on to the next
// attempt, which uses the new version. Every refusal names the secret and
// version in its message.
func (c *connect) refusedLogin(pgErr *pgconn.PgError) bool {
	if pgErr == nil || pgErr.Code != codeInvalidPassword {
		return false
	}
	c.mu.Lock()
	if !c.login || c.live {
		c.mu.Unlock()
		return false
	}
	c.login = false
	onRetry, cur, version, refused := c.onRetry, c.cur, c.version, c.refused
	c.mu.Unlock()
	h := c.h

	if onRetry {
		annotate(pgErr, fmt.Sprintf("secret %q version %s, refreshed after version %s was refused, was refused too", h.id, version, refused))
		h.log.Warn("secretpassword: the database refused the refreshed password too",
			"secret_id", h.id, "old_version_id", refused, "version_id", version)
		return true
	}
	v, fetched, err := h.refresh(c.ctx, version)
	if err != nil {
		annotate(pgErr, fmt.Sprintf("secret %q version %s was refused and refreshing the secret failed: %v", h.id, version, err))
		h.log.Warn("secretpassword: the database refused the password and refreshing the secret failed",
			"secret_id", h.id, "version_id", version, "err", err)
		return true
	}
	if v.VersionID == version {
		annotate(pgErr, fmt.Sprintf("secret %q version %s was refused and is still the secret's AWSCURRENT version", h.id, version))
		if fetched {
			h.log.Warn("secretpassword: the database refused the password of the secret's current version; the password may be changed before AWSCURRENT moves to it",
				"secret_id", h.id, "version_id", version)
		}
		return true
	}
	creds, err := v.RDS()
	if err == nil {
		err = usable(creds)
	}
	if err != nil {
		annotate(pgErr, fmt.Sprintf("secret %q version %s was refused and its new version %s cannot be used: %v", h.id, version, v.VersionID, err))
		h.log.Warn("secretpassword: the database refused the password and the refreshed secret cannot be used",
			"secret_id", h.id, "old_version_id", version, "version_id", v.VersionID, "err", err)
		return true
	}
	if cur < 0 {
		// pgconn's last attempt (a not-preferred server connected to
		// again): no attempt follows; the next connection uses v.
		annotate(pgErr, fmt.Sprintf("secret %q version %s was refused; the next connection uses version %s", h.id, version, v.VersionID))
		return true
	}
	c.mu.Lock()
	c.switched, c.pending = true, true
	c.refused, c.version, c.creds = version, v.VersionID, creds
	c.held = pgErr
	c.mu.Unlock()
	annotate(pgErr, fmt.Sprintf("secret %q version %s was refused; retried with version %s", h.id, version, v.VersionID))
	pgErr.Code = codeRetried
	if fetched {
		h.log.Info("secretpassword: the database refused the cached password; the secret was refreshed and the connection retries with its new version",
			"secret_id", h.id, "old_version_id", version, "version_id", v.VersionID)
	} else {
		h.log.Debug("secretpassword: the database refused the cached password; the connection retries with the secret's new version",
			"secret_id", h.id, "old_version_id", version, "version_id", v.VersionID)
	}
	return true
}

// annotate adds what the hook knows to a refusal's message: the secret
// and version, never a password.
func annotate(pgErr *pgconn.PgError, note string) {
	pgErr.Message += " (secretpassword: " + note + ")"
}
