// Package pgfront is the RDS stand-in of the tests: a TLS front, speaking
// the PostgreSQL wire protocol with pgx's pgproto3, that authenticates a
// client the way an RDS instance with IAM database authentication does and
// then relays the session to a real PostgreSQL (which trusts the front).
//
// For an IAM user the front demands a cleartext password and verifies it as
// an RDS IAM token: a SigV4 presigned URL for service rds-db, Action=connect,
// DBUser equal to the startup user, signed for the host:port the client
// dialled and for the configured region, X-Amz-Expires at most 900 s and
// X-Amz-Date within its window, signed with credentials the sigv4 registry
// issued (session token present and matching, not expired), and allowed by
// the mini-IAM to perform rds-db:connect on
// arn:PARTITION:rds-db:REGION:ACCOUNT:dbuser:RESOURCEID/USER. Any failure
// gets the answer RDS sends, `FATAL: PAM authentication failed for user
// "..."` (SQLSTATE 28000), and the connection is closed.
//
// A startup without TLS is refused as an RDS instance with rds.force_ssl
// refuses it. Users listed in [Config.Passwords] authenticate with a plain
// password instead (the latency baseline).
//
// With [Config.DSQL] the front stands in for an Aurora DSQL cluster
// endpoint (ID.dsql.REGION.on.aws) instead: the client must send SNI
// naming the endpoint, and the password must be a SigV4 presigned URL for
// service dsql, Action=DbConnectAdmin for the admin role and
// Action=DbConnect for any other, signed for the endpoint host without a
// port, X-Amz-Expires at most a week, by credentials the registry issued,
// and allowed by the mini-IAM to perform that action on
// arn:PARTITION:dsql:REGION:ACCOUNT:cluster/ID. A refused token gets
// `FATAL: IAM authentication failed for user "..."` (the text AWS
// documents; the SQLSTATE, 28P01, is what clients report, AWS does not
// document one).
//
// Like RDS Proxy, the front hands each client a BackendKeyData of its own
// (a process id and secret key that are not the server's) and relays a
// CancelRequest carrying that key to the server with the server's key; a
// CancelRequest with an unknown key is dropped, as PostgreSQL drops it.
package pgfront

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/partition"
)

// MaxTokenLifetime is the longest X-Amz-Expires RDS accepts in a token.
const MaxTokenLifetime = 900 * time.Second

// MaxDSQLTokenLifetime is the longest X-Amz-Expires Aurora DSQL accepts.
const MaxDSQLTokenLifetime = 7 * 24 * time.Hour

// DefaultClusterID is the Aurora DSQL cluster a DSQL front stands in for
// unless Config.ClusterID says otherwise.
const DefaultClusterID = "irsakitfront0dsql000000000"

// Config describes a front.
type Config struct {
	// Backend is the real server: an absolute unix socket path
	// (…/.s.PGSQL.PORT) or a host:port. Required.
	Backend string
	// Registry verifies token signatures and knows the issued credentials.
	// Required for IAM users.
	Registry *sigv4.Registry
	// IAM authorises rds-db:connect. Required for IAM users.
	IAM *iam.IAM
	// Region the instance lives in. Default us-east-1.
	Region string
	// Account owning the instance. Default: IAM's account.
	Account string
	// ResourceID is the instance's DbiResourceId (or the cluster's
	// resource id) used in the rds-db ARN. Default "db-IRSAKITFRONT0000000000".
	ResourceID string
	// Hostnames are the DNS names (besides the listening IP) clients may
	// dial the front as; a client's TLS SNI picks among them. Default
	// "localhost"; for a DSQL front, the cluster endpoint
	// CLUSTERID.dsql.REGION.on.aws.
	Hostnames []string
	// DSQL makes the front an Aurora DSQL cluster endpoint instead of an
	// RDS instance (see the package documentation).
	DSQL bool
	// ClusterID is the DSQL cluster's identifier, used in its ARN and
	// default endpoint name. Default DefaultClusterID.
	ClusterID string
	// Passwords maps users that log in with a plain password (no IAM) to
	// their password.
	Passwords map[string]string
	// Addr to listen on. Default 127.0.0.1:0 (a random port, kept across
	// Stop/Start).
	Addr string
	// OnAuth, if set, is called after each authentication decision.
	OnAuth func(AuthEvent)
}

// AuthEvent reports one authentication decision. It holds no secret.
type AuthEvent struct {
	User string
	// Host is the host:port the token had to be signed for.
	Host string
	IAM  bool
	// SignedAt and AccessKeyID describe an IAM token that verified.
	SignedAt    time.Time
	AccessKeyID string
	// Err is why the login was refused (nil when accepted).
	Err error
}

// Front is a running front. It is safe for concurrent use.
type Front struct {
	cfg     Config
	dir     string
	caPEM   []byte
	tlsConf *tls.Config
	port    int

	mu    sync.Mutex
	ln    net.Listener
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup

	keysMu sync.Mutex
	// keys maps the cancel key the front gave a client to the server's.
	keys map[cancelKey]pgproto3.BackendKeyData

	accepted   atomic.Int64
	rejected   atomic.Int64
	cancelsIn  atomic.Int64
	cancelsOut atomic.Int64
}

// Start generates a CA and a server certificate for 127.0.0.1, ::1 and
// cfg.Hostnames, and starts listening.
func Start(cfg Config) (*Front, error) {
	if cfg.Backend == "" {
		return nil, errors.New("pgfront: Config.Backend is required")
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Account == "" && cfg.IAM != nil {
		cfg.Account = cfg.IAM.Account()
	}
	if cfg.Account == "" {
		cfg.Account = sigv4.DefaultAccount
	}
	if cfg.ResourceID == "" {
		cfg.ResourceID = "db-IRSAKITFRONT0000000000"
	}
	if cfg.DSQL {
		if len(cfg.Passwords) > 0 {
			return nil, errors.New("pgfront: Config.Passwords: Aurora DSQL has no password users")
		}
		if cfg.ClusterID == "" {
			cfg.ClusterID = DefaultClusterID
		}
		if cfg.Hostnames == nil {
			cfg.Hostnames = []string{cfg.ClusterID + ".dsql." + cfg.Region + ".on.aws"}
		}
	}
	if cfg.Hostnames == nil {
		cfg.Hostnames = []string{"localhost"}
	}
	if cfg.Addr == "" {
		cfg.Addr = "127.0.0.1:0"
	}
	dir, err := os.MkdirTemp("", "irsakit-pgfront-")
	if err != nil {
		return nil, fmt.Errorf("pgfront: %w", err)
	}
	f := &Front{cfg: cfg, dir: dir, conns: map[net.Conn]struct{}{}, keys: map[cancelKey]pgproto3.BackendKeyData{}}
	if err := f.makeCerts(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := f.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return f, nil
}

func (f *Front) makeCerts() error {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "irsakit test RDS CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.IPv6loopback},
		DNSNames:     f.cfg.Hostnames,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	f.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER})
	if err := os.WriteFile(f.CAFile(), f.caPEM, 0o644); err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	f.tlsConf = &tls.Config{
		Certificates: []tls.Certificate{{Certificate: [][]byte{der, caDER}, PrivateKey: key}},
		MinVersion:   tls.VersionTLS12,
	}
	return nil
}

// CAFile is the path of the PEM CA bundle that verifies the front's
// certificate (sslrootcert for sslmode=verify-full).
func (f *Front) CAFile() string { return filepath.Join(f.dir, "rds-ca.pem") }

// CAPEM returns the CA certificate in PEM form.
func (f *Front) CAPEM() []byte { return append([]byte(nil), f.caPEM...) }

// Port is the listening port (stable across Stop/Start).
func (f *Front) Port() int { return f.port }

// Addr is 127.0.0.1:PORT (or the configured IP).
func (f *Front) Addr() string {
	h, _, _ := net.SplitHostPort(f.cfg.Addr)
	return net.JoinHostPort(h, strconv.Itoa(f.port))
}

// Region, Account and ResourceID describe the instance for tokens and
// policies.
func (f *Front) Region() string     { return f.cfg.Region }
func (f *Front) Account() string    { return f.cfg.Account }
func (f *Front) ResourceID() string { return f.cfg.ResourceID }

// Partition is the ARN partition of the front's region.
func (f *Front) Partition() string { return partition.IDOf(f.cfg.Region) }

// UserARN is the rds-db ARN an IAM policy must allow for user.
func (f *Front) UserARN(user string) string {
	return fmt.Sprintf("arn:%s:rds-db:%s:%s:dbuser:%s/%s", f.Partition(), f.cfg.Region, f.cfg.Account, f.cfg.ResourceID, user)
}

// ClusterID is the DSQL cluster identifier of a DSQL front.
func (f *Front) ClusterID() string { return f.cfg.ClusterID }

// ClusterARN is the DSQL cluster ARN an IAM policy must allow
// dsql:DbConnect or dsql:DbConnectAdmin on.
func (f *Front) ClusterARN() string {
	return fmt.Sprintf("arn:%s:dsql:%s:%s:cluster/%s", f.Partition(), f.cfg.Region, f.cfg.Account, f.cfg.ClusterID)
}

// Hostnames are the names the front's certificate holds (and, for a DSQL
// front, the endpoints it answers to).
func (f *Front) Hostnames() []string { return append([]string(nil), f.cfg.Hostnames...) }

// Accepted and Rejected count authentication decisions since Start.
func (f *Front) Accepted() int64 { return f.accepted.Load() }
func (f *Front) Rejected() int64 { return f.rejected.Load() }

// Start listens again after Stop, on the same port. Starting a running
// front does nothing.
func (f *Front) Start() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln != nil {
		return nil
	}
	addr := f.cfg.Addr
	if f.port != 0 {
		h, _, _ := net.SplitHostPort(addr)
		addr = net.JoinHostPort(h, strconv.Itoa(f.port))
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("pgfront: %w", err)
	}
	f.ln = ln
	f.port = ln.Addr().(*net.TCPAddr).Port
	f.wg.Add(1)
	go f.serve(ln)
	return nil
}

// Stop closes the listener and every open session, like a server going
// down, and waits for the front's goroutines.
func (f *Front) Stop() error {
	f.mu.Lock()
	ln := f.ln
	f.ln = nil
	if ln != nil {
		ln.Close()
	}
	for c := range f.conns {
		c.Close()
	}
	f.mu.Unlock()
	f.wg.Wait()
	return nil
}

// Close stops the front and removes its CA file.
func (f *Front) Close() error {
	f.Stop()
	return os.RemoveAll(f.dir)
}

func (f *Front) track(c net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.ln == nil {
		return false
	}
	f.conns[c] = struct{}{}
	return true
}

func (f *Front) untrack(c net.Conn) {
	f.mu.Lock()
	delete(f.conns, c)
	f.mu.Unlock()
}

func (f *Front) serve(ln net.Listener) {
	defer f.wg.Done()
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		if !f.track(c) {
			c.Close()
			return
		}
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			defer f.untrack(c)
			defer c.Close()
			f.handle(c)
		}()
	}
}

// handle runs one client session.
func (f *Front) handle(raw net.Conn) {
	raw.SetDeadline(time.Now().Add(30 * time.Second))
	be := pgproto3.NewBackend(raw, raw)
	var conn net.Conn = raw
	var startup *pgproto3.StartupMessage
	for startup == nil {
		msg, err := be.ReceiveStartupMessage()
		if err != nil {
			return
		}
		switch m := msg.(type) {
		case *pgproto3.SSLRequest:
			if conn != raw {
				return // a second SSLRequest inside TLS is a protocol violation
			}
			if _, err := raw.Write([]byte{'S'}); err != nil {
				return
			}
			tc := tls.Server(raw, f.tlsConf)
			if err := tc.Handshake(); err != nil {
				return
			}
			conn = tc
			be = pgproto3.NewBackend(tc, tc)
		case *pgproto3.GSSEncRequest:
			if _, err := conn.Write([]byte{'N'}); err != nil {
				return
			}
		case *pgproto3.CancelRequest:
			f.forwardCancel(m)
			return
		case *pgproto3.StartupMessage:
			startup = m
		default:
			return
		}
	}
	user := startup.Parameters["user"]
	params := make(map[string]string, len(startup.Parameters))
	for k, v := range startup.Parameters {
		params[k] = v
	}
	version := startup.ProtocolVersion
	tc, isTLS := conn.(*tls.Conn)
	if !isTLS {
		// RDS with rds.force_ssl=1 (and every IAM user) refuses it.
		f.rejected.Add(1)
		f.event(AuthEvent{User: user, Err: errors.New("startup without TLS")})
		fatal(be, "28000", fmt.Sprintf("no pg_hba.conf entry for host %q, user %q, database %q, no encryption",
			hostOf(raw.RemoteAddr()), user, params["database"]))
		return
	}

	if f.cfg.DSQL {
		// DSQL routes a connection by SNI: without it there is no cluster.
		sni := tc.ConnectionState().ServerName
		if sni == "" {
			f.rejected.Add(1)
			f.event(AuthEvent{User: user, Err: errors.New("no SNI")})
			fatal(be, "08004", "unable to accept connection, sni was not received")
			return
		}
		if !f.answersTo(sni) {
			f.rejected.Add(1)
			f.event(AuthEvent{User: user, Err: fmt.Errorf("SNI %q names no cluster here", sni)})
			fatal(be, "08004", fmt.Sprintf("unable to accept connection, no cluster for %q", sni))
			return
		}
	}

	be.Send(&pgproto3.AuthenticationCleartextPassword{})
	if err := be.Flush(); err != nil {
		return
	}
	if err := be.SetAuthType(pgproto3.AuthTypeCleartextPassword); err != nil {
		return
	}
	msg, err := be.Receive()
	if err != nil {
		return
	}
	pm, ok := msg.(*pgproto3.PasswordMessage)
	if !ok {
		fatal(be, "08P01", "expected password response")
		return
	}
	host := f.dialledHost(tc)
	ev := AuthEvent{User: user, Host: host}
	if want, plain := f.cfg.Passwords[user]; plain {
		if pm.Password != want {
			ev.Err = errors.New("wrong password")
			f.rejected.Add(1)
			f.event(ev)
			fatal(be, "28P01", fmt.Sprintf("password authentication failed for user %q", user))
			return
		}
	} else {
		ev.IAM = true
		res, err := f.verifyToken(pm.Password, user, host)
		if err != nil {
			ev.Err = err
			f.rejected.Add(1)
			f.event(ev)
			if f.cfg.DSQL {
				fatal(be, "28P01", fmt.Sprintf("IAM authentication failed for user %q", user))
			} else {
				fatal(be, "28000", fmt.Sprintf("PAM authentication failed for user %q", user))
			}
			return
		}
		ev.SignedAt, ev.AccessKeyID = res.SignedAt, res.Credentials.AccessKeyID
	}

	backend, err := f.dialBackend()
	if err != nil {
		fatal(be, "08006", "could not connect to the database server")
		return
	}
	defer backend.Close()
	fe := pgproto3.NewFrontend(backend, backend)
	fe.Send(&pgproto3.StartupMessage{ProtocolVersion: version, Parameters: params})
	if err := fe.Flush(); err != nil {
		fatal(be, "08006", "could not connect to the database server")
		return
	}
	f.accepted.Add(1)
	f.event(ev)
	if !f.track(backend) {
		return
	}
	defer f.untrack(backend)
	backend.SetDeadline(time.Now().Add(30 * time.Second))
	key, err := f.relayStartup(conn, backend)
	if key != nil {
		defer f.forgetKey(*key)
	}
	if err != nil {
		return
	}
	raw.SetDeadline(time.Time{})
	backend.SetDeadline(time.Time{})
	relay(conn, backend)
}

// cancelKey identifies a session to cancel: a process id and secret key.
type cancelKey struct {
	pid    uint32
	secret string
}

// relayStartup copies the server's answer to the startup message to the
// client up to ReadyForQuery, replacing the server's BackendKeyData with
// one the front made up and remembering which server key it stands for.
// Nothing else the server sends is changed.
func (f *Front) relayStartup(client, server net.Conn) (*cancelKey, error) {
	var key *cancelKey
	hdr := make([]byte, 5)
	for {
		if _, err := io.ReadFull(server, hdr); err != nil {
			return key, err
		}
		n := int(binary.BigEndian.Uint32(hdr[1:]))
		if n < 4 || n > 1<<20 {
			return key, fmt.Errorf("pgfront: server message of length %d", n)
		}
		body := make([]byte, n-4)
		if _, err := io.ReadFull(server, body); err != nil {
			return key, err
		}
		msg := append(hdr[:5:5], body...)
		if hdr[0] == 'K' {
			var real pgproto3.BackendKeyData
			if err := real.Decode(body); err != nil {
				return key, err
			}
			k, mine, err := f.newKey(real)
			if err != nil {
				return key, err
			}
			key = &k
			if msg, err = mine.Encode(nil); err != nil {
				return key, err
			}
		}
		if _, err := client.Write(msg); err != nil {
			return key, err
		}
		switch hdr[0] {
		case 'Z': // ReadyForQuery: the session is up
			return key, nil
		case 'E': // the server refused the session and closes it
			return key, errors.New("pgfront: server refused the session")
		}
	}
}

// newKey makes up a BackendKeyData for a client, with a secret as long as
// the server's, and records that it stands for real.
func (f *Front) newKey(real pgproto3.BackendKeyData) (cancelKey, *pgproto3.BackendKeyData, error) {
	secret := make([]byte, len(real.SecretKey))
	var pid [4]byte
	f.keysMu.Lock()
	defer f.keysMu.Unlock()
	for {
		if _, err := rand.Read(pid[:]); err != nil {
			return cancelKey{}, nil, err
		}
		if _, err := rand.Read(secret); err != nil {
			return cancelKey{}, nil, err
		}
		p := binary.BigEndian.Uint32(pid[:]) &^ (1 << 31) // a positive int4, as PostgreSQL's pids
		k := cancelKey{pid: p, secret: string(secret)}
		if _, taken := f.keys[k]; p == 0 || p == real.ProcessID || taken {
			continue
		}
		f.keys[k] = real
		return k, &pgproto3.BackendKeyData{ProcessID: p, SecretKey: secret}, nil
	}
}

func (f *Front) forgetKey(k cancelKey) {
	f.keysMu.Lock()
	delete(f.keys, k)
	f.keysMu.Unlock()
}

// Cancels counts CancelRequests received, and how many of them carried a
// key the front had handed out and were relayed to the server.
func (f *Front) Cancels() (received, relayed int64) {
	return f.cancelsIn.Load(), f.cancelsOut.Load()
}

func (f *Front) event(ev AuthEvent) {
	if f.cfg.OnAuth != nil {
		f.cfg.OnAuth(ev)
	}
}

func (f *Front) answersTo(name string) bool {
	for _, h := range f.cfg.Hostnames {
		if strings.EqualFold(h, name) {
			return true
		}
	}
	return false
}

// dialledHost is the host:port a token must be signed for: the name the
// client asked for in SNI when the front answers to it, else the IP it
// connected to. A DSQL token is signed for the endpoint name alone.
func (f *Front) dialledHost(tc *tls.Conn) string {
	if f.cfg.DSQL {
		return strings.ToLower(tc.ConnectionState().ServerName)
	}
	port := strconv.Itoa(f.port)
	if sni := tc.ConnectionState().ServerName; sni != "" {
		for _, h := range f.cfg.Hostnames {
			if strings.EqualFold(h, sni) {
				return net.JoinHostPort(h, port)
			}
		}
	}
	return net.JoinHostPort(hostOf(tc.LocalAddr()), port)
}

func hostOf(a net.Addr) string {
	h, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return h
}

// TokenError says why a token was refused. It never holds the token.
type TokenError struct {
	Code   string // the AWS error code, e.g. SignatureDoesNotMatch, AccessDenied
	Reason string
}

func (e *TokenError) Error() string { return "pgfront: token refused: " + e.Code + ": " + e.Reason }

// VerifyToken checks token as the password of user connecting to host
// (host:port as dialled; for a DSQL front the endpoint name without a
// port). It is what the front does for every IAM login.
func (f *Front) VerifyToken(token, user, host string) (*sigv4.Result, error) {
	return f.verifyToken(token, user, host)
}

func (f *Front) verifyToken(token, user, host string) (*sigv4.Result, error) {
	if f.cfg.Registry == nil || f.cfg.IAM == nil {
		return nil, &TokenError{Code: "AccessDenied", Reason: "front has no registry or IAM configured"}
	}
	if strings.Contains(token, "://") {
		return nil, &TokenError{Code: "AuthorizationQueryParametersError", Reason: "token must not carry a scheme"}
	}
	u, err := url.Parse("https://" + token)
	if err != nil || u.Host == "" || u.RawQuery == "" {
		return nil, &TokenError{Code: "AuthorizationQueryParametersError", Reason: "token is not a presigned URL"}
	}
	if u.Path != "/" && u.Path != "" {
		return nil, &TokenError{Code: "AuthorizationQueryParametersError", Reason: "token path must be /"}
	}
	if !strings.EqualFold(u.Host, host) {
		return nil, &TokenError{Code: "SignatureDoesNotMatch", Reason: fmt.Sprintf("token is for host %q, not %q", u.Host, host)}
	}
	service, maxExpires := "rds-db", MaxTokenLifetime
	if f.cfg.DSQL {
		service, maxExpires = "dsql", MaxDSQLTokenLifetime
	}
	res, err := f.cfg.Registry.VerifyPresigned(u, sigv4.PresignOptions{
		Service:    service,
		Region:     f.cfg.Region,
		Host:       host,
		MaxExpires: maxExpires,
	})
	if err != nil {
		var se *sigv4.Error
		if errors.As(err, &se) {
			return nil, &TokenError{Code: se.Code, Reason: se.Message}
		}
		return nil, &TokenError{Code: "AccessDenied", Reason: err.Error()}
	}
	if f.cfg.DSQL {
		return f.authorizeDSQL(res, user)
	}
	if got := res.Query["Action"]; len(got) != 1 || got[0] != "connect" {
		return nil, &TokenError{Code: "InvalidAction", Reason: "Action must be connect"}
	}
	if got := res.Query["DBUser"]; len(got) != 1 || got[0] != user {
		return nil, &TokenError{Code: "AccessDenied", Reason: fmt.Sprintf("token is for another database user, not %q", user)}
	}
	if res.Credentials.RoleARN == "" {
		return nil, &TokenError{Code: "AccessDenied", Reason: "only role sessions have policies here"}
	}
	if !f.cfg.IAM.Authorize(res.Credentials.RoleARN, "rds-db:connect", f.UserARN(user)) {
		return nil, &TokenError{Code: "AccessDenied", Reason: fmt.Sprintf("%s is not authorized to perform rds-db:connect on %s", res.Credentials.Arn, f.UserARN(user))}
	}
	return res, nil
}

// authorizeDSQL checks a verified DSQL token's action against the role
// (admin connects with DbConnectAdmin, every other role with DbConnect)
// and IAM.
func (f *Front) authorizeDSQL(res *sigv4.Result, user string) (*sigv4.Result, error) {
	want := "DbConnect"
	if user == "admin" {
		want = "DbConnectAdmin"
	}
	if got := res.Query["Action"]; len(got) != 1 || got[0] != want {
		return nil, &TokenError{Code: "InvalidAction", Reason: fmt.Sprintf("role %q connects with Action=%s, not %v", user, want, got)}
	}
	if res.Credentials.RoleARN == "" {
		return nil, &TokenError{Code: "AccessDenied", Reason: "only role sessions have policies here"}
	}
	action := "dsql:" + want
	if !f.cfg.IAM.Authorize(res.Credentials.RoleARN, action, f.ClusterARN()) {
		return nil, &TokenError{Code: "AccessDenied", Reason: fmt.Sprintf("%s is not authorized to perform %s on %s", res.Credentials.Arn, action, f.ClusterARN())}
	}
	return res, nil
}

func (f *Front) dialBackend() (net.Conn, error) {
	network := "tcp"
	if strings.HasPrefix(f.cfg.Backend, "/") {
		network = "unix"
	}
	return net.DialTimeout(network, f.cfg.Backend, 10*time.Second)
}

// forwardCancel relays a CancelRequest that carries a key the front handed
// out, with the server's key; any other is dropped without an answer, as
// PostgreSQL does.
func (f *Front) forwardCancel(m *pgproto3.CancelRequest) {
	f.cancelsIn.Add(1)
	f.keysMu.Lock()
	real, ok := f.keys[cancelKey{pid: m.ProcessID, secret: string(m.SecretKey)}]
	f.keysMu.Unlock()
	if !ok {
		return
	}
	c, err := f.dialBackend()
	if err != nil {
		return
	}
	defer c.Close()
	buf, err := (&pgproto3.CancelRequest{ProcessID: real.ProcessID, SecretKey: real.SecretKey}).Encode(nil)
	if err != nil {
		return
	}
	f.cancelsOut.Add(1)
	if _, err := c.Write(buf); err != nil {
		return
	}
	// The server closes the connection once it has read the request.
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	io.Copy(io.Discard, c)
}

func fatal(be *pgproto3.Backend, code, msg string) {
	be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", SeverityUnlocalized: "FATAL", Code: code, Message: msg})
	be.Flush()
}

// relay copies bytes both ways until either side closes.
func relay(client, server net.Conn) {
	done := make(chan struct{}, 2)
	go func() {
		io.Copy(server, client)
		server.Close()
		done <- struct{}{}
	}()
	go func() {
		io.Copy(client, server)
		client.Close()
		done <- struct{}{}
	}()
	<-done
	<-done
}
