package oidc

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/irsakit/irsakit/internal/clock"
)

const (
	// DefaultAudience is the audience EKS projects into IRSA tokens and the
	// client id an IAM OIDC provider registers for STS.
	DefaultAudience = "sts.amazonaws.com"
	// DefaultTokenLifetime is the lifetime of minted tokens: EKS's pod
	// identity webhook asks the kubelet for 86400-second tokens.
	DefaultTokenLifetime = 24 * time.Hour
	// DiscoveryPath is the discovery document's path below the issuer URL.
	DiscoveryPath = "/.well-known/openid-configuration"
	// KeysPath is the JWKS path below the issuer URL (EKS serves it there).
	KeysPath = "/keys"
)

// Options configure an [Issuer]. Every field has a usable zero value.
type Options struct {
	// Listener is where the issuer serves. Default: a new listener on
	// 127.0.0.1:0 (a free loopback port). The issuer closes it on Close.
	Listener net.Listener
	// TLS serves https with a self-signed certificate for the listener's
	// address (and IssuerURL's host), unless Certificate is set. Default
	// false: plain http. Real IAM only registers https issuers, so the STS
	// stand-in refuses http issuers unless told otherwise.
	TLS bool
	// Certificate is the server certificate (chain) to serve https with;
	// setting it implies TLS.
	Certificate *tls.Certificate
	// IssuerURL is the issuer identifier ("iss") and the base of the
	// endpoints. Default: SCHEME://LISTENER-ADDRESS + Path, the port left out
	// when it is the scheme's default (https://198.51.100.7 on port 443).
	IssuerURL string
	// Path is the issuer URL's path when IssuerURL is empty. Default
	// "/id/" + 32 random upper-case hex digits, like an EKS cluster's
	// issuer; "/" serves at the root.
	Path string
	// Clock stamps iat, nbf and exp. Default: the system clock.
	Clock clock.Clock
	// TokenLifetime is exp - iat of minted tokens. Default
	// [DefaultTokenLifetime].
	TokenLifetime time.Duration
	// TokenFileMode is the permission of token files. Default 0600.
	TokenFileMode uint32
}

type signingKey struct {
	priv *rsa.PrivateKey
	kid  string
}

type tokenFile struct {
	sub  string
	opts []func(*Claims)
}

// Issuer is a running OIDC issuer. It is safe for concurrent use.
type Issuer struct {
	opts   Options
	clk    clock.Clock
	url    string
	prefix string
	ln     net.Listener
	srv    *http.Server
	cert   *tls.Certificate
	leaf   *x509.Certificate

	mu      sync.Mutex
	keys    []signingKey // last is the signing key
	foreign *rsa.PrivateKey
	files   map[string]tokenFile
	saUIDs  map[string]string

	failing   atomic.Bool
	fetches   atomic.Int64
	closeOnce sync.Once
	closeErr  error
}

// New starts an issuer with one RSA-2048 signing key.
func New(optFns ...func(*Options)) (*Issuer, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.TokenLifetime <= 0 {
		o.TokenLifetime = DefaultTokenLifetime
	}
	if o.TokenFileMode == 0 {
		o.TokenFileMode = 0o600
	}
	if o.Path == "" {
		o.Path = "/id/" + randHex(16)
	}
	key, err := newSigningKey()
	if err != nil {
		return nil, err
	}
	ln := o.Listener
	if ln == nil {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("oidc: listen: %w", err)
		}
	}
	iss := &Issuer{
		opts:   o,
		clk:    clock.Or(o.Clock),
		ln:     ln,
		keys:   []signingKey{key},
		files:  map[string]tokenFile{},
		saUIDs: map[string]string{},
	}
	useTLS := o.TLS || o.Certificate != nil
	iss.url = o.IssuerURL
	if iss.url == "" {
		iss.url = deriveURL(useTLS, ln.Addr().String(), o.Path)
	}
	u, err := url.Parse(iss.url)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		ln.Close()
		return nil, fmt.Errorf("oidc: IssuerURL %q must be an http(s) URL without query or fragment", iss.url)
	}
	iss.url = strings.TrimSuffix(iss.url, "/")
	iss.prefix = strings.TrimSuffix(u.Path, "/")
	if useTLS {
		cert := o.Certificate
		if cert == nil {
			host, _, _ := net.SplitHostPort(ln.Addr().String())
			c, err := SelfSignedCertificate(host, u.Hostname())
			if err != nil {
				ln.Close()
				return nil, err
			}
			cert = &c
		}
		leaf, err := x509.ParseCertificate(cert.Certificate[0])
		if err != nil {
			ln.Close()
			return nil, fmt.Errorf("oidc: parse certificate: %w", err)
		}
		iss.cert, iss.leaf = cert, leaf
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{*cert}, MinVersion: tls.VersionTLS12})
	}
	iss.srv = &http.Server{
		Handler:           http.HandlerFunc(iss.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		// Clients that do not trust the certificate make the server log
		// handshake errors; tests assert on behaviour, not on that noise.
		ErrorLog: log.New(io.Discard, "", 0),
	}
	go iss.srv.Serve(ln) //nolint:errcheck // returns ErrServerClosed on Close
	return iss, nil
}

func deriveURL(useTLS bool, addr, path string) string {
	scheme, defPort := "http", "80"
	if useTLS {
		scheme, defPort = "https", "443"
	}
	host, port, err := net.SplitHostPort(addr)
	if err == nil && port == defPort {
		addr = host
		if strings.Contains(host, ":") {
			addr = "[" + host + "]"
		}
	}
	if path == "/" {
		path = ""
	}
	if path != "" && !strings.HasPrefix(path, "/") {
		path = "/" + path
	}
	return scheme + "://" + addr + path
}

func newSigningKey() (signingKey, error) {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return signingKey{}, fmt.Errorf("oidc: generate key: %w", err)
	}
	jwk := jose.JSONWebKey{Key: &priv.PublicKey}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return signingKey{}, fmt.Errorf("oidc: key thumbprint: %w", err)
	}
	// The Kubernetes API server derives kid the same way: base64url of the
	// SHA-256 of the public key.
	return signingKey{priv: priv, kid: base64.RawURLEncoding.EncodeToString(tp)}, nil
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return strings.ToUpper(hex.EncodeToString(b))
}

// URL returns the issuer identifier, e.g.
// https://127.0.0.1:41234/id/0123456789ABCDEF0123456789ABCDEF. It is the
// "iss" of minted tokens and the URL to register with IAM.
func (i *Issuer) URL() string { return i.url }

// HostPath returns URL without its scheme: the prefix of the trust-policy
// condition keys ("HOSTPATH:sub", "HOSTPATH:aud") and of the provider ARN.
func (i *Issuer) HostPath() string {
	_, rest, _ := strings.Cut(i.url, "://")
	return rest
}

// Addr returns the listener's address.
func (i *Issuer) Addr() net.Addr { return i.ln.Addr() }

// KeyID returns the key id of the current signing key.
func (i *Issuer) KeyID() string {
	i.mu.Lock()
	defer i.mu.Unlock()
	return i.keys[len(i.keys)-1].kid
}

// KeyIDs returns the key ids published in the JWKS, oldest first.
func (i *Issuer) KeyIDs() []string {
	i.mu.Lock()
	defer i.mu.Unlock()
	ids := make([]string, len(i.keys))
	for n, k := range i.keys {
		ids[n] = k.kid
	}
	return ids
}

// RotateKey makes a new key the signing key and returns its id. Earlier
// keys stay published in the JWKS (as the API server keeps serving every
// configured public key) so tokens they signed keep verifying, until
// [Issuer.DropOldKeys].
func (i *Issuer) RotateKey() (string, error) {
	k, err := newSigningKey()
	if err != nil {
		return "", err
	}
	i.mu.Lock()
	i.keys = append(i.keys, k)
	i.mu.Unlock()
	return k.kid, nil
}

// DropOldKeys unpublishes every key but the signing key: tokens signed
// before the last RotateKey no longer verify.
func (i *Issuer) DropOldKeys() {
	i.mu.Lock()
	i.keys = i.keys[len(i.keys)-1:]
	i.mu.Unlock()
}

// SetFailing makes the discovery and JWKS endpoints answer 503 (on) or
// serve normally (off).
func (i *Issuer) SetFailing(on bool) { i.failing.Store(on) }

// Fetches reports how many discovery and JWKS requests the issuer has
// served (failed ones included).
func (i *Issuer) Fetches() int64 { return i.fetches.Load() }

// Certificate returns the served leaf certificate, or nil for plain http.
func (i *Issuer) Certificate() *x509.Certificate { return i.leaf }

// CertPool returns a pool trusting the served certificate chain (nil for
// plain http).
func (i *Issuer) CertPool() *x509.CertPool {
	if i.cert == nil {
		return nil
	}
	pool := x509.NewCertPool()
	for _, der := range i.cert.Certificate {
		if c, err := x509.ParseCertificate(der); err == nil {
			pool.AddCert(c)
		}
	}
	return pool
}

// Client returns an HTTP client that trusts the issuer's certificate.
func (i *Issuer) Client() *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	if pool := i.CertPool(); pool != nil {
		tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// Thumbprint returns the SHA-1 thumbprint (40 lower-case hex digits) IAM
// registers for this issuer's OIDC provider, or "" for plain http.
func (i *Issuer) Thumbprint() string {
	if i.cert == nil {
		return ""
	}
	return Thumbprint(i.cert)
}

// Close stops the server. It is idempotent.
func (i *Issuer) Close() error {
	i.closeOnce.Do(func() {
		i.closeErr = i.srv.Close()
	})
	return i.closeErr
}

type discovery struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported       []string `json:"claims_supported"`
}

func (i *Issuer) serveHTTP(w http.ResponseWriter, r *http.Request) {
	var body any
	switch r.URL.Path {
	case i.prefix + DiscoveryPath:
		body = discovery{
			Issuer:                i.url,
			JWKSURI:               i.url + KeysPath,
			AuthorizationEndpoint: "urn:kubernetes:programmatic_authorization",
			ResponseTypes:         []string{"id_token"},
			SubjectTypes:          []string{"public"},
			SigningAlgs:           []string{string(jose.RS256)},
			ClaimsSupported:       []string{"sub", "iss"},
		}
	case i.prefix + KeysPath:
		body = i.jwks()
	default:
		http.NotFound(w, r)
		return
	}
	i.fetches.Add(1)
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if i.failing.Load() {
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return
	}
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "max-age=60")
	_, _ = w.Write(b)
}

func (i *Issuer) jwks() jose.JSONWebKeySet {
	i.mu.Lock()
	defer i.mu.Unlock()
	var set jose.JSONWebKeySet
	for _, k := range i.keys {
		set.Keys = append(set.Keys, jose.JSONWebKey{
			Key:       &k.priv.PublicKey,
			KeyID:     k.kid,
			Algorithm: string(jose.RS256),
			Use:       "sig",
		})
	}
	return set
}
