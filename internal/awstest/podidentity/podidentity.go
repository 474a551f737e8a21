// Package podidentity is the EKS Pod Identity stand-in: the credentials
// endpoint that the eks-pod-identity-agent add-on serves on every node at
// http://169.254.170.23/v1/credentials (and [fd00:ec2::23]), here on a
// loopback port, together with the EKS Auth AssumeRoleForPodIdentity check
// behind it. The SDK's container credentials provider
// (AWS_CONTAINER_CREDENTIALS_FULL_URI + AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE)
// talks to it unchanged.
//
// A request is checked as the real endpoint checks it, with the answers it
// gives (HTTP status, plain-text body):
//
//   - the Host the request was sent to must be one of Options.TargetHosts
//     (the real endpoint accepts only its two link-local addresses):
//     403 "Access Denied. Called through invalid address, ...";
//   - the Authorization header carries the projected service-account token:
//     missing, 400 "Service account token cannot be empty"; not a JWT, 400
//     "Service account token cannot be parsed"; exp in the past, nbf or iat
//     in the future, 400 "Service account token failed basic claim
//     validations";
//   - then, as EKS Auth answers AssumeRoleForPodIdentity (relayed with its
//     status as "[REQUEST-ID]: (CODE): MESSAGE, fault: client"): the token
//     must be exactly the one the kubelet projected into the pod's token
//     file ([Server.SetTokenFile]), signed by the cluster's issuer (the
//     oidc stand-in's JWKS), issued by it, and carry the audience
//     pods.eks.amazonaws.com, else 400 InvalidTokenException; its subject
//     must have a pod identity association ([Server.Associate]), else 404
//     ResourceNotFoundException.
//
// A request that passes gets {"AccessKeyId", "SecretAccessKey", "Token",
// "AccountId", "Expiration"} for the associated role, issued into the sigv4
// registry (so every stand-in accepts signatures made with them) for
// Options.CredentialTTL.
//
// Tests steer it: [Server.Calls] and [Server.CallLog] count and record
// requests; [Server.SetDown] makes it refuse connections, [Server.FailNext]
// answers with a server error; [Server.SetCredentialTTL] sets the lifetime
// of issued credentials. A Server is safe for concurrent use.
package podidentity

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/outage"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

const (
	// Path is the credentials path of the endpoint.
	Path = "/v1/credentials"
	// Audience is the audience of the projected Pod Identity token.
	Audience = "pods.eks.amazonaws.com"
	// DefaultCredentialTTL is the default lifetime of issued credentials.
	DefaultCredentialTTL = time.Hour
)

// Options configure a [Server]. Every field has a usable zero value.
type Options struct {
	// Listener is where the server serves. Default: a new listener on
	// 127.0.0.1:0. The server closes it on Close.
	Listener net.Listener
	// TargetHosts are the hosts (without port) requests may be addressed
	// to. Default: the listener's IP address.
	TargetHosts []string
	// Clock judges token exp/nbf/iat and stamps credential expiry.
	// Default: the registry's clock.
	Clock clock.Clock
	// CredentialTTL is the lifetime of issued credentials. Default
	// [DefaultCredentialTTL].
	CredentialTTL time.Duration
	// HTTPClient fetches the issuer's JWKS. Default: the issuer's
	// [oidc.Issuer.Client].
	HTTPClient *http.Client
}

// Call records one request the server answered (requests refused while
// down are not seen). It holds no token or key.
type Call struct {
	Status int
	// Code is the EKS Auth error code relayed, if any.
	Code string
	// Subject is the token's sub, when it could be read.
	Subject string
	// AccessKeyID is the access key issued on success.
	AccessKeyID string
	// Host is the Host header the request was sent to.
	Host string
}

// Server is the EKS Pod Identity stand-in. It is safe for concurrent use.
type Server struct {
	reg  *sigv4.Registry
	iss  *oidc.Issuer
	opts Options
	clk  clock.Clock
	hc   *http.Client
	ln   *outage.Listener
	srv  *http.Server
	url  string

	mu        sync.Mutex
	tokenFile string
	assoc     map[string]string // subject -> role ARN
	credTTL   time.Duration
	faults    int
	log       []Call
	calls     atomic.Int64

	closeOnce sync.Once
	closeErr  error
}

// New starts a Pod Identity endpoint that verifies tokens against iss and
// issues credentials into reg.
func New(reg *sigv4.Registry, iss *oidc.Issuer, optFns ...func(*Options)) (*Server, error) {
	if reg == nil || iss == nil {
		return nil, errors.New("podidentity: a registry and an issuer are required")
	}
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Clock == nil {
		o.Clock = reg.Clock()
	}
	if o.CredentialTTL <= 0 {
		o.CredentialTTL = DefaultCredentialTTL
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = iss.Client()
	}
	raw := o.Listener
	if raw == nil {
		var err error
		if raw, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			return nil, fmt.Errorf("podidentity: listen: %w", err)
		}
	}
	if len(o.TargetHosts) == 0 {
		host, _, err := net.SplitHostPort(raw.Addr().String())
		if err != nil {
			raw.Close()
			return nil, fmt.Errorf("podidentity: listener address: %w", err)
		}
		o.TargetHosts = []string{host}
	}
	s := &Server{
		reg: reg, iss: iss, opts: o, clk: o.Clock, hc: hc,
		ln:      outage.Wrap(raw),
		url:     "http://" + raw.Addr().String() + Path,
		assoc:   map[string]string{},
		credTTL: o.CredentialTTL,
	}
	mux := http.NewServeMux()
	mux.HandleFunc(Path, s.serveCredentials)
	s.srv = &http.Server{Handler: s.ln.Guard(mux), ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(io.Discard, "", 0)}
	go s.srv.Serve(s.ln) //nolint:errcheck // ErrServerClosed on Close
	return s, nil
}

// URL is the value for AWS_CONTAINER_CREDENTIALS_FULL_URI:
// http://127.0.0.1:PORT/v1/credentials.
func (s *Server) URL() string { return s.url }

// Close stops the server. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() { s.closeErr = s.srv.Close() })
	return s.closeErr
}

// Associate creates a pod identity association: tokens whose subject is
// system:serviceaccount:NAMESPACE:SERVICEACCOUNT get credentials for
// roleARN.
func (s *Server) Associate(namespace, serviceAccount, roleARN string) {
	s.mu.Lock()
	s.assoc[oidc.ServiceAccountSubject(namespace, serviceAccount)] = roleARN
	s.mu.Unlock()
}

// Disassociate deletes the association of a service account.
func (s *Server) Disassociate(namespace, serviceAccount string) {
	s.mu.Lock()
	delete(s.assoc, oidc.ServiceAccountSubject(namespace, serviceAccount))
	s.mu.Unlock()
}

// SetTokenFile names the pod's projected token file: a request must carry
// exactly the token it holds at that moment.
func (s *Server) SetTokenFile(path string) {
	s.mu.Lock()
	s.tokenFile = path
	s.mu.Unlock()
}

// SetCredentialTTL sets the lifetime of credentials issued from now on.
func (s *Server) SetCredentialTTL(d time.Duration) {
	s.mu.Lock()
	s.credTTL = d
	s.mu.Unlock()
}

// SetDown takes the endpoint down (true) or brings it back (false). While
// down, every connection is accepted and reset without an answer, as when
// nothing serves the node's Pod Identity address.
func (s *Server) SetDown(down bool) { s.ln.SetDown(down) }

// FailNext answers the next n requests with 500 Internal Server Error.
func (s *Server) FailNext(n int) {
	s.mu.Lock()
	s.faults += n
	s.mu.Unlock()
}

// Calls reports how many requests were answered.
func (s *Server) Calls() int64 { return s.calls.Load() }

// CallLog returns a copy of the answered requests, oldest first.
func (s *Server) CallLog() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

type credentialsResponse struct {
	AccessKeyID     string `json:"AccessKeyId"`
	SecretAccessKey string `json:"SecretAccessKey"`
	Token           string `json:"Token"`
	AccountID       string `json:"AccountId"`
	Expiration      string `json:"Expiration"`
}

// apiError is an answer the endpoint relays from EKS Auth.
type apiError struct {
	status        int
	code, message string
}

func (s *Server) record(c Call) {
	s.calls.Add(1)
	s.mu.Lock()
	s.log = append(s.log, c)
	s.mu.Unlock()
}

func (s *Server) serveCredentials(w http.ResponseWriter, r *http.Request) {
	call := Call{Host: r.Host}
	fail := func(status int, msg string) {
		call.Status = status
		s.record(call)
		http.Error(w, msg, status)
	}
	s.mu.Lock()
	fault := s.faults > 0
	if fault {
		s.faults--
	}
	s.mu.Unlock()
	if fault {
		fail(http.StatusInternalServerError, "injected failure")
		return
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if !slices.Contains(s.opts.TargetHosts, host) {
		fail(http.StatusForbidden, fmt.Sprintf("Access Denied. Called through invalid address, please use either %v address not %s", s.opts.TargetHosts, host))
		return
	}
	tok := r.Header.Get("Authorization")
	if tok == "" {
		fail(http.StatusBadRequest, "Service account token cannot be empty")
		return
	}
	claims, err := parseUnverified(tok)
	if err != nil {
		fail(http.StatusBadRequest, "Service account token cannot be parsed: "+err.Error())
		return
	}
	call.Subject = claims.Sub
	if err := s.basicClaims(claims); err != nil {
		fail(http.StatusBadRequest, "Service account token failed basic claim validations: "+err.Error())
		return
	}
	roleARN, aerr := s.assumeRoleForPodIdentity(tok, claims)
	if aerr != nil {
		call.Code = aerr.code
		fail(aerr.status, fmt.Sprintf("[%s]: (%s): %s, fault: client", newRequestID(), aerr.code, aerr.message))
		return
	}
	s.mu.Lock()
	ttl := s.credTTL
	s.mu.Unlock()
	c, err := s.reg.IssueSession(roleARN, "eks-"+claims.podName()+"-"+randHex(4), ttl)
	if err != nil {
		fail(http.StatusInternalServerError, err.Error())
		return
	}
	call.Status, call.AccessKeyID = http.StatusOK, c.AccessKeyID
	s.record(call)
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(credentialsResponse{
		AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, Token: c.SessionToken,
		AccountID: c.Account, Expiration: c.Expires.UTC().Format(time.RFC3339Nano),
	})
}

type tokenClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *int64          `json:"exp"`
	Nbf *int64          `json:"nbf"`
	Iat *int64          `json:"iat"`
	K8s *struct {
		Pod *struct {
			Name string `json:"name"`
		} `json:"pod"`
	} `json:"kubernetes.io"`
}

func (c tokenClaims) podName() string {
	if c.K8s != nil && c.K8s.Pod != nil && c.K8s.Pod.Name != "" {
		return c.K8s.Pod.Name
	}
	return "pod"
}

func (c tokenClaims) audiences() []string {
	var one string
	if json.Unmarshal(c.Aud, &one) == nil {
		return []string{one}
	}
	var many []string
	_ = json.Unmarshal(c.Aud, &many)
	return many
}

func parseUnverified(tok string) (tokenClaims, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return tokenClaims{}, errors.New("token is malformed: token contains an invalid number of segments")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return tokenClaims{}, errors.New("token is malformed: could not base64 decode claim")
	}
	var c tokenClaims
	if err := json.Unmarshal(b, &c); err != nil {
		return tokenClaims{}, errors.New("token is malformed: could not JSON decode claim")
	}
	return c, nil
}

// basicClaims is the endpoint's own check before it asks EKS Auth.
func (s *Server) basicClaims(c tokenClaims) error {
	now := s.clk.Now().Unix()
	switch {
	case c.Exp != nil && now >= *c.Exp:
		return errors.New("token has invalid claims: token is expired")
	case c.Nbf != nil && now < *c.Nbf:
		return errors.New("token has invalid claims: token is not valid yet")
	case c.Iat != nil && now < *c.Iat:
		return errors.New("token has invalid claims: token used before issued")
	}
	return nil
}

// assumeRoleForPodIdentity is EKS Auth's check of the token.
func (s *Server) assumeRoleForPodIdentity(tok string, c tokenClaims) (string, *apiError) {
	invalid := func(msg string) *apiError {
		return &apiError{status: http.StatusBadRequest, code: "InvalidTokenException", message: msg}
	}
	s.mu.Lock()
	path := s.tokenFile
	s.mu.Unlock()
	if path == "" {
		return "", invalid("no projected token is known for this pod")
	}
	projected, err := os.ReadFile(path)
	if err != nil || string(projected) != tok {
		return "", invalid("The specified Kubernetes service account token is invalid: it is not the token projected into the pod")
	}
	if c.Iss != s.iss.URL() {
		return "", invalid(fmt.Sprintf("The specified Kubernetes service account token is invalid: issuer %q is not the cluster's", c.Iss))
	}
	if err := s.verifySignature(tok); err != nil {
		return "", invalid("The specified Kubernetes service account token is invalid: " + err.Error())
	}
	if !slices.Contains(c.audiences(), Audience) {
		return "", invalid(fmt.Sprintf("The specified Kubernetes service account token is invalid: audience %v does not include %s", c.audiences(), Audience))
	}
	s.mu.Lock()
	role, ok := s.assoc[c.Sub]
	s.mu.Unlock()
	if !ok {
		return "", &apiError{status: http.StatusNotFound, code: "ResourceNotFoundException", message: "No Pod Identity Association found for " + c.Sub}
	}
	return role, nil
}

func (s *Server) verifySignature(tok string) error {
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.ES256, jose.ES384, jose.PS256})
	if err != nil {
		return fmt.Errorf("signature: %v", err)
	}
	resp, err := s.hc.Get(strings.TrimRight(s.iss.URL(), "/") + oidc.KeysPath)
	if err != nil {
		return fmt.Errorf("fetching the issuer's keys: %v", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(resp.Body).Decode(&set); err != nil {
		return fmt.Errorf("decoding the issuer's keys: %v", err)
	}
	if len(jws.Signatures) != 1 {
		return errors.New("want one signature")
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return fmt.Errorf("unknown key id %q", jws.Signatures[0].Header.KeyID)
	}
	if _, err := jws.Verify(keys[0]); err != nil {
		return errors.New("signature does not verify")
	}
	return nil
}

func newRequestID() string {
	h := randHex(16)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
