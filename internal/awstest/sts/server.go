package sts

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/outage"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

const (
	// APIVersion is the Query protocol version STS speaks.
	APIVersion = "2011-06-15"
	// Namespace is the XML namespace of every STS answer.
	Namespace = "https://sts.amazonaws.com/doc/2011-06-15/"

	// DefaultRegion is the region the server claims unless told otherwise.
	DefaultRegion = "us-east-1"
	// DefaultCredentialTTL is the default lifetime of issued credentials.
	DefaultCredentialTTL = time.Hour
	// DefaultMaxSessionDuration is IAM's default MaxSessionDuration of a
	// role: asking for longer sessions is a ValidationError.
	DefaultMaxSessionDuration = time.Hour
	// DefaultKeyCacheTTL is how long fetched discovery documents and key
	// sets are reused.
	DefaultKeyCacheTTL = 5 * time.Minute

	maxBody = 1 << 20
)

// Action names.
const (
	ActionAssumeRole                = "AssumeRole"
	ActionAssumeRoleWithWebIdentity = "AssumeRoleWithWebIdentity"
	ActionGetCallerIdentity         = "GetCallerIdentity"
)

// Options configure a [Server]. Every field has a usable zero value.
type Options struct {
	// Listener is where the server serves. Default: a new listener on
	// 127.0.0.1:0. The server closes it on Close.
	Listener net.Listener
	// Certificate, when set, makes the server speak https with it.
	// Default: plain http.
	Certificate *tls.Certificate
	// Region is the region the server claims: GetCallerIdentity requests
	// must be signed for it. Default [DefaultRegion].
	Region string
	// Clock judges token exp/nbf and credential expiry. Default: the
	// registry's clock.
	Clock clock.Clock
	// CredentialTTL caps the lifetime of issued credentials (the lifetime
	// is min(DurationSeconds, CredentialTTL)). Default
	// [DefaultCredentialTTL]; see [Server.SetCredentialTTL].
	CredentialTTL time.Duration
	// MaxSessionDuration is the role's MaxSessionDuration: a
	// DurationSeconds above it is a ValidationError, as in AWS. Default
	// [DefaultMaxSessionDuration] (IAM's default, one hour).
	MaxSessionDuration time.Duration
	// HTTPClient fetches identity providers' discovery documents and key
	// sets. Default: a client with a 5 s timeout and the system roots
	// (give it the issuer's [oidc.Issuer.Client] to trust a self-signed
	// issuer).
	HTTPClient *http.Client
	// KeyCacheTTL is how long a provider's discovery document and key set
	// are reused. A token whose kid is not in the cached set triggers one
	// refetch regardless. Default [DefaultKeyCacheTTL].
	KeyCacheTTL time.Duration
	// AllowHTTPIssuers accepts tokens from issuers whose URL is http://.
	// Default false: like IAM, only https issuers federate.
	AllowHTTPIssuers bool
	// RateLimit throttles each account to this many requests per second
	// (a token bucket per account, refilled continuously): a request
	// finding the bucket empty is answered Throttling "Rate exceeded"
	// (HTTP 400), as STS answers. Default 0: unlimited. See
	// [Server.SetRateLimit].
	RateLimit float64
	// RateBurst is the bucket's capacity: how many requests an idle
	// account may send at once. Default: RateLimit (one second's worth),
	// at least 1.
	RateBurst int
}

// Call records one request the server answered (faults included; requests
// refused while down are not seen).
type Call struct {
	Action string
	// Code is the AWS error code answered, "" on success.
	Code string
	// RoleArn and RoleSessionName as requested (AssumeRoleWithWebIdentity).
	RoleArn         string
	RoleSessionName string
	// DurationSeconds as requested, 0 when absent.
	DurationSeconds int
	// TokenDigest is [TokenDigest] of the WebIdentityToken presented; the
	// token itself is not kept.
	TokenDigest string
	// Subject is the verified token's sub (empty if verification failed).
	Subject string
	// AccessKeyID is the access key issued (AssumeRoleWithWebIdentity,
	// AssumeRole) or that signed the request (GetCallerIdentity).
	AccessKeyID string
	// Caller is the identity that signed an AssumeRole or
	// GetCallerIdentity request (an assumed-role session ARN or a user
	// ARN), "" when the signature did not verify.
	Caller string
	// ExternalID, SourceIdentity, Tags and TransitiveTagKeys are the
	// AssumeRole parameters as sent.
	ExternalID        string
	SourceIdentity    string
	Tags              map[string]string
	TransitiveTagKeys []string
	// At is when the request arrived (the server's clock).
	At time.Time
}

// TokenDigest returns the hex SHA-256 of a token, as recorded in
// [Call.TokenDigest].
func TokenDigest(token string) string {
	s := sha256.Sum256([]byte(token))
	return hex.EncodeToString(s[:])
}

// Server is the STS stand-in. It is safe for concurrent use.
type Server struct {
	reg  *sigv4.Registry
	iam  *iam.IAM
	opts Options
	clk  clock.Clock
	ln   *outage.Listener
	srv  *http.Server
	url  string
	hc   *http.Client

	mu        sync.Mutex
	calls     map[string]int64
	log       []Call
	faults    []string
	delay     time.Duration
	credTTL   time.Duration
	maxSess   time.Duration
	keyCache  map[string]*providerKeys
	keyFlight singleflight.Group
	// accounts holds the IAM of every account the server serves, the
	// primary one included.
	accounts map[string]*iam.IAM
	rate     float64
	burst    float64
	buckets  map[string]*bucket

	closing   chan struct{}
	closeOnce sync.Once
	closeErr  error
}

// New starts an STS stand-in that issues credentials into reg and
// authorises with im.
func New(reg *sigv4.Registry, im *iam.IAM, optFns ...func(*Options)) (*Server, error) {
	if reg == nil || im == nil {
		return nil, fmt.Errorf("sts: a registry and an IAM are required")
	}
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Region == "" {
		o.Region = DefaultRegion
	}
	if o.Clock == nil {
		o.Clock = reg.Clock()
	}
	if o.CredentialTTL <= 0 {
		o.CredentialTTL = DefaultCredentialTTL
	}
	if o.MaxSessionDuration <= 0 {
		o.MaxSessionDuration = DefaultMaxSessionDuration
	}
	if o.KeyCacheTTL <= 0 {
		o.KeyCacheTTL = DefaultKeyCacheTTL
	}
	hc := o.HTTPClient
	if hc == nil {
		hc = &http.Client{Timeout: 5 * time.Second}
	}
	raw := o.Listener
	if raw == nil {
		var err error
		raw, err = net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("sts: listen: %w", err)
		}
	}
	s := &Server{
		reg:      reg,
		iam:      im,
		opts:     o,
		clk:      o.Clock,
		hc:       hc,
		calls:    map[string]int64{},
		credTTL:  o.CredentialTTL,
		maxSess:  o.MaxSessionDuration,
		keyCache: map[string]*providerKeys{},
		accounts: map[string]*iam.IAM{im.Account(): im},
		buckets:  map[string]*bucket{},
		closing:  make(chan struct{}),
	}
	s.setRateLimit(o.RateLimit, o.RateBurst)
	s.ln = outage.Wrap(raw)
	var ln net.Listener = s.ln
	scheme := "http"
	if o.Certificate != nil {
		scheme = "https"
		ln = tls.NewListener(ln, &tls.Config{
			Certificates: []tls.Certificate{*o.Certificate},
			MinVersion:   tls.VersionTLS12,
			NextProtos:   []string{"http/1.1"},
		})
	}
	s.url = scheme + "://" + raw.Addr().String()
	s.srv = &http.Server{
		Handler:           s.ln.Guard(http.HandlerFunc(s.serveHTTP)),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	go s.srv.Serve(ln) //nolint:errcheck // ErrServerClosed on Close
	return s, nil
}

// URL returns the endpoint, e.g. http://127.0.0.1:40123: the value for
// AWS_ENDPOINT_URL_STS or sts.Options.BaseEndpoint.
func (s *Server) URL() string { return s.url }

// Addr returns the listener's address.
func (s *Server) Addr() net.Addr { return s.ln.Addr() }

// Region returns the region the server claims.
func (s *Server) Region() string { return s.opts.Region }

// Close stops the server. It is idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		close(s.closing)
		s.closeErr = s.srv.Close()
	})
	return s.closeErr
}

// Calls reports how many requests named action (each SDK retry attempt
// counts; requests refused while down do not).
func (s *Server) Calls(action string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[action]
}

// CallLog returns a copy of the record of answered requests, oldest first.
func (s *Server) CallLog() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Call(nil), s.log...)
}

// ResetCalls zeroes the counters and empties the call log.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int64{}
	s.log = nil
	s.mu.Unlock()
}

// FailNext answers the next n requests (any action) with the AWS error
// code, at the HTTP status AWS uses for it ([HTTPStatus]): e.g.
// ServiceUnavailable (503) and InternalFailure (500), which the SDK
// retries, or AccessDenied (403), which it does not. Faults queue up behind
// ones already pending.
func (s *Server) FailNext(n int, code string) {
	s.mu.Lock()
	for ; n > 0; n-- {
		s.faults = append(s.faults, code)
	}
	s.mu.Unlock()
}

// ThrottleNext answers the next n requests with Throttling (400), which
// the SDK's standard retryer retries with back-off.
func (s *Server) ThrottleNext(n int) { s.FailNext(n, "Throttling") }

// ClearFaults drops pending FailNext/ThrottleNext faults.
func (s *Server) ClearFaults() {
	s.mu.Lock()
	s.faults = nil
	s.mu.Unlock()
}

// PendingFaults reports how many injected faults are still to be served.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// SetDelay makes every answer wait d first (0: no delay). The wait ends
// early if the client gives up or the server closes.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	s.delay = d
	s.mu.Unlock()
}

// SetDown takes the endpoint down (true) or brings it back (false). While
// down, every TCP connection is accepted and closed at once without an
// answer, and a request arriving on a connection kept alive from before
// has its connection closed without an answer: the SDK sees a transport
// error (no AWS error code), retries it and gives up, so no credentials can
// be obtained, exactly as when the regional endpoint is unreachable.
func (s *Server) SetDown(down bool) { s.ln.SetDown(down) }

// SetCredentialTTL sets the lifetime cap of credentials issued from now on.
func (s *Server) SetCredentialTTL(d time.Duration) {
	s.mu.Lock()
	s.credTTL = d
	s.mu.Unlock()
}

// SetMaxSessionDuration sets the roles' MaxSessionDuration (see
// [Options.MaxSessionDuration]).
func (s *Server) SetMaxSessionDuration(d time.Duration) {
	s.mu.Lock()
	s.maxSess = d
	s.mu.Unlock()
}

// AddAccount makes the server serve another account, whose roles and
// policies im holds: AssumeRole finds a target role in the IAM of the
// role's account and the caller's identity policies in the IAM of the
// caller's account. An account added twice keeps the later IAM.
func (s *Server) AddAccount(im *iam.IAM) {
	s.mu.Lock()
	s.accounts[im.Account()] = im
	s.mu.Unlock()
}

func (s *Server) accountIAM(account string) (*iam.IAM, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	im, ok := s.accounts[account]
	return im, ok
}

// ForgetKeys drops every cached discovery document and key set.
func (s *Server) ForgetKeys() {
	s.mu.Lock()
	s.keyCache = map[string]*providerKeys{}
	s.mu.Unlock()
}

// apiError is an answer in the ErrorResponse shape.
type apiError struct {
	Status  int
	Code    string
	Message string
}

func (e *apiError) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, a ...any) *apiError {
	return &apiError{Status: HTTPStatus(code), Code: code, Message: fmt.Sprintf(format, a...)}
}

// HTTPStatus returns the HTTP status AWS STS answers an error code with
// (400 for codes it does not know).
func HTTPStatus(code string) int {
	switch code {
	case "ServiceUnavailable":
		return http.StatusServiceUnavailable
	case "InternalFailure", "InternalError":
		return http.StatusInternalServerError
	case "AccessDenied", "InvalidClientTokenId", "SignatureDoesNotMatch", "ExpiredToken",
		"MissingAuthenticationToken", "IDPRejectedClaim", "RegionDisabledException", "OptInRequired":
		return http.StatusForbidden
	default:
		// InvalidIdentityToken, ExpiredTokenException, IDPCommunicationError,
		// ValidationError, InvalidAction, MissingAction, Throttling, ...
		return http.StatusBadRequest
	}
}

type errorResponse struct {
	XMLName   xml.Name `xml:"ErrorResponse"`
	Xmlns     string   `xml:"xmlns,attr"`
	Error     errorBody
	RequestID string `xml:"RequestId"`
}

type errorBody struct {
	Type    string `xml:"Type"`
	Code    string `xml:"Code"`
	Message string `xml:"Message"`
}

type responseMetadata struct {
	RequestID string `xml:"RequestId"`
}

func newRequestID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func writeXML(w http.ResponseWriter, reqID string, status int, v any) {
	b, err := xml.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte("<ErrorResponse/>")
	}
	w.Header().Set("Content-Type", "text/xml")
	w.Header().Set("x-amzn-RequestId", reqID)
	w.WriteHeader(status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, reqID string, e *apiError) {
	typ := "Sender"
	if e.Status >= 500 {
		typ = "Receiver"
	}
	writeXML(w, reqID, e.Status, errorResponse{
		Xmlns:     Namespace,
		Error:     errorBody{Type: typ, Code: e.Code, Message: e.Message},
		RequestID: reqID,
	})
}

func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	reqID := newRequestID()
	if r.Method != http.MethodPost && r.Method != http.MethodGet {
		writeError(w, reqID, &apiError{Status: http.StatusMethodNotAllowed, Code: "InvalidHttpRequest", Message: "STS accepts GET and POST"})
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		writeError(w, reqID, errorf("MalformedQueryString", "reading request body: %v", err))
		return
	}
	if len(body) > maxBody {
		writeError(w, reqID, &apiError{Status: http.StatusRequestEntityTooLarge, Code: "RequestEntityTooLarge", Message: "request body too large"})
		return
	}
	form, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		writeError(w, reqID, errorf("MalformedQueryString", "malformed query string"))
		return
	}
	if r.Method == http.MethodPost {
		bf, err := url.ParseQuery(string(body))
		if err != nil {
			writeError(w, reqID, errorf("MalformedQueryString", "malformed form body"))
			return
		}
		for k, v := range bf {
			form[k] = append(form[k], v...)
		}
	}
	action := form.Get("Action")
	call := Call{Action: action, At: s.clk.Now()}
	throttled := !s.allow(s.throttleKey(r, form, action), call.At)

	s.mu.Lock()
	s.calls[action]++
	delay := s.delay
	var fault string
	if len(s.faults) > 0 {
		fault, s.faults = s.faults[0], s.faults[1:]
	}
	s.mu.Unlock()

	defer func() {
		s.mu.Lock()
		s.log = append(s.log, call)
		s.mu.Unlock()
	}()
	fail := func(e *apiError) {
		call.Code = e.Code
		writeError(w, reqID, e)
	}

	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			call.Code = "RequestAborted"
			return
		case <-s.closing:
			t.Stop()
			call.Code = "RequestAborted"
			return
		}
	}
	if fault != "" {
		fail(errorf(fault, "injected fault: %s", fault))
		return
	}
	if throttled {
		fail(errorf("Throttling", "Rate exceeded"))
		return
	}
	if action == "" {
		fail(errorf("MissingAction", "Missing Action"))
		return
	}
	if v := form.Get("Version"); v != APIVersion || !knownAction(action) {
		fail(errorf("InvalidAction", "Could not find operation %s for version %s", action, v))
		return
	}
	switch action {
	case ActionAssumeRole:
		out, e := s.assumeRole(r, body, form, &call)
		if e != nil {
			fail(e)
			return
		}
		writeXML(w, reqID, http.StatusOK, assumeRoleResponse{
			Xmlns:    Namespace,
			Result:   *out,
			Metadata: responseMetadata{RequestID: reqID},
		})
	case ActionAssumeRoleWithWebIdentity:
		out, e := s.assumeRoleWithWebIdentity(r.Context(), form, &call)
		if e != nil {
			fail(e)
			return
		}
		writeXML(w, reqID, http.StatusOK, assumeRoleWithWebIdentityResponse{
			Xmlns:    Namespace,
			Result:   *out,
			Metadata: responseMetadata{RequestID: reqID},
		})
	case ActionGetCallerIdentity:
		res, err := s.reg.VerifyRequest(r, body, sigv4.HeaderOptions{Service: "sts", Region: s.opts.Region})
		if err != nil {
			var se *sigv4.Error
			if errors.As(err, &se) {
				fail(errorf(se.Code, "%s", se.Message))
			} else {
				fail(errorf("IncompleteSignature", "%v", err))
			}
			return
		}
		c := res.Credentials
		call.AccessKeyID, call.Caller = c.AccessKeyID, c.Arn
		writeXML(w, reqID, http.StatusOK, getCallerIdentityResponse{
			Xmlns:    Namespace,
			Result:   getCallerIdentityResult{Arn: c.Arn, UserID: c.UserID, Account: c.Account},
			Metadata: responseMetadata{RequestID: reqID},
		})
	}
}

func knownAction(a string) bool {
	return a == ActionAssumeRole || a == ActionAssumeRoleWithWebIdentity || a == ActionGetCallerIdentity
}

type getCallerIdentityResponse struct {
	XMLName  xml.Name                `xml:"GetCallerIdentityResponse"`
	Xmlns    string                  `xml:"xmlns,attr"`
	Result   getCallerIdentityResult `xml:"GetCallerIdentityResult"`
	Metadata responseMetadata        `xml:"ResponseMetadata"`
}

type getCallerIdentityResult struct {
	Arn     string `xml:"Arn"`
	UserID  string `xml:"UserId"`
	Account string `xml:"Account"`
}

type assumeRoleWithWebIdentityResponse struct {
	XMLName  xml.Name                        `xml:"AssumeRoleWithWebIdentityResponse"`
	Xmlns    string                          `xml:"xmlns,attr"`
	Result   assumeRoleWithWebIdentityResult `xml:"AssumeRoleWithWebIdentityResult"`
	Metadata responseMetadata                `xml:"ResponseMetadata"`
}

type assumeRoleWithWebIdentityResult struct {
	SubjectFromWebIdentityToken string          `xml:"SubjectFromWebIdentityToken"`
	Audience                    string          `xml:"Audience"`
	AssumedRoleUser             assumedRoleUser `xml:"AssumedRoleUser"`
	Credentials                 credentials     `xml:"Credentials"`
	Provider                    string          `xml:"Provider"`
}

type assumedRoleUser struct {
	Arn           string `xml:"Arn"`
	AssumedRoleID string `xml:"AssumedRoleId"`
}

type credentials struct {
	AccessKeyID     string `xml:"AccessKeyId"`
	SecretAccessKey string `xml:"SecretAccessKey"`
	SessionToken    string `xml:"SessionToken"`
	Expiration      string `xml:"Expiration"`
}
