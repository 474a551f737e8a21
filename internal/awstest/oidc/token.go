package oidc

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// Claims describe a token to mint. [Issuer.Mint] fills them with a valid
// service-account token's claims, then applies the caller's options, so an
// option changes exactly one thing about an otherwise valid token.
type Claims struct {
	Issuer    string    // iss; default the issuer's URL
	Subject   string    // sub; Mint's argument
	Audience  []string  // aud; default [DefaultAudience]
	IssuedAt  time.Time // iat; default now
	NotBefore time.Time // nbf; default now; zero omits the claim
	Expiry    time.Time // exp; default now + TokenLifetime; zero omits the claim
	// Kubernetes is the "kubernetes.io" claim block; Mint fills it when the
	// subject is system:serviceaccount:NS:SA. nil omits it.
	Kubernetes *Kubernetes
	// Extra claims, merged last (they may override the ones above).
	Extra map[string]any

	// Algorithm is the JWS "alg": "" or "RS256" signs with the issuer's
	// key; "none" produces an unsigned token; "HS256" signs with a random
	// HMAC secret.
	Algorithm string
	// KeyID overrides the "kid" header (default: the signing key's id).
	KeyID string
	// ForeignKey signs with an RSA key that is not in the JWKS, under the
	// current key id: the signature does not verify.
	ForeignKey bool
}

// Kubernetes is the "kubernetes.io" claim block of a projected
// service-account token.
type Kubernetes struct {
	Namespace      string     `json:"namespace"`
	Pod            *ObjectRef `json:"pod,omitempty"`
	ServiceAccount ObjectRef  `json:"serviceaccount"`
}

// ObjectRef names a Kubernetes object.
type ObjectRef struct {
	Name string `json:"name"`
	UID  string `json:"uid"`
}

// ServiceAccountSubject returns system:serviceaccount:NAMESPACE:NAME.
func ServiceAccountSubject(namespace, name string) string {
	return "system:serviceaccount:" + namespace + ":" + name
}

// ParseServiceAccountSubject splits system:serviceaccount:NAMESPACE:NAME.
func ParseServiceAccountSubject(sub string) (namespace, name string, ok bool) {
	rest, found := strings.CutPrefix(sub, "system:serviceaccount:")
	if !found {
		return "", "", false
	}
	namespace, name, ok = strings.Cut(rest, ":")
	if !ok || namespace == "" || name == "" || strings.Contains(name, ":") {
		return "", "", false
	}
	return namespace, name, true
}

// WithAudience sets aud.
func WithAudience(aud ...string) func(*Claims) {
	return func(c *Claims) { c.Audience = aud }
}

// WithIssuer sets iss.
func WithIssuer(iss string) func(*Claims) {
	return func(c *Claims) { c.Issuer = iss }
}

// WithLifetime sets exp to iat + d.
func WithLifetime(d time.Duration) func(*Claims) {
	return func(c *Claims) { c.Expiry = c.IssuedAt.Add(d) }
}

// Expired makes a token that expired a minute before now (issued an hour
// before that).
func Expired() func(*Claims) {
	return func(c *Claims) {
		now := c.IssuedAt
		c.Expiry = now.Add(-time.Minute)
		c.IssuedAt = c.Expiry.Add(-time.Hour)
		c.NotBefore = c.IssuedAt
	}
}

// NotYetValid sets nbf an hour after now.
func NotYetValid() func(*Claims) {
	return func(c *Claims) { c.NotBefore = c.IssuedAt.Add(time.Hour) }
}

// SignedByForeignKey signs with a key that is not in the JWKS.
func SignedByForeignKey() func(*Claims) {
	return func(c *Claims) { c.ForeignKey = true }
}

// WithKeyID sets the "kid" header (e.g. to one the JWKS does not have).
func WithKeyID(kid string) func(*Claims) {
	return func(c *Claims) { c.KeyID = kid }
}

// AlgNone produces an unsigned token ("alg":"none", empty signature).
func AlgNone() func(*Claims) {
	return func(c *Claims) { c.Algorithm = "none" }
}

// AlgHS256 signs with HMAC-SHA256 under a random secret, the classic
// algorithm-confusion attack on RS256 verifiers.
func AlgHS256() func(*Claims) {
	return func(c *Claims) { c.Algorithm = string(jose.HS256) }
}

// DefaultClaims returns the claims Mint starts from for sub.
func (i *Issuer) DefaultClaims(sub string) Claims {
	now := i.clk.Now().Truncate(time.Second)
	c := Claims{
		Issuer:    i.url,
		Subject:   sub,
		Audience:  []string{DefaultAudience},
		IssuedAt:  now,
		NotBefore: now,
		Expiry:    now.Add(i.opts.TokenLifetime),
	}
	if ns, sa, ok := ParseServiceAccountSubject(sub); ok {
		c.Kubernetes = &Kubernetes{
			Namespace:      ns,
			Pod:            &ObjectRef{Name: sa + "-" + strings.ToLower(randHex(4)), UID: newUID()},
			ServiceAccount: ObjectRef{Name: sa, UID: i.saUID(sub)},
		}
	}
	return c
}

func (i *Issuer) saUID(sub string) string {
	i.mu.Lock()
	defer i.mu.Unlock()
	if u, ok := i.saUIDs[sub]; ok {
		return u
	}
	u := newUID()
	i.saUIDs[sub] = u
	return u
}

func newUID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := fmt.Sprintf("%x", b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

func (c *Claims) payload() ([]byte, error) {
	m := map[string]any{}
	if c.Issuer != "" {
		m["iss"] = c.Issuer
	}
	if c.Subject != "" {
		m["sub"] = c.Subject
	}
	if len(c.Audience) > 0 {
		m["aud"] = c.Audience
	}
	if !c.IssuedAt.IsZero() {
		m["iat"] = c.IssuedAt.Unix()
	}
	if !c.NotBefore.IsZero() {
		m["nbf"] = c.NotBefore.Unix()
	}
	if !c.Expiry.IsZero() {
		m["exp"] = c.Expiry.Unix()
	}
	if c.Kubernetes != nil {
		m["kubernetes.io"] = c.Kubernetes
	}
	for k, v := range c.Extra {
		m[k] = v
	}
	return json.Marshal(m)
}

// Mint returns a signed service-account token (compact JWS) for sub, e.g.
// [ServiceAccountSubject]("mcp", "mcp-server"). Options make it bad in
// one chosen way; see [Claims].
func (i *Issuer) Mint(sub string, optFns ...func(*Claims)) (string, error) {
	c := i.DefaultClaims(sub)
	for _, fn := range optFns {
		fn(&c)
	}
	return i.sign(&c)
}

func (i *Issuer) sign(c *Claims) (string, error) {
	payload, err := c.payload()
	if err != nil {
		return "", fmt.Errorf("oidc: encode claims: %w", err)
	}
	i.mu.Lock()
	cur := i.keys[len(i.keys)-1]
	i.mu.Unlock()
	kid := cur.kid
	if c.KeyID != "" {
		kid = c.KeyID
	}
	var key any
	alg := jose.SignatureAlgorithm(c.Algorithm)
	switch alg {
	case "", jose.RS256:
		alg = jose.RS256
		key = cur.priv
		if c.ForeignKey {
			if key, err = i.foreignKey(); err != nil {
				return "", err
			}
		}
	case jose.HS256:
		secret := make([]byte, 32)
		if _, err := rand.Read(secret); err != nil {
			return "", err
		}
		key = secret
	case "none":
		hdr, _ := json.Marshal(map[string]string{"alg": "none", "kid": kid})
		enc := base64.RawURLEncoding
		return enc.EncodeToString(hdr) + "." + enc.EncodeToString(payload) + ".", nil
	default:
		return "", fmt.Errorf("oidc: unsupported Algorithm %q (want RS256, HS256 or none)", c.Algorithm)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, nil)
	if err != nil {
		return "", fmt.Errorf("oidc: signer: %w", err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", fmt.Errorf("oidc: sign: %w", err)
	}
	return jws.CompactSerialize()
}

func (i *Issuer) foreignKey() (*rsa.PrivateKey, error) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if i.foreign == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, fmt.Errorf("oidc: generate key: %w", err)
		}
		i.foreign = k
	}
	return i.foreign, nil
}

// WriteTokenFile mints a token for sub and writes it to path the way the
// kubelet refreshes a projected token volume: into a temporary file in the
// same directory, then renamed over path, so a reader sees either the old
// or the new token, never a partial one. Missing parent directories are
// created (0755); the file gets Options.TokenFileMode (default 0600). The
// issuer remembers sub and optFns for [Issuer.RotateTokenFile]. It returns
// the token.
func (i *Issuer) WriteTokenFile(path, sub string, optFns ...func(*Claims)) (string, error) {
	tok, err := i.Mint(sub, optFns...)
	if err != nil {
		return "", err
	}
	if err := writeAtomic(path, []byte(tok), os.FileMode(i.opts.TokenFileMode)); err != nil {
		return "", err
	}
	i.mu.Lock()
	i.files[path] = tokenFile{sub: sub, opts: optFns}
	i.mu.Unlock()
	return tok, nil
}

// RotateTokenFile replaces the token at path (written earlier by
// WriteTokenFile) with a freshly minted one for the same subject and
// options, and returns it.
func (i *Issuer) RotateTokenFile(path string) (string, error) {
	i.mu.Lock()
	f, ok := i.files[path]
	i.mu.Unlock()
	if !ok {
		return "", fmt.Errorf("oidc: %s was not written by WriteTokenFile", path)
	}
	return i.WriteTokenFile(path, f.sub, f.opts...)
}

func writeAtomic(path string, data []byte, mode os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("oidc: token file directory: %w", err)
	}
	tmp, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("oidc: token file: %w", err)
	}
	name := tmp.Name()
	fail := func(err error) error {
		tmp.Close()
		os.Remove(name)
		return fmt.Errorf("oidc: write token file %s: %w", path, err)
	}
	if err := tmp.Chmod(mode); err != nil {
		return fail(err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fail(err)
	}
	if err := tmp.Sync(); err != nil {
		return fail(err)
	}
	if err := tmp.Close(); err != nil {
		return fail(err)
	}
	if err := os.Rename(name, path); err != nil {
		os.Remove(name)
		return fmt.Errorf("oidc: write token file %s: %w", path, err)
	}
	return nil
}
