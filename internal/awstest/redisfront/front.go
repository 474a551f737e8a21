// Package redisfront is the ElastiCache stand-in of irsakit's tests: a TLS
// RESP2/RESP3 front on 127.0.0.1 that authenticates connections the way an
// IAM-enabled ElastiCache cache does, then relays them to a real
// redis-server (started by internal/awstest/procs).
//
// Until a connection authenticates, every command but AUTH, HELLO … AUTH,
// RESET and QUIT is refused with "-NOAUTH Authentication required.". Every
// AUTH user token and HELLO ver AUTH user token — the first and each later
// one on a live connection — is verified as an ElastiCache IAM
// authentication token by [VerifyToken] (SigV4 signature via the sigv4
// registry, service, region, host = cache name, Action=connect, User,
// ResourceType for serverless caches, 900 s window, IAM allowing
// elasticache:Connect on the cache and the user); failures are answered
// "-WRONGPASS invalid username-password pair or user is disabled.". The
// AUTH itself never reaches the real server (it has no such user); HELLO is
// relayed without its AUTH part.
//
// Like ElastiCache, an IAM-authenticated connection is cut after a fixed life
// ([Options.ConnLife], 12 hours by default, seconds in tests) unless a
// successful re-authentication extended it.
//
// Once a connection has a backend, every reply — including the answers to
// AUTH and to refused commands — comes from the real server in command
// order: the front rewrites AUTH to "AUTH default x" (+OK), a rejected one to
// an AUTH the server refuses with the same WRONGPASS text, and a refused
// command to an EVAL returning the NOAUTH error. Pipelined replies therefore
// never overtake each other.
package redisfront

import (
	"bufio"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

// The error replies ElastiCache sends.
const (
	NoAuthReply    = "-NOAUTH Authentication required."
	WrongPassReply = "-WRONGPASS invalid username-password pair or user is disabled."
	helloNoAuth    = "-NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time"
)

// handshakeTimeout bounds a client's TLS handshake and the front's dial of
// the real server. Generous: tests open hundreds of connections at once on
// a loaded machine, and a front that gives up before the client does turns
// load into spurious failures ("broken pipe", "backend unavailable").
const handshakeTimeout = 60 * time.Second

// Options configure a Front.
type Options struct {
	// Registry verifies token signatures. Required.
	Registry *sigv4.Registry
	// IAM authorises elasticache:Connect. Required.
	IAM *iam.IAM
	// CacheName is the replication group id or serverless cache name tokens
	// must be signed for. Required.
	CacheName string
	// Serverless makes the front a serverless cache: tokens must carry
	// ResourceType=ServerlessCache and IAM is asked about the
	// serverlesscache ARN.
	Serverless bool
	// Service is the signing name. Default "elasticache" ("memorydb" makes a
	// MemoryDB stand-in).
	Service string
	// Region tokens must be scoped to. Default us-east-1.
	Region string
	// Account owning the cache. Default: IAM.Account().
	Account string
	// Users are the IAM-enabled user ids (user id = user name).
	Users []string
	// PasswordUsers are users authenticated by password instead (map user →
	// password), for comparing IAM clients with password clients.
	PasswordUsers map[string]string
	// ConnLife is how long an IAM-authenticated connection lives unless
	// re-authenticated: ElastiCache's 12 hours (the default); seconds in tests.
	ConnLife time.Duration
	// CA signs the front's certificate. Default: a new CA. Fronts of one
	// cluster share one.
	CA *CA
	// Clock times connection lives. Default: Registry.Clock().
	Clock clock.Clock
}

// Stats are a front's counters.
type Stats struct {
	Accepted      int64 // TLS connections accepted
	Live          int64 // connections open now
	AuthOK        int64 // successful IAM authentications (first and re-auth)
	Reauths       int64 // successful IAM authentications on an authenticated connection
	AuthFailed    int64 // rejected AUTH/HELLO AUTH attempts
	PasswordAuths int64 // successful password authentications
	NoAuth        int64 // commands refused before authentication
	Cuts          int64 // connections closed at the end of their life
	Forwarded     int64 // commands relayed to the real server
	// Rejected counts rejections by reason (see the Reason constants).
	Rejected map[string]int64
}

// Front is a running front. It is safe for concurrent use.
type Front struct {
	o       Options
	check   Check
	clk     clock.Clock
	ln      net.Listener
	tlsConf *tls.Config
	backend string
	life    atomic.Int64

	accepted, live, authOK, reauths, authFailed, pwAuths, noAuth, cuts, forwarded atomic.Int64

	mu       sync.Mutex
	rejected map[string]int64
	conns    map[*conn]struct{}
	closed   bool
	wg       sync.WaitGroup
	users    map[string]bool
}

// Listen validates o and listens on 127.0.0.1 on a random port; call
// [Front.Serve] to start relaying.
func Listen(o Options) (*Front, error) {
	if o.Registry == nil || o.IAM == nil {
		return nil, errors.New("redisfront: Options.Registry and Options.IAM are required")
	}
	if o.CacheName == "" {
		return nil, errors.New("redisfront: Options.CacheName is required")
	}
	if len(o.Users) == 0 && len(o.PasswordUsers) == 0 {
		return nil, errors.New("redisfront: no Users or PasswordUsers: nobody could connect")
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Account == "" {
		o.Account = o.IAM.Account()
	}
	if o.ConnLife <= 0 {
		o.ConnLife = 12 * time.Hour
	}
	if o.Clock == nil {
		o.Clock = o.Registry.Clock()
	}
	if o.CA == nil {
		ca, err := NewCA()
		if err != nil {
			return nil, err
		}
		o.CA = ca
	}
	cert, err := o.CA.issue()
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("redisfront: listen: %w", err)
	}
	f := &Front{
		o:        o,
		check:    Check{Service: o.Service, Region: o.Region, Account: o.Account, CacheName: o.CacheName, Serverless: o.Serverless},
		clk:      o.Clock,
		ln:       ln,
		tlsConf:  &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12},
		rejected: map[string]int64{},
		conns:    map[*conn]struct{}{},
		users:    map[string]bool{},
	}
	for _, u := range o.Users {
		f.users[u] = true
	}
	f.life.Store(int64(o.ConnLife))
	return f, nil
}

// Start listens and relays to the real server at backend.
func Start(backend string, o Options) (*Front, error) {
	f, err := Listen(o)
	if err != nil {
		return nil, err
	}
	f.Serve(backend)
	return f, nil
}

// Serve starts accepting connections and relaying them to backend, the real
// server's private address. It returns at once.
func (f *Front) Serve(backend string) {
	f.backend = backend
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := f.ln.Accept()
			if err != nil {
				return
			}
			f.accepted.Add(1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				f.handle(c)
			}()
		}
	}()
}

// Addr is the front's address, 127.0.0.1:PORT.
func (f *Front) Addr() string { return f.ln.Addr().String() }

// Port is the front's port.
func (f *Front) Port() int { return f.ln.Addr().(*net.TCPAddr).Port }

// CA returns the CA that signed the front's certificate.
func (f *Front) CA() *CA { return f.o.CA }

// CAPEM returns the CA certificate (PEM) clients must trust.
func (f *Front) CAPEM() []byte { return f.o.CA.PEM() }

// CertPool returns a pool trusting the front's CA.
func (f *Front) CertPool() *x509.CertPool { return f.o.CA.Pool() }

// ClientTLS returns a client TLS configuration trusting the front.
func (f *Front) ClientTLS() *tls.Config {
	return &tls.Config{RootCAs: f.CertPool(), ServerName: "127.0.0.1", MinVersion: tls.VersionTLS12}
}

// Check returns what the front verifies tokens against.
func (f *Front) Check() Check { return f.check }

// CacheARN and UserARN are the resources a role's policy must allow.
func (f *Front) CacheARN() string { return f.check.CacheARN() }

// UserARN is the ARN of an ElastiCache user of the front's cache.
func (f *Front) UserARN(userID string) string { return f.check.UserARN(userID) }

// Verify verifies token for user as the front does on AUTH.
func (f *Front) Verify(user, token string) error {
	if !f.users[user] {
		return reject(ReasonUnknownUser, "no IAM-enabled user %q on cache %q", user, f.o.CacheName)
	}
	_, err := VerifyToken(f.o.Registry, f.o.IAM, f.check, user, token)
	return err
}

// SetConnLife changes the life given to connections from their next
// successful authentication on.
func (f *Front) SetConnLife(d time.Duration) { f.life.Store(int64(d)) }

// Stats returns a snapshot of the counters.
func (f *Front) Stats() Stats {
	s := Stats{
		Accepted: f.accepted.Load(), Live: f.live.Load(), AuthOK: f.authOK.Load(), Reauths: f.reauths.Load(),
		AuthFailed: f.authFailed.Load(), PasswordAuths: f.pwAuths.Load(), NoAuth: f.noAuth.Load(),
		Cuts: f.cuts.Load(), Forwarded: f.forwarded.Load(), Rejected: map[string]int64{},
	}
	f.mu.Lock()
	for k, v := range f.rejected {
		s.Rejected[k] = v
	}
	f.mu.Unlock()
	return s
}

// CloseConns closes every open client connection (as a failover would).
func (f *Front) CloseConns() {
	f.mu.Lock()
	cs := make([]*conn, 0, len(f.conns))
	for c := range f.conns {
		cs = append(cs, c)
	}
	f.mu.Unlock()
	for _, c := range cs {
		c.close()
	}
}

// Close stops listening, closes every connection and waits for them.
func (f *Front) Close() error {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	err := f.ln.Close()
	f.CloseConns()
	f.wg.Wait()
	return err
}

func (f *Front) rejectedFor(reason string) {
	f.authFailed.Add(1)
	f.mu.Lock()
	f.rejected[reason]++
	f.mu.Unlock()
}

type conn struct {
	f      *Front
	client *tls.Conn
	rd     *bufio.Reader
	cw     *bufio.Writer // local replies, only before a backend exists

	backend net.Conn
	bw      *bufio.Writer

	authed bool
	iam    bool

	mu        sync.Mutex
	timer     clock.Timer
	closeOnce sync.Once
	done      chan struct{}
}

func (f *Front) handle(raw net.Conn) {
	tc := tls.Server(raw, f.tlsConf)
	c := &conn{f: f, client: tc, done: make(chan struct{})}
	f.mu.Lock()
	if f.closed {
		f.mu.Unlock()
		raw.Close()
		return
	}
	f.conns[c] = struct{}{}
	f.mu.Unlock()
	f.live.Add(1)
	defer func() {
		c.close()
		f.mu.Lock()
		delete(f.conns, c)
		f.mu.Unlock()
		f.live.Add(-1)
	}()
	_ = raw.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := tc.Handshake(); err != nil {
		return
	}
	_ = raw.SetDeadline(time.Time{})
	c.rd = bufio.NewReaderSize(tc, 32<<10)
	c.cw = bufio.NewWriter(tc)
	for {
		args, err := readCommand(c.rd)
		if err != nil {
			if errors.Is(err, errProtocol) {
				c.localOrVia("-ERR Protocol error", nil)
				c.flush()
			}
			return
		}
		if len(args) == 0 {
			continue
		}
		if quit := c.dispatch(args); quit {
			c.flush()
			if c.backend == nil {
				return
			}
			// The server closes after answering QUIT; the relay ends then.
			<-c.done
			return
		}
		if c.rd.Buffered() == 0 {
			if err := c.flush(); err != nil {
				return
			}
		}
	}
}

func (c *conn) flush() error {
	if c.bw != nil {
		return c.bw.Flush()
	}
	return c.cw.Flush()
}

func (c *conn) close() {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		if c.timer != nil {
			c.timer.Stop()
		}
		b := c.backend
		close(c.done)
		c.mu.Unlock()
		c.client.Close()
		if b != nil {
			b.Close()
		}
	})
}

// localOrVia answers with local before the connection has a backend, else by
// sending via to the real server (whose reply is the same), so that replies
// stay in command order.
func (c *conn) localOrVia(local string, via [][]byte) {
	if c.backend == nil || via == nil {
		if c.backend == nil {
			c.cw.WriteString(local)
			c.cw.WriteString("\r\n")
			return
		}
		via = evalError(local)
	}
	c.forward(via)
}

func evalError(reply string) [][]byte {
	msg := strings.TrimPrefix(reply, "-")
	return strArgs("EVAL", "return redis.error_reply('"+strings.ReplaceAll(msg, "'", "\\'")+"')", "0")
}

func (c *conn) forward(args [][]byte) {
	if c.backend == nil {
		if err := c.dialBackend(); err != nil {
			c.cw.WriteString("-ERR redisfront: backend unavailable\r\n")
			return
		}
	}
	c.f.forwarded.Add(1)
	writeCommand(c.bw, args...)
}

func (c *conn) dialBackend() error {
	d := net.Dialer{Timeout: handshakeTimeout}
	b, err := d.Dial("tcp", c.f.backend)
	if err != nil {
		return err
	}
	// Local replies written so far go out before the server's.
	if err := c.cw.Flush(); err != nil {
		b.Close()
		return err
	}
	c.mu.Lock()
	select {
	case <-c.done:
		c.mu.Unlock()
		b.Close()
		return net.ErrClosed
	default:
	}
	c.backend = b
	c.mu.Unlock()
	c.bw = bufio.NewWriterSize(b, 32<<10)
	go func() {
		_, _ = io.Copy(c.client, b)
		c.close()
	}()
	return nil
}

var (
	okViaServer     = strArgs("AUTH", "default", "x")
	wrongViaServer  = strArgs("AUTH", "irsakit-redisfront-rejected", "x")
	noAuthViaServer = evalError(NoAuthReply)
)

// dispatch handles one command; it reports whether the connection ends.
func (c *conn) dispatch(args [][]byte) (quit bool) {
	name := strings.ToLower(string(args[0]))
	switch name {
	case "auth":
		var user, secret string
		switch len(args) {
		case 2:
			user, secret = "default", string(args[1])
		case 3:
			user, secret = string(args[1]), string(args[2])
		default:
			c.localOrVia("-ERR wrong number of arguments for 'auth' command", nil)
			return false
		}
		if c.authenticate(user, secret) {
			c.localOrVia("+OK", okViaServer)
		} else {
			c.localOrVia(WrongPassReply, wrongViaServer)
		}
	case "hello":
		c.hello(args)
	case "quit":
		c.localOrVia("+OK", strArgs("QUIT"))
		return true
	case "reset":
		c.localOrVia("+RESET", strArgs("RESET"))
		c.authed, c.iam = false, false
		c.setLife(0)
	default:
		if !c.authed {
			c.f.noAuth.Add(1)
			c.localOrVia(NoAuthReply, noAuthViaServer)
			return false
		}
		c.forward(args)
	}
	return false
}

func (c *conn) hello(args [][]byte) {
	var (
		user, secret string
		hasAuth      bool
		rest         = [][]byte{args[0]}
	)
	for i := 1; i < len(args); i++ {
		switch strings.ToLower(string(args[i])) {
		case "auth":
			if i+2 >= len(args) {
				c.localOrVia("-ERR Syntax error in HELLO option 'auth'", nil)
				return
			}
			user, secret, hasAuth = string(args[i+1]), string(args[i+2]), true
			i += 2
		case "setname":
			if i+1 >= len(args) {
				c.localOrVia("-ERR Syntax error in HELLO option 'setname'", nil)
				return
			}
			rest = append(rest, args[i], args[i+1])
			i++
		default:
			rest = append(rest, args[i])
		}
	}
	if hasAuth {
		if !c.authenticate(user, secret) {
			c.localOrVia(WrongPassReply, wrongViaServer)
			return
		}
	} else if !c.authed {
		c.f.noAuth.Add(1)
		c.localOrVia(helloNoAuth, evalError(helloNoAuth))
		return
	}
	c.forward(rest)
}

// authenticate verifies user's secret; on success the connection is (re-)
// authenticated and, for IAM users, its life starts again.
func (c *conn) authenticate(user, secret string) bool {
	f := c.f
	if pw, ok := f.o.PasswordUsers[user]; ok {
		if subtle.ConstantTimeCompare([]byte(pw), []byte(secret)) != 1 {
			f.rejectedFor(ReasonPassword)
			return false
		}
		f.pwAuths.Add(1)
		c.authed, c.iam = true, false
		c.setLife(0)
		return true
	}
	if err := f.Verify(user, secret); err != nil {
		var re *RejectError
		reason := "unknown"
		if errors.As(err, &re) {
			reason = re.Reason
		}
		f.rejectedFor(reason)
		return false
	}
	f.authOK.Add(1)
	if c.authed {
		f.reauths.Add(1)
	}
	c.authed, c.iam = true, true
	c.setLife(time.Duration(f.life.Load()))
	return true
}

// setLife (re)starts the connection's life; 0 means unlimited.
func (c *conn) setLife(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.timer != nil {
		c.timer.Stop()
		c.timer = nil
	}
	if d <= 0 {
		return
	}
	c.timer = c.f.clk.AfterFunc(d, func() {
		select {
		case <-c.done:
			return
		default:
		}
		c.f.cuts.Add(1)
		c.close()
	})
}

// String describes the front without secrets.
func (f *Front) String() string {
	return "redisfront(" + f.o.CacheName + " at " + f.Addr() + ", life " + time.Duration(f.life.Load()).String() + ", serverless " + strconv.FormatBool(f.o.Serverless) + ")"
}
