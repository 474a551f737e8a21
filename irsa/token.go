package irsa

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"time"
)

// DefaultAudience is the audience STS requires of IRSA tokens.
const DefaultAudience = "sts.amazonaws.com"

// Claims are the diagnostic fields of a service-account token.
type Claims struct {
	Issuer    string
	Subject   string // system:serviceaccount:NAMESPACE:NAME
	Audience  []string
	Expiry    time.Time
	IssuedAt  time.Time
	NotBefore time.Time
	Algorithm string // from the JOSE header
	KeyID     string
}

// ServiceAccount splits Subject into namespace and service-account name.
func (c Claims) ServiceAccount() (namespace, name string, ok bool) {
	p := strings.Split(c.Subject, ":")
	if len(p) != 4 || p[0] != "system" || p[1] != "serviceaccount" || p[2] == "" || p[3] == "" {
		return "", "", false
	}
	return p[2], p[3], true
}

// HasAudience reports whether aud is among the token's audiences.
func (c Claims) HasAudience(aud string) bool {
	for _, a := range c.Audience {
		if a == aud {
			return true
		}
	}
	return false
}

// ParseTokenClaims decodes a JWT's header and claims WITHOUT verifying its
// signature: for diagnostics only. STS verifies the signature.
func ParseTokenClaims(token string) (Claims, error) {
	token = strings.TrimSpace(token)
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, fmt.Errorf("irsa: not a JWT: want 3 dot-separated parts, got %d", len(parts))
	}
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err := decodeSegment(parts[0], &hdr); err != nil {
		return Claims{}, fmt.Errorf("irsa: not a JWT: header: %w", err)
	}
	var raw struct {
		Iss string          `json:"iss"`
		Sub string          `json:"sub"`
		Aud json.RawMessage `json:"aud"`
		Exp *json.Number    `json:"exp"`
		Iat *json.Number    `json:"iat"`
		Nbf *json.Number    `json:"nbf"`
	}
	if err := decodeSegment(parts[1], &raw); err != nil {
		return Claims{}, fmt.Errorf("irsa: not a JWT: claims: %w", err)
	}
	c := Claims{Issuer: raw.Iss, Subject: raw.Sub, Algorithm: hdr.Alg, KeyID: hdr.Kid}
	if len(raw.Aud) > 0 && string(raw.Aud) != "null" {
		var one string
		if err := json.Unmarshal(raw.Aud, &one); err == nil {
			c.Audience = []string{one}
		} else if err := json.Unmarshal(raw.Aud, &c.Audience); err != nil {
			return Claims{}, fmt.Errorf("irsa: not a JWT: aud must be a string or an array of strings")
		}
	}
	var err error
	if c.Expiry, err = numericDate(raw.Exp); err != nil {
		return Claims{}, fmt.Errorf("irsa: not a JWT: exp: %w", err)
	}
	if c.IssuedAt, err = numericDate(raw.Iat); err != nil {
		return Claims{}, fmt.Errorf("irsa: not a JWT: iat: %w", err)
	}
	if c.NotBefore, err = numericDate(raw.Nbf); err != nil {
		return Claims{}, fmt.Errorf("irsa: not a JWT: nbf: %w", err)
	}
	return c, nil
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(seg, "="))
	if err != nil {
		return errors.New("not base64url")
	}
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		return errors.New("not a JSON object")
	}
	return nil
}

func numericDate(n *json.Number) (time.Time, error) {
	if n == nil {
		return time.Time{}, nil
	}
	f, err := n.Float64()
	if err != nil || f < 0 || f > 1e11 {
		return time.Time{}, fmt.Errorf("invalid NumericDate %q", n.String())
	}
	return time.Unix(int64(f), 0).UTC(), nil
}

// TokenFileError is a problem with the web identity token file. It names
// the path and the fix; it never contains the token.
type TokenFileError struct {
	Path   string
	Reason error // one of the ErrToken* sentinels
	Detail string
	Fix    string
	Err    error // underlying error, if any
}

func (e *TokenFileError) Error() string {
	s := fmt.Sprintf("irsa: web identity token file %s: %v", e.Path, e.Reason)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	if e.Fix != "" {
		s += " — " + e.Fix
	}
	return s
}

// Unwrap exposes the sentinel and the underlying error to errors.Is/As.
func (e *TokenFileError) Unwrap() []error {
	if e.Err != nil {
		return []error{e.Reason, e.Err}
	}
	return []error{e.Reason}
}

// Token-file problems, reachable with errors.Is through a *TokenFileError.
var (
	ErrTokenMissing     = errors.New("does not exist")
	ErrTokenUnreadable  = errors.New("cannot be read")
	ErrTokenEmpty       = errors.New("is empty")
	ErrTokenMalformed   = errors.New("is not a JWT")
	ErrTokenExpired     = errors.New("token has expired")
	ErrTokenAudience    = errors.New("token audience is wrong")
	ErrTokenNotYetValid = errors.New("token is not valid yet")
)

// TokenCheck configures CheckTokenFile.
type TokenCheck struct {
	// Audience the token must carry. Default DefaultAudience.
	Audience string
	// Now is the time to check expiry against. Default time.Now().
	Now time.Time
}

// CheckTokenFile reads and checks the projected service-account token at
// path: it must exist, be readable, non-empty, a JWT, unexpired and carry
// the audience STS expects. It returns the token's claims, which hold no
// secret.
func CheckTokenFile(path string, chk TokenCheck) (Claims, error) {
	if chk.Audience == "" {
		chk.Audience = DefaultAudience
	}
	if chk.Now.IsZero() {
		chk.Now = time.Now()
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Claims{}, &TokenFileError{Path: path, Reason: ErrTokenMissing, Err: err,
			Fix: "the EKS pod identity webhook did not mount the projected token: check that the service account has the eks.amazonaws.com/role-arn annotation and recreate the pod (pods created before the annotation are not mutated)"}
	case errors.Is(err, fs.ErrPermission):
		return Claims{}, &TokenFileError{Path: path, Reason: ErrTokenUnreadable, Err: err,
			Fix: "the container user cannot read the token: set securityContext.fsGroup in the pod spec (for example fsGroup: 65534) so the projected volume is group-readable"}
	case err != nil:
		return Claims{}, &TokenFileError{Path: path, Reason: ErrTokenUnreadable, Err: err, Fix: "check the projected volume mount"}
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return Claims{}, &TokenFileError{Path: path, Reason: ErrTokenEmpty,
			Fix: "the kubelet has not written the projected token; check the pod's events and the service account token volume"}
	}
	c, err := ParseTokenClaims(tok)
	if err != nil {
		return Claims{}, &TokenFileError{Path: path, Reason: ErrTokenMalformed, Err: err,
			Fix: "AWS_WEB_IDENTITY_TOKEN_FILE must point at the projected service-account token (normally /var/run/secrets/eks.amazonaws.com/serviceaccount/token)"}
	}
	if !c.Expiry.IsZero() && !chk.Now.Before(c.Expiry) {
		return c, &TokenFileError{Path: path, Reason: ErrTokenExpired,
			Detail: fmt.Sprintf("expired at %s (%s ago)", c.Expiry.Format(time.RFC3339), chk.Now.Sub(c.Expiry).Round(time.Second)),
			Fix:    "the kubelet refreshes projected tokens before they expire; an expired file means a copied or stale token: mount the projected volume directly and check the node's kubelet"}
	}
	if !c.NotBefore.IsZero() && chk.Now.Add(time.Minute).Before(c.NotBefore) {
		return c, &TokenFileError{Path: path, Reason: ErrTokenNotYetValid,
			Detail: fmt.Sprintf("not valid before %s", c.NotBefore.Format(time.RFC3339)),
			Fix:    "check the clock of this host"}
	}
	if !c.HasAudience(chk.Audience) {
		return c, &TokenFileError{Path: path, Reason: ErrTokenAudience,
			Detail: fmt.Sprintf("audience is %q, want %q", c.Audience, chk.Audience),
			Fix:    fmt.Sprintf("the projected token's audience must be %s (eks.amazonaws.com/audience annotation or the webhook's token audience) and the IAM OIDC provider must list it as a client ID", chk.Audience)}
	}
	return c, nil
}
