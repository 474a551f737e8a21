package secretsmanager

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

const (
	contentType  = "application/x-amz-json-1.1"
	targetPrefix = "secretsmanager."
)

// apiError is an error answer. lower selects the "message" member the
// authentication layer of AWS's JSON services uses; the service's own
// modelled errors use "Message".
type apiError struct {
	status int
	code   string
	msg    string
	lower  bool
}

func (e *apiError) Error() string { return e.code + ": " + e.msg }

func newErr(code, format string, a ...any) *apiError {
	status := http.StatusBadRequest
	if code == "InternalServiceError" || code == "InternalFailure" {
		status = http.StatusInternalServerError
	}
	if code == "ServiceUnavailable" {
		status = http.StatusServiceUnavailable
	}
	return &apiError{status: status, code: code, msg: fmt.Sprintf(format, a...)}
}

// Messages Secrets Manager sends, for injected faults.
var faultMessages = map[string]string{
	"InternalServiceError": "An error occurred on the server side.",
	"ThrottlingException":  "Rate exceeded",
	"DecryptionFailure":    "Secrets Manager can't decrypt the protected secret text using the provided KMS key.",
	"ServiceUnavailable":   "The request has failed due to a temporary failure of the server.",
}

const msgNotFound = "Secrets Manager can't find the specified secret."

// ServeHTTP implements the AWS JSON 1.1 protocol endpoint.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	down, delay := s.down, s.delay
	op, _ := strings.CutPrefix(r.Header.Get("X-Amz-Target"), targetPrefix)
	s.calls[op]++
	s.mu.Unlock()

	if down {
		if hj, ok := w.(http.Hijacker); ok {
			if c, _, err := hj.Hijack(); err == nil {
				_ = c.Close()
				return
			}
		}
		panic(http.ErrAbortHandler)
	}
	if delay > 0 {
		t := time.NewTimer(delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	out, err := s.serve(r, op)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = newErr("InternalServiceError", "%v", err)
		}
		writeError(w, ae)
		return
	}
	body, mErr := json.Marshal(out)
	if mErr != nil {
		writeError(w, newErr("InternalServiceError", "%v", mErr))
		return
	}
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Amzn-RequestId", newRequestID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

func writeError(w http.ResponseWriter, e *apiError) {
	key := "Message"
	if e.lower {
		key = "message"
	}
	body, _ := json.Marshal(map[string]string{"__type": e.code, key: e.msg})
	h := w.Header()
	h.Set("Content-Type", contentType)
	h.Set("X-Amzn-RequestId", newRequestID())
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	_, _ = w.Write(body)
}

// authError translates a SigV4 verification failure into what a JSON
// protocol service answers.
func authError(err error) *apiError {
	var se *sigv4.Error
	if !errors.As(err, &se) {
		return &apiError{status: http.StatusBadRequest, code: "IncompleteSignatureException", msg: err.Error(), lower: true}
	}
	e := &apiError{status: http.StatusBadRequest, lower: true, msg: se.Message}
	switch se.Code {
	case "MissingAuthenticationToken":
		e.code, e.msg = "MissingAuthenticationTokenException", "Missing Authentication Token"
	case "InvalidClientTokenId":
		e.code, e.msg = "UnrecognizedClientException", "The security token included in the request is invalid."
	case "ExpiredToken":
		e.code, e.msg = "ExpiredTokenException", "The security token included in the request is expired"
	case "IncompleteSignature":
		e.code = "IncompleteSignatureException"
	default: // SignatureDoesNotMatch, XAmzContentSHA256Mismatch
		e.code = "InvalidSignatureException"
		if strings.HasPrefix(se.Message, "the request signature we calculated") {
			e.msg = "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details."
		}
	}
	return e
}

func (s *Server) serve(r *http.Request, op string) (any, error) {
	if r.Method != http.MethodPost || (r.URL.Path != "/" && r.URL.Path != "") {
		return nil, newErr("UnknownOperationException", "")
	}
	res, body, err := s.reg.ReadAndVerify(r, sigv4.HeaderOptions{Service: "secretsmanager", Region: s.opts.Region})
	if err != nil {
		return nil, authError(err)
	}
	if ct := r.Header.Get("Content-Type"); ct != contentType {
		return nil, newErr("UnknownOperationException", "")
	}
	if err := s.takeFault(op); err != nil {
		return nil, err
	}
	c := caller{arn: res.Credentials.Arn, role: res.Credentials.RoleARN}
	switch op {
	case OpGetSecretValue:
		var in getSecretValueInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return s.getSecretValue(c, in)
	case OpDescribeSecret:
		var in describeSecretInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return s.describeSecret(c, in)
	case OpCreateSecret:
		var in createSecretInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return s.createSecret(c, in)
	case OpPutSecretValue:
		var in putSecretValueInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return s.putSecretValue(c, in)
	case OpUpdateSecretVersionStage:
		var in updateSecretVersionStageInput
		if err := decode(body, &in); err != nil {
			return nil, err
		}
		return s.updateSecretVersionStage(c, in)
	}
	return nil, newErr("UnknownOperationException", "")
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
		msg, ok := faultMessages[f.code]
		if !ok {
			msg = "injected fault"
		}
		return newErr(f.code, "%s", msg)
	}
	return nil
}

// decode reads a JSON request body; a body that is not a JSON object of
// the right member types is a SerializationException, as in AWS.
func decode(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	if err := json.Unmarshal(body, v); err != nil {
		return newErr("SerializationException", "%s", serializationMessage(err))
	}
	return nil
}

func serializationMessage(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return fmt.Sprintf("Unexpected value type in payload for member %s", te.Field)
	}
	return "Start of structure or map found where not expected."
}

// epoch marshals as the epoch-seconds number (with milliseconds) AWS JSON
// protocols use for timestamps.
type epoch time.Time

func (t epoch) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return []byte(strconv.FormatFloat(float64(ms)/1000, 'f', -1, 64)), nil
}

func epochPtr(t time.Time) *epoch {
	if t.IsZero() {
		return nil
	}
	e := epoch(t)
	return &e
}
