package sigv4

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm  = "AWS4-HMAC-SHA256"
	timeFormat = "20060102T150405Z"
	dateFormat = "20060102"
	// MaxSkew is how far a header-signed request's X-Amz-Date may be from
	// the server's clock (AWS: 15 minutes).
	MaxSkew = 15 * time.Minute
	// EmptySHA256 is the hex SHA-256 of an empty payload.
	EmptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	// UnsignedPayload is S3's marker for an unsigned body.
	UnsignedPayload = "UNSIGNED-PAYLOAD"
)

// Error is a verification failure carrying the AWS error code a real service
// answers with.
type Error struct {
	Code    string // e.g. SignatureDoesNotMatch, InvalidClientTokenId, ExpiredToken
	Message string
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }

func errorf(code, format string, a ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, a...)}
}

// Result describes a request that verified.
type Result struct {
	Credentials Credentials
	Region      string
	Service     string
	SignedAt    time.Time
	// Expires is the presigned URL's end of validity (zero for header-signed).
	Expires time.Time
	// Query is the decoded query of a presigned URL, signature parameters
	// included.
	Query url.Values
}

// PresignOptions narrow what VerifyPresigned accepts.
type PresignOptions struct {
	Method  string // default GET
	Service string // required signing name, e.g. rds-db, elasticache
	Region  string // required region; empty accepts any (reported in Result)
	// Host is the host (and port, if the signer included one) the token must
	// be signed for; empty takes the URL's host.
	Host string
	// MaxExpires caps X-Amz-Expires (RDS and ElastiCache: 900 s). Zero: 7 days.
	MaxExpires time.Duration
	// PayloadHash is the hashed payload of the canonical request. Default:
	// EmptySHA256 (S3 presigned URLs use UnsignedPayload).
	PayloadHash string
	// S3 selects S3's canonical URI rules (no double encoding).
	S3 bool
	// Header holds the request's headers, for presigned URLs that sign more
	// than host (an S3 PUT URL signing Content-Type, say). Nil: only host
	// may be signed, as for RDS and ElastiCache tokens, which are used
	// without any HTTP request.
	Header http.Header
}

// VerifyPresigned checks a presigned URL the way AWS does: algorithm,
// credential scope (service, region, date), X-Amz-Date within
// [signed, signed+X-Amz-Expires], host signed, session token matching the
// issued credentials, credentials not expired, and the signature recomputed
// with the secret key issued for X-Amz-Credential's access key.
func (r *Registry) VerifyPresigned(u *url.URL, o PresignOptions) (*Result, error) {
	q, err := parseQuery(u.RawQuery)
	if err != nil {
		return nil, errorf("AuthorizationQueryParametersError", "malformed query: %v", err)
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Date", "X-Amz-Expires", "X-Amz-SignedHeaders", "X-Amz-Signature"} {
		if len(q[k]) != 1 || q[k][0] == "" {
			return nil, errorf("AuthorizationQueryParametersError", "query-string authentication requires exactly one %s parameter", k)
		}
	}
	if q.Get("X-Amz-Algorithm") != algorithm {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Algorithm only supports %q", algorithm)
	}
	sc, err := parseScope(q.Get("X-Amz-Credential"))
	if err != nil {
		return nil, err
	}
	signedAt, err := time.Parse(timeFormat, q.Get("X-Amz-Date"))
	if err != nil {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Date must be in the ISO8601 Long Format \"yyyyMMdd'T'HHmmss'Z'\"")
	}
	exp, err := strconv.Atoi(q.Get("X-Amz-Expires"))
	if err != nil || exp < 1 {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Expires should be a number greater than 0")
	}
	maxExp := o.MaxExpires
	if maxExp == 0 {
		maxExp = 7 * 24 * time.Hour
	}
	if time.Duration(exp)*time.Second > maxExp {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-Expires must be less than %d seconds", int(maxExp.Seconds()))
	}
	if err := checkScope(sc, signedAt, o.Service, o.Region); err != nil {
		return nil, err
	}
	now := r.clk.Now()
	expires := signedAt.Add(time.Duration(exp) * time.Second)
	if now.Before(signedAt.Add(-MaxSkew)) {
		return nil, errorf("AccessDenied", "request is not yet valid (signed at %s)", signedAt.Format(timeFormat))
	}
	if !now.Before(expires) {
		return nil, errorf("AccessDenied", "request has expired (expired at %s)", expires.Format(timeFormat))
	}
	creds, err := r.credsFor(sc.accessKey, q.Get("X-Amz-Security-Token"), now)
	if err != nil {
		return nil, err
	}
	signed := strings.Split(q.Get("X-Amz-SignedHeaders"), ";")
	host := o.Host
	if host == "" {
		host = u.Host
	}
	if !containsString(signed, "host") {
		return nil, errorf("AuthorizationQueryParametersError", "X-Amz-SignedHeaders must include host")
	}
	var hb strings.Builder
	for _, h := range signed {
		if h == "host" {
			hb.WriteString("host:" + trimHeader(host) + "\n")
			continue
		}
		if o.Header == nil {
			return nil, errorf("AuthorizationQueryParametersError", "a token can only sign the host header, not %q", h)
		}
		vals := o.Header.Values(h)
		if len(vals) == 0 {
			return nil, errorf("SignatureDoesNotMatch", "signed header %q is missing from the request", h)
		}
		trimmed := make([]string, len(vals))
		for i, v := range vals {
			trimmed[i] = trimHeader(v)
		}
		hb.WriteString(h + ":" + strings.Join(trimmed, ",") + "\n")
	}
	method := o.Method
	if method == "" {
		method = http.MethodGet
	}
	payload := o.PayloadHash
	if payload == "" {
		payload = EmptySHA256
	}
	canon := strings.Join([]string{
		method,
		canonicalURI(u, o.S3),
		canonicalQuery(q, "X-Amz-Signature"),
		hb.String(),
		q.Get("X-Amz-SignedHeaders"),
		payload,
	}, "\n")
	want := signature(creds.SecretAccessKey, sc, q.Get("X-Amz-Date"), canon)
	if subtle.ConstantTimeCompare([]byte(want), []byte(strings.ToLower(q.Get("X-Amz-Signature")))) != 1 {
		return nil, errorf("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
	}
	return &Result{Credentials: creds, Region: sc.region, Service: sc.service, SignedAt: signedAt, Expires: expires, Query: q}, nil
}

// HeaderOptions narrow what VerifyRequest accepts.
type HeaderOptions struct {
	Service string // required signing name, e.g. sts, secretsmanager
	Region  string // required region; empty accepts any
	S3      bool   // S3 canonical URI rules
}

// VerifyRequest checks a request signed in its Authorization header. body is
// the complete request payload (the caller has read it); its SHA-256 must
// match X-Amz-Content-Sha256 when that header is present.
func (r *Registry) VerifyRequest(req *http.Request, body []byte, o HeaderOptions) (*Result, error) {
	auth := req.Header.Get("Authorization")
	if auth == "" {
		return nil, errorf("MissingAuthenticationToken", "request is missing Authentication Token")
	}
	if !strings.HasPrefix(auth, algorithm+" ") {
		return nil, errorf("IncompleteSignature", "unsupported authorization type")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(strings.TrimPrefix(auth, algorithm+" "), ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(f), "=")
		if !ok {
			return nil, errorf("IncompleteSignature", "authorization header requires 'Credential', 'SignedHeaders' and 'Signature'")
		}
		fields[k] = v
	}
	if fields["Credential"] == "" || fields["SignedHeaders"] == "" || fields["Signature"] == "" {
		return nil, errorf("IncompleteSignature", "authorization header requires 'Credential', 'SignedHeaders' and 'Signature'")
	}
	sc, err := parseScope(fields["Credential"])
	if err != nil {
		return nil, err
	}
	amzDate := req.Header.Get("X-Amz-Date")
	signedAt, err := time.Parse(timeFormat, amzDate)
	if err != nil {
		return nil, errorf("IncompleteSignature", "X-Amz-Date header is missing or malformed")
	}
	if err := checkScope(sc, signedAt, o.Service, o.Region); err != nil {
		return nil, err
	}
	now := r.clk.Now()
	if d := now.Sub(signedAt); d > MaxSkew || d < -MaxSkew {
		return nil, errorf("SignatureDoesNotMatch", "Signature expired: %s is now earlier than %s (%s - 15 min.)",
			amzDate, now.Add(-MaxSkew).UTC().Format(timeFormat), now.UTC().Format(timeFormat))
	}
	creds, err := r.credsFor(sc.accessKey, req.Header.Get("X-Amz-Security-Token"), now)
	if err != nil {
		return nil, err
	}
	signed := strings.Split(fields["SignedHeaders"], ";")
	if !containsString(signed, "host") {
		return nil, errorf("SignatureDoesNotMatch", "host must be a signed header")
	}
	if req.Header.Get("X-Amz-Security-Token") != "" && !containsString(signed, "x-amz-security-token") && !o.S3 {
		// The SDK signs the token header; AWS then requires it signed.
		return nil, errorf("SignatureDoesNotMatch", "x-amz-security-token must be a signed header")
	}
	bodyHash := sha256Hex(body)
	payload := req.Header.Get("X-Amz-Content-Sha256")
	switch {
	case payload == "":
		payload = bodyHash
	case payload == UnsignedPayload || strings.HasPrefix(payload, "STREAMING-"):
	case payload != bodyHash:
		return nil, errorf("XAmzContentSHA256Mismatch", "the provided 'x-amz-content-sha256' header does not match what was computed")
	}
	var hb strings.Builder
	for _, h := range signed {
		var v string
		switch h {
		case "host":
			v = req.Host
		case "content-length":
			v = strconv.FormatInt(req.ContentLength, 10)
		default:
			vals := req.Header.Values(h)
			if len(vals) == 0 {
				return nil, errorf("SignatureDoesNotMatch", "signed header %q is missing", h)
			}
			for i := range vals {
				vals[i] = trimHeader(vals[i])
			}
			v = strings.Join(vals, ",")
		}
		hb.WriteString(h + ":" + trimHeader(v) + "\n")
	}
	q, err := parseQuery(req.URL.RawQuery)
	if err != nil {
		return nil, errorf("SignatureDoesNotMatch", "malformed query: %v", err)
	}
	canon := strings.Join([]string{
		req.Method,
		canonicalURI(req.URL, o.S3),
		canonicalQuery(q, ""),
		hb.String(),
		fields["SignedHeaders"],
		payload,
	}, "\n")
	want := signature(creds.SecretAccessKey, sc, amzDate, canon)
	if subtle.ConstantTimeCompare([]byte(want), []byte(fields["Signature"])) != 1 {
		return nil, errorf("SignatureDoesNotMatch", "the request signature we calculated does not match the signature you provided")
	}
	return &Result{Credentials: creds, Region: sc.region, Service: sc.service, SignedAt: signedAt, Query: q}, nil
}

// ReadAndVerify reads req.Body fully (restoring it for later readers) and
// verifies the request.
func (r *Registry) ReadAndVerify(req *http.Request, o HeaderOptions) (*Result, []byte, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, nil, errorf("IncompleteSignature", "reading body: %v", err)
		}
		body = b
		req.Body = io.NopCloser(strings.NewReader(string(b)))
	}
	res, err := r.VerifyRequest(req, body, o)
	return res, body, err
}

func (r *Registry) credsFor(accessKey, token string, now time.Time) (Credentials, error) {
	c, ok := r.Lookup(accessKey)
	if !ok {
		return Credentials{}, errorf("InvalidClientTokenId", "the security token included in the request is invalid")
	}
	if c.SessionToken != "" {
		if token == "" {
			return Credentials{}, errorf("InvalidClientTokenId", "the security token included in the request is invalid: temporary credentials require their session token")
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(c.SessionToken)) != 1 {
			return Credentials{}, errorf("InvalidClientTokenId", "the security token included in the request is invalid")
		}
	} else if token != "" {
		return Credentials{}, errorf("InvalidClientTokenId", "the security token included in the request is invalid")
	}
	if !c.Expires.IsZero() && !now.Before(c.Expires) {
		return Credentials{}, errorf("ExpiredToken", "the security token included in the request is expired")
	}
	return c, nil
}

type scope struct {
	accessKey, date, region, service string
}

func (s scope) String() string {
	return s.date + "/" + s.region + "/" + s.service + "/aws4_request"
}

func parseScope(cred string) (scope, error) {
	p := strings.Split(cred, "/")
	if len(p) != 5 || p[4] != "aws4_request" || p[0] == "" || p[2] == "" || p[3] == "" {
		return scope{}, errorf("IncompleteSignature", "credential must have the form ACCESS_KEY/DATE/REGION/SERVICE/aws4_request, got %q", redactKey(cred))
	}
	return scope{accessKey: p[0], date: p[1], region: p[2], service: p[3]}, nil
}

func redactKey(cred string) string {
	if i := strings.Index(cred, "/"); i > 4 {
		return cred[:4] + "…" + cred[i:]
	}
	return "…"
}

func checkScope(sc scope, signedAt time.Time, service, region string) error {
	if sc.date != signedAt.Format(dateFormat) {
		return errorf("SignatureDoesNotMatch", "credential scope date %s does not match X-Amz-Date %s", sc.date, signedAt.Format(timeFormat))
	}
	if service != "" && sc.service != service {
		return errorf("SignatureDoesNotMatch", "credential should be scoped to correct service: '%s'", service)
	}
	if region != "" && sc.region != region {
		return errorf("SignatureDoesNotMatch", "credential should be scoped to a valid region, not '%s'", sc.region)
	}
	return nil
}

func signature(secret string, sc scope, amzDate, canonical string) string {
	sts := algorithm + "\n" + amzDate + "\n" + sc.String() + "\n" + sha256Hex([]byte(canonical))
	k := hmacSHA256([]byte("AWS4"+secret), sc.date)
	k = hmacSHA256(k, sc.region)
	k = hmacSHA256(k, sc.service)
	k = hmacSHA256(k, "aws4_request")
	return hex.EncodeToString(hmacSHA256(k, sts))
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

func sha256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// parseQuery decodes a raw query without treating '+' as a space, as the
// canonical-request rules do.
func parseQuery(raw string) (url.Values, error) {
	v := url.Values{}
	if raw == "" {
		return v, nil
	}
	for _, kv := range strings.Split(raw, "&") {
		if kv == "" {
			continue
		}
		k, val, _ := strings.Cut(kv, "=")
		dk, err := url.PathUnescape(k)
		if err != nil {
			return nil, err
		}
		dv, err := url.PathUnescape(val)
		if err != nil {
			return nil, err
		}
		v[dk] = append(v[dk], dv)
	}
	return v, nil
}

func canonicalQuery(q url.Values, skip string) string {
	type kv struct{ k, v string }
	var all []kv
	for k, vs := range q {
		if k == skip {
			continue
		}
		for _, v := range vs {
			all = append(all, kv{uriEncode(k, true), uriEncode(v, true)})
		}
	}
	sort.Slice(all, func(i, j int) bool {
		if all[i].k != all[j].k {
			return all[i].k < all[j].k
		}
		return all[i].v < all[j].v
	})
	parts := make([]string, len(all))
	for i, p := range all {
		parts[i] = p.k + "=" + p.v
	}
	return strings.Join(parts, "&")
}

func canonicalURI(u *url.URL, s3 bool) string {
	p := u.Path
	if p == "" {
		p = "/"
	}
	if s3 {
		// S3 keys may hold "//", "." and "..": S3 signs the path as sent.
		return uriEncode(p, false)
	}
	// Every service but S3 normalizes the path (RFC 3986 dot segments,
	// consecutive slashes) and encodes its segments twice. Vault forwards
	// a login's GetCallerIdentity to STS as "//", signed as "/".
	return uriEncode(uriEncode(normalizePath(p), false), false)
}

// normalizePath removes empty, "." and ".." segments, keeping a trailing
// slash: "//example//" is "/example/", "/a/b/../.." is "/".
func normalizePath(p string) string {
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	n := "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(p, "/") {
		n += "/"
	}
	return n
}

// uriEncode applies the SigV4 UriEncode: every byte except the unreserved
// characters A-Z a-z 0-9 - _ . ~ becomes %XX (upper-case hex); '/' is kept
// unless encodeSlash.
func uriEncode(s string, encodeSlash bool) string {
	const hexd = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_', c == '.', c == '~':
			b.WriteByte(c)
		case c == '/' && !encodeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexd[c>>4])
			b.WriteByte(hexd[c&15])
		}
	}
	return b.String()
}

func trimHeader(v string) string {
	return strings.Join(strings.Fields(v), " ")
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
