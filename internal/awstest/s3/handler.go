package s3

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

// apiError is an S3 error answer.
type apiError struct {
	status int
	code   string
	msg    string
	extra  []xmlField
	// detail is appended to msg in parentheses: what exactly was wrong,
	// where S3's own message is generic.
	detail string
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func newErr(status int, code, format string, a ...any) *apiError {
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// request is one request being served.
type request struct {
	s       *Server
	r       *http.Request
	w       http.ResponseWriter
	op      string
	bucket  string
	key     string
	query   url.Values
	caller  sigv4.Credentials
	reqID   string
	hostID  string
	mode    string // x-amz-content-sha256; "" for presigned requests
	body    []byte // read before verifying a signed payload hash
	payload *payload

	contentEncoding string // Content-Encoding without aws-chunked
}

// resource is the request's path for error documents.
func (q *request) resource() string {
	if q.bucket == "" {
		return "/"
	}
	if q.key == "" {
		return "/" + q.bucket
	}
	return "/" + q.bucket + "/" + q.key
}

// ServeHTTP implements the S3 REST API with path-style addressing.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := &request{s: s, r: r, w: w, reqID: strings.ToUpper(newID(8)), query: r.URL.Query()}
	q.hostID = base64.StdEncoding.EncodeToString([]byte(newID(24)))
	h := w.Header()
	h.Set("X-Amz-Request-Id", q.reqID)
	h.Set("X-Amz-Id-2", q.hostID)
	h.Set("Server", "AmazonS3")
	h.Set("Date", httpTime(s.clk.Now()))

	path := strings.TrimPrefix(r.URL.Path, "/")
	q.bucket, q.key, _ = strings.Cut(path, "/")
	q.op = operation(r.Method, q.bucket, q.key, q.query, r.Header)

	s.mu.Lock()
	s.calls[q.op]++
	s.mu.Unlock()

	if err := s.serve(q); err != nil {
		q.drain()
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = newErr(http.StatusInternalServerError, "InternalError", "We encountered an internal error. Please try again.")
			ae.detail = err.Error()
		}
		q.writeError(ae)
	}
}

// drain reads what is left of a refused request's body (up to a bound),
// so the client, still sending, reads the error instead of a reset
// connection. (A client waiting for "100 Continue" is then asked for its
// body too: with net/http, answering without reading it races with the
// client starting to send and ends in a reset.)
func (q *request) drain() {
	r := q.r
	if r.Body == nil || q.payload != nil || q.body != nil {
		return
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxDrain))
}

// maxDrain bounds how much of a refused body is read.
const maxDrain = 64 << 20

func (q *request) writeError(e *apiError) {
	msg := e.msg
	if e.detail != "" {
		msg += " (" + e.detail + ")"
	}
	writeError(q.w, &apiError{status: e.status, code: e.code, msg: msg, extra: e.extra}, q.resource(), q.reqID, q.hostID)
}

func writeError(w http.ResponseWriter, e *apiError, ids ...string) {
	var resource, reqID, hostID string
	if len(ids) == 3 {
		resource, reqID, hostID = ids[0], ids[1], ids[2]
	}
	body := errorDocument(e.code, e.msg, e.extra, resource, reqID, hostID)
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	if e.status == http.StatusServiceUnavailable || e.code == "SlowDown" {
		h.Set("Retry-After", "1")
	}
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// subresources the stand-in does not implement: a request naming one
// answers NotImplemented (after authentication, as S3 checks it first).
var unsupportedSubresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "encryption", "intelligent-tiering",
	"inventory", "legal-hold", "lifecycle", "logging", "metadataTable", "metrics", "notification",
	"object-lock", "ownershipControls", "policy", "policyStatus", "publicAccessBlock",
	"replication", "requestPayment", "restore", "retention", "select", "tagging", "torrent",
	"versioning", "versions", "website", "renameObject",
}

// operation names the S3 operation a path-style request asks for, "" for
// anything this stand-in does not implement.
func operation(method, bucketName, key string, q url.Values, h http.Header) string {
	for _, sr := range unsupportedSubresources {
		if _, ok := q[sr]; ok {
			return ""
		}
	}
	has := func(k string) bool { _, ok := q[k]; return ok }
	switch {
	case bucketName == "":
		if method == http.MethodGet {
			return OpListBuckets
		}
	case key == "":
		switch method {
		case http.MethodGet:
			switch {
			case has("location"):
				return OpGetBucketLocation
			case has("uploads"):
				return ""
			case q.Get("list-type") == "2":
				return OpListObjectsV2
			}
		case http.MethodHead:
			return OpHeadBucket
		case http.MethodPut:
			return OpCreateBucket
		case http.MethodDelete:
			return OpDeleteBucket
		case http.MethodPost:
			if has("delete") {
				return OpDeleteObjects
			}
		}
	default:
		switch method {
		case http.MethodGet:
			if !has("uploadId") {
				return OpGetObject
			}
		case http.MethodHead:
			return OpHeadObject
		case http.MethodPut:
			switch {
			case has("uploadId") && has("partNumber"):
				if h.Get("X-Amz-Copy-Source") != "" {
					return "" // UploadPartCopy
				}
				return OpUploadPart
			case has("uploadId") || has("partNumber"):
				return ""
			case h.Get("X-Amz-Copy-Source") != "":
				return OpCopyObject
			}
			return OpPutObject
		case http.MethodPost:
			switch {
			case has("uploads"):
				return OpCreateMultipartUpload
			case has("uploadId"):
				return OpCompleteMultipartUpload
			}
		case http.MethodDelete:
			if has("uploadId") {
				return OpAbortMultipartUpload
			}
			return OpDeleteObject
		}
	}
	return ""
}

func (s *Server) serve(q *request) error {
	if err := s.authenticate(q); err != nil {
		return err
	}
	if err := s.takeFault(q.op); err != nil {
		return err
	}
	if len(q.key) > maxKeyLength {
		e := newErr(http.StatusBadRequest, "KeyTooLongError", "Your key is too long")
		e.extra = []xmlField{{"Size", strconv.Itoa(len(q.key))}, {"MaxSizeAllowed", strconv.Itoa(maxKeyLength)}}
		return e
	}
	switch q.op {
	case OpListBuckets:
		return s.listBuckets(q)
	case OpCreateBucket:
		return s.createBucket(q)
	}
	if q.op == "" {
		return newErr(http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.")
	}
	if !s.bucketExists(q.bucket) {
		e := newErr(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		e.extra = []xmlField{{"BucketName", q.bucket}}
		return e
	}
	switch q.op {
	case OpHeadBucket:
		return s.headBucket(q)
	case OpDeleteBucket:
		return s.deleteBucket(q)
	case OpGetBucketLocation:
		return s.getBucketLocation(q)
	case OpListObjectsV2:
		return s.listObjectsV2(q)
	case OpDeleteObjects:
		return s.deleteObjects(q)
	case OpPutObject:
		return s.putObject(q)
	case OpCopyObject:
		return s.copyObject(q)
	case OpGetObject, OpHeadObject:
		return s.getObject(q)
	case OpDeleteObject:
		return s.deleteObject(q)
	case OpCreateMultipartUpload:
		return s.createMultipartUpload(q)
	case OpUploadPart:
		return s.uploadPart(q)
	case OpCompleteMultipartUpload:
		return s.completeMultipartUpload(q)
	case OpAbortMultipartUpload:
		return s.abortMultipartUpload(q)
	}
	return newErr(http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.")
}

func (s *Server) takeFault(op string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i, f := range s.faults {
		if f.op != "" && f.op != op {
			continue
		}
		f.n--
		if f.n <= 0 {
			s.faults = append(s.faults[:i], s.faults[i+1:]...)
		}
		switch f.code {
		case "InternalError":
			return newErr(http.StatusInternalServerError, f.code, "We encountered an internal error. Please try again.")
		case "SlowDown":
			return newErr(http.StatusServiceUnavailable, f.code, "Please reduce your request rate.")
		case "ServiceUnavailable":
			return newErr(http.StatusServiceUnavailable, f.code, "Service is unable to handle request.")
		}
		return newErr(http.StatusBadRequest, f.code, "injected fault")
	}
	return nil
}

func (s *Server) bucketExists(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.buckets[name]
	return ok
}

// authenticate verifies the request's SigV4 signature (Authorization
// header or presigned query) against the registry, and for a signed
// payload its SHA-256.
func (s *Server) authenticate(q *request) error {
	r := q.r
	auth := r.Header.Get("Authorization")
	presigned := q.query.Has("X-Amz-Algorithm") || q.query.Has("X-Amz-Credential") || q.query.Has("X-Amz-Signature")
	switch {
	case auth != "" && presigned:
		return newErr(http.StatusBadRequest, "InvalidArgument", "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified")
	case presigned:
		return s.authenticatePresigned(q)
	case auth == "":
		return newErr(http.StatusForbidden, "AccessDenied", "Access Denied")
	case !strings.HasPrefix(auth, "AWS4-HMAC-SHA256 "):
		return newErr(http.StatusBadRequest, "InvalidRequest", "The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
	}
	q.mode = r.Header.Get("X-Amz-Content-Sha256")
	var body []byte
	switch q.mode {
	case "":
		return newErr(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
	case unsignedPayload, streamingUnsignedTrailer,
		streamingSigned, streamingSignedTrailer, streamingECDSA, streamingECDSATrailer:
	default:
		if !isHexSHA256(q.mode) {
			return newErr(http.StatusBadRequest, "InvalidArgument", "x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD or a valid sha256 value.")
		}
		if r.Header.Get("Content-Encoding") != "" && strings.Contains(strings.ToLower(r.Header.Get("Content-Encoding")), "aws-chunked") {
			return newErr(http.StatusBadRequest, "InvalidRequest", "Content-Encoding aws-chunked needs a STREAMING-* x-amz-content-sha256, not a payload hash")
		}
		b, err := readBody(r, s.opts.MaxObjectSize)
		if err != nil {
			return err
		}
		body = b
	}
	res, err := s.reg.VerifyRequest(r, body, sigv4.HeaderOptions{Service: "s3", Region: s.opts.Region, S3: true})
	if err != nil {
		return s.authError(q, err, false)
	}
	q.caller = res.Credentials
	q.body = body
	if err := unsignedAmzHeaders(r, signedHeadersOf(auth)); err != nil {
		return err
	}
	switch q.mode {
	case streamingSigned, streamingSignedTrailer, streamingECDSA, streamingECDSATrailer:
		return newErr(http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.").
			withDetail("this stand-in verifies UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER and signed SHA-256 payloads, not %s (the AWS SDK for Go v2 never sends it)", q.mode)
	}
	return nil
}

func (e *apiError) withDetail(format string, a ...any) *apiError {
	e.detail = fmt.Sprintf(format, a...)
	return e
}

func (s *Server) authenticatePresigned(q *request) error {
	r := q.r
	u := &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery, Host: r.Host}
	res, err := s.reg.VerifyPresigned(u, sigv4.PresignOptions{
		Method: r.Method, Service: "s3", Region: s.opts.Region, Host: r.Host,
		PayloadHash: sigv4.UnsignedPayload, S3: true, Header: r.Header,
	})
	if err != nil {
		return s.authError(q, err, true)
	}
	q.caller = res.Credentials
	// Every x-amz-* header sent with a presigned URL must be among its
	// signed headers.
	return unsignedAmzHeaders(r, strings.Split(res.Query.Get("X-Amz-SignedHeaders"), ";"))
}

// signedHeadersOf returns the SignedHeaders of an Authorization header.
func signedHeadersOf(auth string) []string {
	for _, f := range strings.Split(strings.TrimPrefix(auth, "AWS4-HMAC-SHA256 "), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "SignedHeaders="); ok {
			return strings.Split(v, ";")
		}
	}
	return nil
}

// unsignedAmzHeaders refuses x-amz-* headers left out of the signature,
// as S3 does.
func unsignedAmzHeaders(r *http.Request, signed []string) error {
	set := map[string]bool{}
	for _, h := range signed {
		set[strings.ToLower(h)] = true
	}
	var missing []string
	for name := range r.Header {
		l := strings.ToLower(name)
		if strings.HasPrefix(l, "x-amz-") && !set[l] {
			missing = append(missing, l)
		}
	}
	if len(missing) > 0 {
		e := newErr(http.StatusForbidden, "AccessDenied", "There were headers present in the request which were not signed")
		e.extra = []xmlField{{"HeadersNotSigned", strings.Join(missing, ", ")}}
		return e
	}
	return nil
}

func isHexSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// authError translates a SigV4 verification failure into S3's answer.
func (s *Server) authError(q *request, err error, presigned bool) error {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return newErr(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; %v", err)
	}
	switch se.Code {
	case "MissingAuthenticationToken":
		return newErr(http.StatusForbidden, "AccessDenied", "Access Denied")
	case "InvalidClientTokenId":
		akid, token := credentialOf(q.r, q.query, presigned)
		if c, ok := s.reg.Lookup(akid); ok && c.SessionToken != "" && token != "" {
			return newErr(http.StatusBadRequest, "InvalidToken", "The provided token is malformed or otherwise invalid.")
		}
		e := newErr(http.StatusForbidden, "InvalidAccessKeyId", "The AWS Access Key Id you provided does not exist in our records.")
		e.extra = []xmlField{{"AWSAccessKeyId", akid}}
		return e
	case "ExpiredToken":
		return newErr(http.StatusBadRequest, "ExpiredToken", "The provided token has expired.")
	case "XAmzContentSHA256Mismatch":
		return newErr(http.StatusBadRequest, "XAmzContentSHA256Mismatch", "The provided 'x-amz-content-sha256' header does not match what was computed.")
	case "AccessDenied": // presigned URL expired or not yet valid
		msg := "Request has expired"
		if strings.Contains(se.Message, "not yet valid") {
			msg = "Request is not valid yet"
		}
		return newErr(http.StatusForbidden, "AccessDenied", "%s", msg)
	case "AuthorizationQueryParametersError":
		return newErr(http.StatusBadRequest, se.Code, "%s", se.Message)
	case "IncompleteSignature":
		if presigned {
			return newErr(http.StatusBadRequest, "AuthorizationQueryParametersError", "%s", se.Message)
		}
		return newErr(http.StatusBadRequest, "AuthorizationHeaderMalformed", "The authorization header is malformed; %s", se.Message)
	}
	// SignatureDoesNotMatch and its scope variants.
	switch {
	case strings.HasPrefix(se.Message, "Signature expired"):
		return newErr(http.StatusForbidden, "RequestTimeTooSkewed", "The difference between the request time and the current time is too large.")
	case strings.Contains(se.Message, "scoped to a valid region"), strings.Contains(se.Message, "scoped to correct service"),
		strings.HasPrefix(se.Message, "credential scope date"):
		code, what := "AuthorizationHeaderMalformed", "The authorization header is malformed"
		if presigned {
			code, what = "AuthorizationQueryParametersError", "Error parsing the X-Amz-Credential parameter"
		}
		e := newErr(http.StatusBadRequest, code, "%s; %s", what, se.Message)
		e.extra = []xmlField{{"Region", s.opts.Region}}
		return e
	}
	return newErr(http.StatusForbidden, "SignatureDoesNotMatch", "The request signature we calculated does not match the signature you provided. Check your key and signing method.")
}

// credentialOf extracts the access key id and session token a request was
// signed with.
func credentialOf(r *http.Request, query url.Values, presigned bool) (akid, token string) {
	if presigned {
		akid, _, _ = strings.Cut(query.Get("X-Amz-Credential"), "/")
		return akid, query.Get("X-Amz-Security-Token")
	}
	for _, f := range strings.Split(strings.TrimPrefix(r.Header.Get("Authorization"), "AWS4-HMAC-SHA256 "), ",") {
		if v, ok := strings.CutPrefix(strings.TrimSpace(f), "Credential="); ok {
			akid, _, _ = strings.Cut(v, "/")
		}
	}
	return akid, r.Header.Get("X-Amz-Security-Token")
}

// authorize asks the mini-IAM whether the caller's role may perform
// action on resource; ctx adds condition keys (e.g. s3:prefix) to
// aws:SecureTransport.
func (s *Server) authorize(q *request, action, resource string, ctx map[string]string) error {
	if s.allowed(q, action, resource, ctx) {
		return nil
	}
	return newErr(http.StatusForbidden, "AccessDenied",
		"User: %s is not authorized to perform: %s on resource: \"%s\" because no identity-based policy allows the %s action",
		q.caller.Arn, action, resource, action)
}

func (s *Server) allowed(q *request, action, resource string, ctx map[string]string) bool {
	if q.caller.RoleARN == "" {
		return false // IAM users of the registry have no policies
	}
	role, ok := s.iam.Role(q.caller.RoleARN)
	if !ok {
		return false
	}
	c := map[string]string{"aws:SecureTransport": strconv.FormatBool(q.r.TLS != nil)}
	for k, v := range ctx {
		c[k] = v
	}
	return iam.Evaluate(role.Policies, action, resource, c)
}

func bucketARN(b string) string    { return "arn:aws:s3:::" + b }
func objectARN(b, k string) string { return "arn:aws:s3:::" + b + "/" + k }
