package oidc_test

import (
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // the thumbprint under test is SHA-1
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/clock"
)

var (
	tlsIssuer  *oidc.Issuer // https, EKS-like path
	httpIssuer *oidc.Issuer // plain http, root path, fake clock
	fakeClock  = clock.NewFake(time.Date(2026, 5, 4, 12, 0, 0, 0, time.UTC))
)

func TestMain(m *testing.M) {
	var err error
	tlsIssuer, err = oidc.New(func(o *oidc.Options) { o.TLS = true })
	if err != nil {
		panic(err)
	}
	httpIssuer, err = oidc.New(func(o *oidc.Options) { o.Path = "/"; o.Clock = fakeClock })
	if err != nil {
		panic(err)
	}
	code := m.Run()
	tlsIssuer.Close()
	httpIssuer.Close()
	os.Exit(code)
}

type discoveryDoc struct {
	Issuer                string   `json:"issuer"`
	JWKSURI               string   `json:"jwks_uri"`
	AuthorizationEndpoint string   `json:"authorization_endpoint"`
	ResponseTypes         []string `json:"response_types_supported"`
	SubjectTypes          []string `json:"subject_types_supported"`
	SigningAlgs           []string `json:"id_token_signing_alg_values_supported"`
	ClaimsSupported       []string `json:"claims_supported"`
}

func getJSON(t *testing.T, c *http.Client, url string, v any) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("GET %s: Content-Type %q", url, ct)
	}
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

func fetchKeys(t *testing.T, iss *oidc.Issuer) jose.JSONWebKeySet {
	t.Helper()
	var doc discoveryDoc
	getJSON(t, iss.Client(), iss.URL()+"/.well-known/openid-configuration", &doc)
	var set jose.JSONWebKeySet
	getJSON(t, iss.Client(), doc.JWKSURI, &set)
	return set
}

func TestDiscoveryDocument(t *testing.T) {
	for name, iss := range map[string]*oidc.Issuer{"https": tlsIssuer, "http": httpIssuer} {
		t.Run(name, func(t *testing.T) {
			var doc discoveryDoc
			getJSON(t, iss.Client(), iss.URL()+"/.well-known/openid-configuration", &doc)
			if doc.Issuer != iss.URL() {
				t.Errorf("issuer = %q, want %q", doc.Issuer, iss.URL())
			}
			if doc.JWKSURI != iss.URL()+"/keys" {
				t.Errorf("jwks_uri = %q, want %q", doc.JWKSURI, iss.URL()+"/keys")
			}
			if strings.Join(doc.SigningAlgs, ",") != "RS256" || strings.Join(doc.ResponseTypes, ",") != "id_token" ||
				strings.Join(doc.SubjectTypes, ",") != "public" || len(doc.ClaimsSupported) == 0 {
				t.Errorf("unexpected discovery document %+v", doc)
			}
		})
	}
}

func TestIssuerURLs(t *testing.T) {
	if !strings.HasPrefix(tlsIssuer.URL(), "https://127.0.0.1:") {
		t.Errorf("TLS issuer URL %q", tlsIssuer.URL())
	}
	// EKS-like: https://HOST/id/32-HEX
	_, path, _ := strings.Cut(strings.TrimPrefix(tlsIssuer.URL(), "https://"), "/")
	if !strings.HasPrefix(path, "id/") || len(path) != 3+32 || strings.Trim(path[3:], "0123456789ABCDEF") != "" {
		t.Errorf("issuer path %q is not /id/<32 upper-case hex>", path)
	}
	if tlsIssuer.HostPath() != strings.TrimPrefix(tlsIssuer.URL(), "https://") {
		t.Errorf("HostPath %q", tlsIssuer.HostPath())
	}
	if want := "http://" + httpIssuer.Addr().String(); httpIssuer.URL() != want {
		t.Errorf("http issuer URL %q, want %q", httpIssuer.URL(), want)
	}
	for _, c := range []struct {
		tls        bool
		addr, path string
		want       string
	}{
		{true, "198.51.100.7:443", "/", "https://198.51.100.7"},
		{true, "198.51.100.7:443", "", "https://198.51.100.7"},
		{true, "198.51.100.7:8443", "/id/X", "https://198.51.100.7:8443/id/X"},
		{false, "127.0.0.1:80", "id/X", "http://127.0.0.1/id/X"},
		{false, "127.0.0.1:443", "/", "http://127.0.0.1:443"},
		{true, "[::1]:443", "/", "https://[::1]"},
	} {
		if got := oidc.DeriveURL(c.tls, c.addr, c.path); got != c.want {
			t.Errorf("DeriveURL(%v, %q, %q) = %q, want %q", c.tls, c.addr, c.path, got, c.want)
		}
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := oidc.New(func(o *oidc.Options) {
		o.Listener = ln
		o.IssuerURL = "http://" + ln.Addr().String() + "/custom/path/"
	})
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	if iss.URL() != "http://"+ln.Addr().String()+"/custom/path" {
		t.Fatalf("URL %q", iss.URL())
	}
	var doc discoveryDoc
	getJSON(t, iss.Client(), iss.URL()+"/.well-known/openid-configuration", &doc)
	if doc.Issuer != iss.URL() {
		t.Fatalf("issuer %q", doc.Issuer)
	}
	if _, err := oidc.New(func(o *oidc.Options) { o.IssuerURL = "ftp://x" }); err == nil {
		t.Fatal("ftp issuer URL accepted")
	}
}

func TestJWKS(t *testing.T) {
	set := fetchKeys(t, tlsIssuer)
	if len(set.Keys) != 1 {
		t.Fatalf("%d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	if k.KeyID != tlsIssuer.KeyID() || k.Algorithm != "RS256" || k.Use != "sig" {
		t.Fatalf("key %s alg %s use %s, want %s RS256 sig", k.KeyID, k.Algorithm, k.Use, tlsIssuer.KeyID())
	}
	pub, ok := k.Key.(*rsa.PublicKey)
	if !ok || !k.IsPublic() {
		t.Fatalf("published key is %T, want *rsa.PublicKey", k.Key)
	}
	if pub.N.BitLen() < 2048 {
		t.Fatalf("RSA key of %d bits", pub.N.BitLen())
	}
}

type payload struct {
	Iss  string   `json:"iss"`
	Sub  string   `json:"sub"`
	Aud  []string `json:"aud"`
	Exp  int64    `json:"exp"`
	Iat  int64    `json:"iat"`
	Nbf  *int64   `json:"nbf"`
	Kube *struct {
		Namespace      string          `json:"namespace"`
		ServiceAccount oidc.ObjectRef  `json:"serviceaccount"`
		Pod            *oidc.ObjectRef `json:"pod"`
	} `json:"kubernetes.io"`
}

type header struct {
	Alg string `json:"alg"`
	Kid string `json:"kid"`
}

func decode(t *testing.T, tok string) (header, payload, string) {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts", len(parts))
	}
	var h header
	var p payload
	for i, v := range []any{&h, &p} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatal(err)
		}
	}
	return h, p, parts[2]
}

// verify checks tok against the issuer's published JWKS as a relying party
// would.
func verify(t *testing.T, iss *oidc.Issuer, tok string) error {
	t.Helper()
	set := fetchKeys(t, iss)
	jws, err := jose.ParseSignedCompact(tok, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return err
	}
	keys := set.Key(jws.Signatures[0].Header.KeyID)
	if len(keys) == 0 {
		return errors.New("kid not in JWKS")
	}
	_, err = jws.Verify(keys[0].Key)
	return err
}

func TestMintValidToken(t *testing.T) {
	sub := oidc.ServiceAccountSubject("mcp", "mcp-server")
	tok, err := httpIssuer.Mint(sub)
	if err != nil {
		t.Fatal(err)
	}
	if err := verify(t, httpIssuer, tok); err != nil {
		t.Fatalf("valid token does not verify: %v", err)
	}
	h, p, _ := decode(t, tok)
	now := fakeClock.Now()
	if h.Alg != "RS256" || h.Kid != httpIssuer.KeyID() {
		t.Errorf("header %+v", h)
	}
	if p.Iss != httpIssuer.URL() || p.Sub != sub || strings.Join(p.Aud, ",") != "sts.amazonaws.com" {
		t.Errorf("claims %+v", p)
	}
	if p.Iat != now.Unix() || p.Nbf == nil || *p.Nbf != now.Unix() || p.Exp != now.Add(24*time.Hour).Unix() {
		t.Errorf("times iat=%d nbf=%v exp=%d, now=%d", p.Iat, p.Nbf, p.Exp, now.Unix())
	}
	if p.Kube == nil || p.Kube.Namespace != "mcp" || p.Kube.ServiceAccount.Name != "mcp-server" ||
		p.Kube.ServiceAccount.UID == "" || p.Kube.Pod == nil || p.Kube.Pod.Name == "" {
		t.Errorf("kubernetes.io claims %+v", p.Kube)
	}
	// The service account's uid is stable across tokens; the pod's is not.
	_, p2, _ := decode(t, mint(t, httpIssuer, sub))
	if p2.Kube.ServiceAccount.UID != p.Kube.ServiceAccount.UID {
		t.Errorf("service account uid changed between tokens")
	}
	// A non-service-account subject gets no kubernetes.io block.
	_, p3, _ := decode(t, mint(t, httpIssuer, "alice"))
	if p3.Kube != nil {
		t.Errorf("kubernetes.io block for subject alice")
	}
}

func mint(t *testing.T, iss *oidc.Issuer, sub string, opts ...func(*oidc.Claims)) string {
	t.Helper()
	tok, err := iss.Mint(sub, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestMintBadTokens(t *testing.T) {
	sub := oidc.ServiceAccountSubject("mcp", "mcp-server")
	now := fakeClock.Now().Unix()
	cases := map[string]struct {
		opt      func(*oidc.Claims)
		verifies bool
		check    func(h header, p payload, sig string) bool
	}{
		"audience": {oidc.WithAudience("other", "more"), true,
			func(_ header, p payload, _ string) bool { return strings.Join(p.Aud, ",") == "other,more" }},
		"issuer": {oidc.WithIssuer("https://elsewhere.example"), true,
			func(_ header, p payload, _ string) bool { return p.Iss == "https://elsewhere.example" }},
		"expired": {oidc.Expired(), true,
			func(_ header, p payload, _ string) bool { return p.Exp < now && p.Iat < p.Exp }},
		"not yet valid": {oidc.NotYetValid(), true,
			func(_ header, p payload, _ string) bool { return p.Nbf != nil && *p.Nbf > now && p.Exp > *p.Nbf }},
		"lifetime": {oidc.WithLifetime(time.Hour), true,
			func(_ header, p payload, _ string) bool { return p.Exp == now+3600 }},
		"foreign key": {oidc.SignedByForeignKey(), false,
			func(h header, _ payload, _ string) bool { return h.Kid == httpIssuer.KeyID() && h.Alg == "RS256" }},
		"unknown kid": {oidc.WithKeyID("nope"), false,
			func(h header, _ payload, _ string) bool { return h.Kid == "nope" }},
		"alg none": {oidc.AlgNone(), false,
			func(h header, _ payload, sig string) bool { return h.Alg == "none" && sig == "" }},
		"HS256": {oidc.AlgHS256(), false,
			func(h header, _ payload, sig string) bool { return h.Alg == "HS256" && sig != "" }},
		"extra claims": {func(c *oidc.Claims) { c.Extra = map[string]any{"sub": "overridden"} }, true,
			func(_ header, p payload, _ string) bool { return p.Sub == "overridden" }},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			tok := mint(t, httpIssuer, sub, c.opt)
			h, p, sig := decode(t, tok)
			if !c.check(h, p, sig) {
				t.Fatalf("token does not have the bad property: header %+v claims %+v", h, p)
			}
			err := verify(t, httpIssuer, tok)
			if c.verifies && err != nil {
				t.Fatalf("signature should verify: %v", err)
			}
			if !c.verifies && err == nil {
				t.Fatal("signature verified, want failure")
			}
		})
	}
	if _, err := httpIssuer.Mint(sub, func(c *oidc.Claims) { c.Algorithm = "ES256" }); err == nil {
		t.Fatal("unsupported algorithm accepted")
	}
}

func TestRotateKey(t *testing.T) {
	iss, err := oidc.New()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	sub := oidc.ServiceAccountSubject("ns", "sa")
	old := mint(t, iss, sub)
	oldKid := iss.KeyID()
	newKid, err := iss.RotateKey()
	if err != nil {
		t.Fatal(err)
	}
	if newKid == oldKid || iss.KeyID() != newKid {
		t.Fatalf("kid after rotation %q (old %q)", iss.KeyID(), oldKid)
	}
	fresh := mint(t, iss, sub)
	if h, _, _ := decode(t, fresh); h.Kid != newKid {
		t.Fatalf("new token signed with %q, want %q", h.Kid, newKid)
	}
	if ids := iss.KeyIDs(); len(ids) != 2 || ids[0] != oldKid || ids[1] != newKid {
		t.Fatalf("published keys %v", ids)
	}
	for _, tok := range []string{old, fresh} {
		if err := verify(t, iss, tok); err != nil {
			t.Fatalf("token does not verify after rotation: %v", err)
		}
	}
	iss.DropOldKeys()
	if err := verify(t, iss, old); err == nil {
		t.Fatal("token of a dropped key still verifies")
	}
	if err := verify(t, iss, fresh); err != nil {
		t.Fatalf("current token: %v", err)
	}
}

func TestTokenFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "var/run/secrets/eks.amazonaws.com/serviceaccount/token")
	sub := oidc.ServiceAccountSubject("mcp", "mcp-server")
	tok, err := httpIssuer.WriteTokenFile(path, sub, oidc.WithAudience("sts.amazonaws.com", "extra"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	b, _ := os.ReadFile(path)
	if string(b) != tok {
		t.Fatal("file does not hold the returned token")
	}
	rotated, err := httpIssuer.RotateTokenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b, _ = os.ReadFile(path)
	if string(b) != rotated || rotated == tok {
		t.Fatal("rotation did not replace the token")
	}
	if _, p, _ := decode(t, rotated); p.Sub != sub || strings.Join(p.Aud, ",") != "sts.amazonaws.com,extra" {
		t.Fatalf("rotated token lost its claims: %+v", p)
	}
	entries, _ := os.ReadDir(filepath.Dir(path))
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the token (no temporary files)", len(entries))
	}
	if _, err := httpIssuer.RotateTokenFile(filepath.Join(dir, "other")); err == nil {
		t.Fatal("rotating an unknown file succeeded")
	}

	iss, err := oidc.New(func(o *oidc.Options) { o.TokenFileMode = 0o644 })
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	p2 := filepath.Join(dir, "token644")
	if _, err := iss.WriteTokenFile(p2, sub); err != nil {
		t.Fatal(err)
	}
	if st, _ := os.Stat(p2); st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", st.Mode().Perm())
	}
}

func TestTLS(t *testing.T) {
	leaf := tlsIssuer.Certificate()
	if leaf == nil {
		t.Fatal("no certificate")
	}
	if len(leaf.IPAddresses) == 0 || !leaf.IPAddresses[0].Equal(net.ParseIP("127.0.0.1")) {
		t.Fatalf("certificate IP SANs %v", leaf.IPAddresses)
	}
	sum := sha1.Sum(leaf.Raw) //nolint:gosec // see import
	if tlsIssuer.Thumbprint() != hex.EncodeToString(sum[:]) || len(tlsIssuer.Thumbprint()) != 40 {
		t.Fatalf("thumbprint %q", tlsIssuer.Thumbprint())
	}
	if httpIssuer.Thumbprint() != "" || httpIssuer.Certificate() != nil || httpIssuer.CertPool() != nil {
		t.Fatal("plain http issuer reports a certificate")
	}
	// A client that does not trust the certificate is refused.
	_, err := http.Get(tlsIssuer.URL() + "/keys")
	if err == nil {
		t.Fatal("untrusted client fetched the JWKS")
	}

	// A given certificate chain is served, and the thumbprint is the top
	// certificate's.
	cert, err := oidc.SelfSignedCertificate("127.0.0.1", "issuer.test")
	if err != nil {
		t.Fatal(err)
	}
	iss, err := oidc.New(func(o *oidc.Options) { o.Certificate = &cert; o.Path = "/" })
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	if !strings.HasPrefix(iss.URL(), "https://") || iss.Thumbprint() != oidc.Thumbprint(&cert) {
		t.Fatalf("URL %q thumbprint %q", iss.URL(), iss.Thumbprint())
	}
	if got := cert.Leaf.DNSNames; len(got) != 1 || got[0] != "issuer.test" {
		t.Fatalf("DNS SANs %v", got)
	}
	chain := tls.Certificate{Certificate: [][]byte{[]byte("leaf"), cert.Certificate[0]}}
	if oidc.Thumbprint(&chain) != oidc.Thumbprint(&cert) {
		t.Fatal("thumbprint is not the top certificate's")
	}
	fetchKeys(t, iss)
}

func TestFailingAndMethods(t *testing.T) {
	iss, err := oidc.New()
	if err != nil {
		t.Fatal(err)
	}
	defer iss.Close()
	status := func(method, path string) int {
		req, _ := http.NewRequest(method, iss.URL()+path, nil)
		resp, err := iss.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	before := iss.Fetches()
	if s := status("GET", "/keys"); s != 200 {
		t.Fatalf("GET /keys: %d", s)
	}
	if s := status("POST", "/keys"); s != http.StatusMethodNotAllowed {
		t.Fatalf("POST /keys: %d", s)
	}
	if s := status("GET", "/nope"); s != http.StatusNotFound {
		t.Fatalf("GET /nope: %d", s)
	}
	iss.SetFailing(true)
	for _, p := range []string{"/keys", "/.well-known/openid-configuration"} {
		if s := status("GET", p); s != http.StatusServiceUnavailable {
			t.Fatalf("failing GET %s: %d", p, s)
		}
	}
	iss.SetFailing(false)
	if s := status("GET", "/keys"); s != 200 {
		t.Fatalf("GET /keys after recovery: %d", s)
	}
	if got := iss.Fetches() - before; got != 5 {
		t.Fatalf("Fetches counted %d, want 5", got)
	}
	if err := iss.Close(); err != nil {
		t.Fatal(err)
	}
	if err := iss.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := iss.Client().Get(iss.URL() + "/keys"); err == nil {
		t.Fatal("closed issuer still serves")
	}
}

func TestParseServiceAccountSubject(t *testing.T) {
	for _, c := range []struct {
		sub    string
		ns, sa string
		ok     bool
	}{
		{"system:serviceaccount:mcp:mcp-server", "mcp", "mcp-server", true},
		{oidc.ServiceAccountSubject("a", "b"), "a", "b", true},
		{"system:serviceaccount:mcp", "", "", false},
		{"system:serviceaccount::sa", "", "", false},
		{"system:serviceaccount:ns:", "", "", false},
		{"system:serviceaccount:ns:sa:x", "", "", false},
		{"system:node:ip-10-0-0-1", "", "", false},
		{"", "", "", false},
	} {
		ns, sa, ok := oidc.ParseServiceAccountSubject(c.sub)
		if ns != c.ns || sa != c.sa || ok != c.ok {
			t.Errorf("ParseServiceAccountSubject(%q) = %q, %q, %v", c.sub, ns, sa, ok)
		}
	}
}

func FuzzParseServiceAccountSubject(f *testing.F) {
	for _, s := range []string{"system:serviceaccount:mcp:mcp-server", "system:serviceaccount:", "::", "system:serviceaccount:a:b:c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, sub string) {
		ns, sa, ok := oidc.ParseServiceAccountSubject(sub)
		if !ok {
			return
		}
		if ns == "" || sa == "" || strings.Contains(ns, ":") || strings.Contains(sa, ":") {
			t.Fatalf("accepted %q as %q/%q", sub, ns, sa)
		}
		if oidc.ServiceAccountSubject(ns, sa) != sub {
			t.Fatalf("round trip of %q gives %q", sub, oidc.ServiceAccountSubject(ns, sa))
		}
	})
}
