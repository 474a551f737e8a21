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

// TokenFileError is a problem with a projected service-account token file:
// the web identity token (IRSA) or the EKS Pod Identity token. It names the
// path and the fix; it never contains the token.
type TokenFileError struct {
	// Mode is WebIdentity (AWS_WEB_IDENTITY_TOKEN_FILE) or PodIdentity
	// (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
	Mode   Mode
	Path   string
	Reason error // one of the ErrToken* sentinels
	Detail string
	Fix    string
	Err    error // underlying error, if any
}

func (e *TokenFileError) Error() string {
	kind := "web identity token file"
	if e.Mode == PodIdentity {
		kind = "EKS Pod Identity token file"
	}
	s := fmt.Sprintf("irsa: %s %s: %v", kind, e.Path, e.Reason)
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
	// Mode is the token's use: WebIdentity (the zero value counts as
	// WebIdentity) for AWS_WEB_IDENTITY_TOKEN_FILE, PodIdentity for
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE. It picks the default audience
	// and the fixes errors suggest.
	Mode Mode
	// Audience the token must carry. Default DefaultAudience, or
	// PodIdentityAudience for PodIdentity.
	Audience string
	// Now is the time to check expiry against. Default time.Now().
	Now time.Time
}

// tokenFixes are the remedies CheckTokenFile suggests, per mode.
type tokenFixes struct {
	missing, unreadable, mount, empty, malformed, expired, audience string
}

func fixesFor(m Mode, audience string) tokenFixes {
	if m == PodIdentity {
		return tokenFixes{
			missing:    "the EKS Pod Identity webhook did not mount the token: check that a pod identity association exists for this namespace and service account (aws eks list-pod-identity-associations --cluster CLUSTER) and recreate the pod (pods created before the association are not mutated)",
			unreadable: "the container user cannot read the token: set securityContext.fsGroup in the pod spec (for example fsGroup: 65534) so the projected volume is group-readable",
			mount:      "check the projected volume mount (/var/run/secrets/pods.eks.amazonaws.com/serviceaccount)",
			empty:      "the kubelet has not written the projected token; check the pod's events and the eks-pod-identity-token volume",
			malformed:  "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE must point at the projected service-account token (normally /var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token)",
			expired:    "the kubelet refreshes projected tokens before they expire; an expired file means a copied or stale token: mount the projected volume directly and check the node's kubelet",
			audience:   fmt.Sprintf("the EKS Pod Identity token's audience must be %s: mount the token the EKS webhook projects, not another service-account token", audience),
		}
	}
	return tokenFixes{
		missing:    "the EKS pod identity webhook did not mount the projected token: check that the service account has the eks.amazonaws.com/role-arn annotation and recreate the pod (pods created before the annotation are not mutated)",
		unreadable: "the container user cannot read the token: set securityContext.fsGroup in the pod spec (for example fsGroup: 65534) so the projected volume is group-readable",
		mount:      "check the projected volume mount",
		empty:      "the kubelet has not written the projected token; check the pod's events and the service account token volume",
		malformed:  "AWS_WEB_IDENTITY_TOKEN_FILE must point at the projected service-account token (normally /var/run/secrets/eks.amazonaws.com/serviceaccount/token)",
		expired:    "the kubelet refreshes projected tokens before they expire; an expired file means a copied or stale token: mount the projected volume directly and check the node's kubelet",
		audience:   fmt.Sprintf("the projected token's audience must be %s (eks.amazonaws.com/audience annotation or the webhook's token audience) and the IAM OIDC provider must list it as a client ID", audience),
	}
}

// CheckTokenFile reads and checks a projected service-account token at
// path — the IRSA web identity token or, with TokenCheck.Mode PodIdentity,
// the EKS Pod Identity token: it must exist, be readable, non-empty, a JWT,
// unexpired and carry the expected audience. It returns the token's
// claims, which hold no secret.
func CheckTokenFile(path string, chk TokenCheck) (Claims, error) {
	mode := WebIdentity
	if chk.Mode == PodIdentity {
		mode = PodIdentity
	}
	if chk.Audience == "" {
		chk.Audience = DefaultAudience
		if mode == PodIdentity {
			chk.Audience = PodIdentityAudience
		}
	}
	if chk.Now.IsZero() {
		chk.Now = time.Now()
	}
	fix := fixesFor(mode, chk.Audience)
	fail := func(reason error, detail, fixText string, err error) *TokenFileError {
		return &TokenFileError{Mode: mode, Path: path, Reason: reason, Detail: detail, Fix: fixText, Err: err}
	}
	b, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return Claims{}, fail(ErrTokenMissing, "", fix.missing, err)
	case errors.Is(err, fs.ErrPermission):
		return Claims{}, fail(ErrTokenUnreadable, "", fix.unreadable, err)
	case err != nil:
		return Claims{}, fail(ErrTokenUnreadable, "", fix.mount, err)
	}
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return Claims{}, fail(ErrTokenEmpty, "", fix.empty, nil)
	}
	c, err := ParseTokenClaims(tok)
	if err != nil {
		return Claims{}, fail(ErrTokenMalformed, "", fix.malformed, err)
	}
	if !c.Expiry.IsZero() && !chk.Now.Before(c.Expiry) {
		return c, fail(ErrTokenExpired,
			fmt.Sprintf("expired at %s (%s ago)", c.Expiry.Format(time.RFC3339), chk.Now.Sub(c.Expiry).Round(time.Second)), fix.expired, nil)
	}
	if !c.NotBefore.IsZero() && chk.Now.Add(time.Minute).Before(c.NotBefore) {
		return c, fail(ErrTokenNotYetValid, fmt.Sprintf("not valid before %s", c.NotBefore.Format(time.RFC3339)), "check the clock of this host", nil)
	}
	if !c.HasAudience(chk.Audience) {
		return c, fail(ErrTokenAudience, fmt.Sprintf("audience is %q, want %q", c.Audience, chk.Audience), fix.audience, nil)
	}
	return c, nil
}
