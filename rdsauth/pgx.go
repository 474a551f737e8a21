package rdsauth

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// SQLSTATEs of a refused login: invalid_password (PostgreSQL password
// auth) and invalid_authorization_specification (what RDS answers a bad
// IAM token with: "PAM authentication failed for user").
const (
	codeInvalidPassword      = "28P01"
	codeInvalidAuthorization = "28000"
)

// errRetryNotNeeded ends the spare attempt BeforeConnect adds after each
// host when that host did not refuse a token.
var errRetryNotNeeded = errors.New("rdsauth: spare attempt skipped: this host did not refuse the IAM token")

// BeforeConnect returns a hook for pgxpool.Config.BeforeConnect (or
// stdlib.OptionBeforeConnect) that authenticates every new connection with
// a token from src.
//
// The token is chosen per connection attempt, for the host:port actually
// being dialled: with a multi-host connection string pgx tries each host in
// turn (and for sslmode=prefer, each host twice), and each attempt gets the
// token for its own host. The user is the connection's user.
//
// When a server refuses the token with SQLSTATE 28000 (what RDS sends) the
// token is invalidated and the same host is tried once more with a freshly
// minted token, within the same connect; never more than once per host.
// pgx ends a connect at 28P01 (libpq does the same), so on 28P01 the token
// is invalidated and the next connect mints a fresh one.
//
// With Options.DialAddress every connection goes to that address (a
// tunnel or proxy) while tokens and TLS stay for the connection string's
// host and port.
//
// A cancel request for an established connection (pgconn.CancelRequest,
// sent when a query's context is cancelled, by pgx's default context
// watcher as well as by pgconn.CancelRequestContextWatcherHandler) goes
// through the same dialer to the address the connection uses; it carries
// only the connection's cancel key, so it neither mints a token nor
// counts as a connection attempt.
//
// Before anything is sent, a connection whose configuration allows an
// attempt without TLS fails with ErrInsecureTransport, and one with TLS
// that does not verify the server's certificate (sslmode=require) with
// ErrUnverifiedTLS, unless src was built with Options.AllowInsecure or
// Options.AllowUnverifiedTLS.
func BeforeConnect(src *TokenSource) func(context.Context, *pgx.ConnConfig) error {
	return func(ctx context.Context, cc *pgx.ConnConfig) error {
		return src.prepare(cc)
	}
}

type target struct {
	host  string
	port  uint16
	tls   *tls.Config
	retry bool // the spare attempt with a fresh token
}

type hostKey struct {
	host string
	port uint16
}

type addrItem struct {
	network, address string
	target           int
}

// attempt tracks one connect (pgx's copy of the config lives as long as
// the connection; so does this).
type attempt struct {
	src     *TokenSource
	user    string
	targets []target

	mu        sync.Mutex
	lookedUp  map[int][]string // target index -> addresses from LookupFunc
	resolved  map[string][]string
	lookupPos int
	flat      []addrItem
	dialPos   int
	cur       int // target of the attempt in progress, -1 before the first
	curTok    Token
	refused   map[hostKey]bool
	retried   map[hostKey]bool
	connected bool
	// live: the server has accepted the session (ReadyForQuery). Any later
	// dial is pgconn's CancelRequest for it, not a connection attempt.
	live bool
}

func (s *TokenSource) prepare(cc *pgx.ConnConfig) error {
	if cc == nil {
		return errors.New("rdsauth: nil pgx.ConnConfig")
	}
	targets := []target{{host: cc.Host, port: cc.Port, tls: cc.TLSConfig}}
	for _, fb := range cc.Fallbacks {
		targets = append(targets, target{host: fb.Host, port: fb.Port, tls: fb.TLSConfig})
	}
	if err := checkTLS(targets, s.opts); err != nil {
		return err
	}
	if err := checkDialAddress(targets, s.opts.DialAddress); err != nil {
		return err
	}
	// Each host is followed by a spare attempt that only dials when that
	// host refused the token.
	expanded := make([]target, 0, 2*len(targets))
	for _, t := range targets {
		expanded = append(expanded, t)
		if !isUnixSocket(t.host) {
			r := t
			r.retry = true
			expanded = append(expanded, r)
		}
	}
	a := &attempt{
		src: s, user: cc.User, targets: expanded, cur: -1,
		lookedUp: map[int][]string{}, resolved: map[string][]string{}, refused: map[hostKey]bool{}, retried: map[hostKey]bool{},
	}
	cc.Host, cc.Port, cc.TLSConfig = expanded[0].host, expanded[0].port, expanded[0].tls
	fbs := make([]*pgconn.FallbackConfig, 0, len(expanded)-1)
	for _, t := range expanded[1:] {
		fbs = append(fbs, &pgconn.FallbackConfig{Host: t.host, Port: t.port, TLSConfig: t.tls})
	}
	cc.Fallbacks = fbs
	cc.Password = ""

	lookup := cc.LookupFunc
	if lookup == nil {
		lookup = net.DefaultResolver.LookupHost
	}
	if s.opts.DialAddress != "" {
		// The endpoint's own address is never dialled, and its name may
		// not resolve where the tunnel starts.
		lookup = func(_ context.Context, host string) ([]string, error) { return []string{host}, nil }
	}
	cc.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		// The spare attempts repeat their host: resolve each name once.
		a.mu.Lock()
		addrs, ok := a.resolved[host]
		a.mu.Unlock()
		var err error
		if !ok {
			addrs, err = lookup(ctx, host)
		}
		a.recordLookup(host, addrs, err)
		return addrs, err
	}
	dial := cc.DialFunc
	if dial == nil {
		d := &net.Dialer{KeepAlive: 5 * 60e9}
		dial = d.DialContext
	}
	cc.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		if a.isLive() {
			// pgconn.CancelRequest dials the address the session is
			// connected to and sends only the session's cancel key: it
			// needs no token and is no connection attempt.
			return dial(ctx, network, addr)
		}
		if err := a.beginAttempt(network, addr); err != nil {
			return nil, err
		}
		if s.opts.DialAddress != "" {
			return dial(ctx, "tcp", s.opts.DialAddress)
		}
		return dial(ctx, network, addr)
	}
	afterNet := cc.AfterNetConnect
	cc.AfterNetConnect = func(ctx context.Context, pc *pgconn.Config, conn net.Conn) (net.Conn, error) {
		if afterNet != nil {
			var err error
			if conn, err = afterNet(ctx, pc, conn); err != nil {
				return conn, err
			}
		}
		tok, err := a.token(ctx)
		if err != nil {
			return conn, err
		}
		pc.Password = tok.Value()
		return conn, nil
	}
	onErr := cc.OnPgError
	cc.OnPgError = func(pc *pgconn.PgConn, pgErr *pgconn.PgError) bool {
		a.refusedBy(pgErr)
		if onErr != nil {
			return onErr(pc, pgErr)
		}
		return true
	}
	validate := cc.ValidateConnect
	cc.ValidateConnect = func(ctx context.Context, pc *pgconn.PgConn) error {
		// The session is up: a query the validator runs may be cancelled.
		a.setLive(true)
		if validate != nil {
			if err := validate(ctx, pc); err != nil {
				// pgx closes this session and may dial the next host.
				a.setLive(false)
				return err
			}
		}
		a.mu.Lock()
		a.connected = true
		a.mu.Unlock()
		return nil
	}
	return nil
}

func isUnixSocket(host string) bool {
	return len(host) > 0 && host[0] == '/'
}

func (a *attempt) isLive() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.live
}

func (a *attempt) setLive(v bool) {
	a.mu.Lock()
	a.live = v
	a.mu.Unlock()
}

// recordLookup matches pgconn's sequential lookups (one per non-socket
// target, in order) to targets.
func (a *attempt) recordLookup(host string, addrs []string, err error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for i := a.lookupPos; i < len(a.targets); i++ {
		if a.targets[i].host == host && !isUnixSocket(host) {
			a.lookupPos = i + 1
			if err == nil {
				a.lookedUp[i] = addrs
				a.resolved[host] = addrs
			}
			return
		}
	}
}

// buildFlat lists the addresses pgconn will dial, in its order.
func (a *attempt) buildFlat() {
	for i, t := range a.targets {
		if isUnixSocket(t.host) {
			n, ad := pgconn.NetworkAddress(t.host, t.port)
			a.flat = append(a.flat, addrItem{n, ad, i})
			continue
		}
		for _, ip := range a.lookedUp[i] {
			if h, p, err := net.SplitHostPort(ip); err == nil {
				port, err := strconv.ParseUint(p, 10, 16)
				if err != nil {
					continue
				}
				n, ad := pgconn.NetworkAddress(h, uint16(port))
				a.flat = append(a.flat, addrItem{n, ad, i})
				continue
			}
			n, ad := pgconn.NetworkAddress(ip, t.port)
			a.flat = append(a.flat, addrItem{n, ad, i})
		}
	}
}

// beginAttempt identifies the target being dialled and decides whether a
// spare attempt runs.
func (a *attempt) beginAttempt(network, addr string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.flat == nil {
		a.buildFlat()
	}
	idx := -1
	for i := a.dialPos; i < len(a.flat); i++ {
		if a.flat[i].address == addr && a.flat[i].network == network {
			idx = i
			break
		}
	}
	if idx < 0 { // a redial of an earlier address (pgx's not-preferred fallback)
		for i := 0; i < len(a.flat); i++ {
			if a.flat[i].address == addr && a.flat[i].network == network {
				idx = i
				break
			}
		}
	}
	cur := 0
	if idx >= 0 {
		a.dialPos = idx + 1
		cur = a.flat[idx].target
	}
	a.cur = cur
	a.curTok = Token{}
	t := a.targets[cur]
	k := hostKey{t.host, t.port}
	if a.refused[k] && !a.retried[k] {
		a.retried[k] = true // this attempt uses the fresh token
		return nil
	}
	if t.retry {
		return errRetryNotNeeded
	}
	return nil
}

func (a *attempt) token(ctx context.Context) (Token, error) {
	a.mu.Lock()
	t := a.targets[max(a.cur, 0)]
	a.mu.Unlock()
	tok, err := a.src.TokenFor(ctx, t.host, t.port, a.user)
	if err != nil {
		return Token{}, err
	}
	a.mu.Lock()
	a.curTok = tok
	a.mu.Unlock()
	return tok, nil
}

// refusedBy invalidates the token a server refused during the login, at
// most once per host per connect.
func (a *attempt) refusedBy(pgErr *pgconn.PgError) {
	if pgErr == nil || (pgErr.Code != codeInvalidPassword && pgErr.Code != codeInvalidAuthorization) {
		return
	}
	a.mu.Lock()
	if a.connected || a.cur < 0 || a.curTok.IsZero() {
		a.mu.Unlock()
		return
	}
	t := a.targets[a.cur]
	k := hostKey{t.host, t.port}
	tok := a.curTok
	first := !a.refused[k]
	a.refused[k] = true
	a.mu.Unlock()
	if first {
		a.src.Invalidate(tok)
	}
}

// ConfigurePool prepares poolCfg to authenticate with RDS IAM tokens
// signed with cfg's credentials, and returns the token source it installed
// (callers may share it or read its Mints). It
//
//   - requires verified TLS on every host: sslmode=verify-full or
//     verify-ca, or Options.RootCAFile (ErrInsecureTransport for sslmode
//     disable, allow or prefer unless Options.AllowInsecure;
//     ErrUnverifiedTLS for sslmode=require unless
//     Options.AllowUnverifiedTLS);
//   - with Options.RootCAFile, verifies every host's certificate and name
//     against that bundle;
//   - sets MaxConnLifetime (see Options.MaxConnLifetime);
//   - chains BeforeConnect after any hook already set.
//
// The region of each host is resolved now, so a wrong or missing region
// fails here, not at the first connection.
func ConfigurePool(poolCfg *pgxpool.Config, cfg aws.Config, optFns ...func(*Options)) (*TokenSource, error) {
	if poolCfg == nil || poolCfg.ConnConfig == nil {
		return nil, errors.New("rdsauth: nil pgxpool.Config; build it with pgxpool.ParseConfig")
	}
	src, o, err := configureConn(poolCfg.ConnConfig, cfg, optFns)
	if err != nil {
		return nil, err
	}
	switch {
	case o.MaxConnLifetime == 0:
		poolCfg.MaxConnLifetime = defaultMaxConnLifetime
		poolCfg.MaxConnLifetimeJitter = defaultMaxConnLifetimeJitter
	case o.MaxConnLifetime > 0:
		poolCfg.MaxConnLifetime = o.MaxConnLifetime
	}
	prev := poolCfg.BeforeConnect
	hook := BeforeConnect(src)
	poolCfg.BeforeConnect = func(ctx context.Context, cc *pgx.ConnConfig) error {
		if prev != nil {
			if err := prev(ctx, cc); err != nil {
				return err
			}
		}
		return hook(ctx, cc)
	}
	return src, nil
}

// NewPool parses connString (pgx syntax, keyword/value or URL), configures
// it with ConfigurePool and opens the pool. Closing the pool is all the
// cleanup needed: the token source it installs runs no goroutine and mints
// only when a connection opens; its timers end with its tokens. Use
// ConfigurePool instead to keep the TokenSource (its Stats, Close).
func NewPool(ctx context.Context, connString string, cfg aws.Config, optFns ...func(*Options)) (*pgxpool.Pool, error) {
	poolCfg, err := pgxpool.ParseConfig(connString)
	if err != nil {
		return nil, fmt.Errorf("rdsauth: parsing the connection string: %w", err)
	}
	if _, err := ConfigurePool(poolCfg, cfg, optFns...); err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, poolCfg)
	if err != nil {
		return nil, fmt.Errorf("rdsauth: %w", err)
	}
	return pool, nil
}

// configureConn applies the TLS policy to cc and builds the token source.
func configureConn(cc *pgx.ConnConfig, cfg aws.Config, optFns []func(*Options)) (*TokenSource, Options, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.RootCAFile != "" {
		if err := verifyFull(cc, o.RootCAFile); err != nil {
			return nil, o, err
		}
	}
	targets := []target{{host: cc.Host, port: cc.Port, tls: cc.TLSConfig}}
	for _, fb := range cc.Fallbacks {
		targets = append(targets, target{host: fb.Host, port: fb.Port, tls: fb.TLSConfig})
	}
	if err := checkTLS(targets, o); err != nil {
		return nil, o, err
	}
	if err := checkDialAddress(targets, o.DialAddress); err != nil {
		return nil, o, err
	}
	withSession := append(append([]func(*Options){}, optFns...), func(o *Options) { o.fallbackRegion = cfg.Region })
	src, err := newTokenSource(cc.Host, cc.Port, cc.User, cfg.Credentials, withSession...)
	if err != nil {
		return nil, o, err
	}
	for _, fb := range cc.Fallbacks {
		if isUnixSocket(fb.Host) {
			continue
		}
		if _, err := src.entryFor(cacheKey{host: fb.Host, port: fb.Port, user: cc.User}); err != nil {
			src.Close()
			return nil, o, err
		}
	}
	return src, o, nil
}
