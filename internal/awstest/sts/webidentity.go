package sts

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-jose/go-jose/v4"
)

var sessionNameRE = regexp.MustCompile(`^[\w+=,.@-]*$`)

// asymmetric are the JWS algorithms STS can verify against a JWKS. Anything
// else ("none", HMAC) can never be a valid identity token.
var asymmetric = map[string]bool{
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
}

const msgNotAuthorized = "Not authorized to perform sts:AssumeRoleWithWebIdentity"

// tokenClaims are the claims STS reads.
type tokenClaims struct {
	Iss string          `json:"iss"`
	Sub string          `json:"sub"`
	Aud json.RawMessage `json:"aud"`
	Exp *json.Number    `json:"exp"`
	Nbf *json.Number    `json:"nbf"`
}

func (c tokenClaims) audiences() ([]string, bool) {
	if len(c.Aud) == 0 {
		return nil, true
	}
	var one string
	if err := json.Unmarshal(c.Aud, &one); err == nil {
		return []string{one}, true
	}
	var many []string
	if err := json.Unmarshal(c.Aud, &many); err != nil {
		return nil, false
	}
	return many, true
}

func numericDate(n *json.Number) (time.Time, bool, error) {
	if n == nil {
		return time.Time{}, false, nil
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, true, err
	}
	return time.Unix(int64(f), 0), true, nil
}

func decodeClaims(payload []byte) (tokenClaims, error) {
	var c tokenClaims
	dec := json.NewDecoder(strings.NewReader(string(payload)))
	dec.UseNumber()
	err := dec.Decode(&c)
	return c, err
}

type validationErrors []string

func (v *validationErrors) add(format string, a ...any) { *v = append(*v, fmt.Sprintf(format, a...)) }

func (v validationErrors) err() *apiError {
	if len(v) == 0 {
		return nil
	}
	n := "1 validation error detected: "
	if len(v) > 1 {
		n = fmt.Sprintf("%d validation errors detected: ", len(v))
	}
	return errorf("ValidationError", "%s%s", n, strings.Join(v, "; "))
}

func checkLength(v *validationErrors, form url.Values, name, member string, minLen, maxLen int) (string, bool) {
	vals, present := form[name]
	if !present || len(vals) == 0 {
		v.add("Value null at '%s' failed to satisfy constraint: Member must not be null", member)
		return "", false
	}
	s := vals[0]
	switch {
	case len(s) < minLen:
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length greater than or equal to %d", shorten(s, member), member, minLen)
		return s, false
	case len(s) > maxLen:
		v.add("Value '%s' at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", shorten(s, member), member, maxLen)
		return s, false
	}
	return s, true
}

// shorten keeps tokens out of error messages.
func shorten(s, member string) string {
	if member == "webIdentityToken" {
		return "***"
	}
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}

func (s *Server) assumeRoleWithWebIdentity(ctx context.Context, form url.Values, call *Call) (*assumeRoleWithWebIdentityResult, *apiError) {
	var verr validationErrors
	roleArn, roleOK := checkLength(&verr, form, "RoleArn", "roleArn", 20, 2048)
	session, sessOK := checkLength(&verr, form, "RoleSessionName", "roleSessionName", 2, 64)
	token, _ := checkLength(&verr, form, "WebIdentityToken", "webIdentityToken", 4, 20000)
	call.RoleArn, call.RoleSessionName = roleArn, session
	if token != "" {
		call.TokenDigest = TokenDigest(token)
	}
	if sessOK {
		checkSessionName(&verr, session)
	}
	duration, seconds := checkDuration(&verr, form)
	call.DurationSeconds = seconds
	if e := verr.err(); e != nil {
		return nil, e
	}
	if roleOK && !isRoleARN(roleArn) {
		return nil, errorf("ValidationError", "Request ARN is invalid")
	}
	if form.Get("Policy") != "" || hasPrefixKey(form, "PolicyArns.") || form.Get("ProviderId") != "" {
		// Fail closed: session policies would narrow permissions this
		// stand-in could not enforce.
		return nil, errorf("ValidationError", "awstest STS stand-in: session policies (Policy, PolicyArns) and ProviderId are not supported")
	}

	// The token: structure and algorithm first, then issuer, then the
	// signature against the issuer's published keys, then the claims.
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	hb, err := base64.RawURLEncoding.DecodeString(parts[0])
	var hdr struct {
		Alg string `json:"alg"`
		Kid string `json:"kid"`
	}
	if err != nil || json.Unmarshal(hb, &hdr) != nil {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	if !asymmetric[hdr.Alg] {
		return nil, errorf("InvalidIdentityToken", "Unsupported signing algorithm %q: the token must be signed with the identity provider's private key", hdr.Alg)
	}
	pb, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	unverified, err := decodeClaims(pb)
	if err != nil {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	if unverified.Iss == "" {
		return nil, errorf("InvalidIdentityToken", "Missing a required claim: iss")
	}
	prov, ok := s.iam.ProviderFor(unverified.Iss)
	if !ok {
		return nil, errorf("InvalidIdentityToken", "No OpenIDConnect provider found in your account for %s", unverified.Iss)
	}
	if !strings.HasPrefix(prov.IssuerURL, "https://") && !s.opts.AllowHTTPIssuers {
		return nil, errorf("InvalidIdentityToken", "No OpenIDConnect provider found in your account for %s (the issuer must be https)", unverified.Iss)
	}
	keys, kerr := s.keysFor(ctx, prov.IssuerURL, hdr.Kid)
	if kerr != nil {
		return nil, kerr
	}
	if !keys.algAllowed(hdr.Alg) {
		return nil, errorf("InvalidIdentityToken", "Signing algorithm %q is not among the identity provider's id_token_signing_alg_values_supported", hdr.Alg)
	}
	key, ok := keys.key(hdr.Kid)
	if !ok {
		return nil, errorf("InvalidIdentityToken", "Key ID %q of the web identity token was not found in the identity provider's JWKS", hdr.Kid)
	}
	if key.Algorithm != "" && key.Algorithm != hdr.Alg {
		return nil, errorf("InvalidIdentityToken", "The web identity token's signing algorithm does not match its key")
	}
	jws, err := jose.ParseSignedCompact(token, []jose.SignatureAlgorithm{jose.SignatureAlgorithm(hdr.Alg)})
	if err != nil {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}
	payload, err := jws.Verify(key.Key)
	if err != nil {
		return nil, errorf("InvalidIdentityToken", "The web identity token signature could not be verified with the identity provider's keys")
	}
	claims, err := decodeClaims(payload)
	if err != nil || claims.Iss != unverified.Iss {
		return nil, errorf("InvalidIdentityToken", "The ID Token provided is not a valid JWT. (You may see this error if you sent an Access Token)")
	}

	auds, ok := claims.audiences()
	if !ok {
		return nil, errorf("InvalidIdentityToken", "Incorrect token audience")
	}
	aud := ""
	for _, a := range auds {
		for _, id := range prov.ClientIDs {
			if a == id {
				aud = a
				break
			}
		}
		if aud != "" {
			break
		}
	}
	if aud == "" {
		return nil, errorf("InvalidIdentityToken", "Incorrect token audience")
	}
	now := s.clk.Now()
	exp, hasExp, err := numericDate(claims.Exp)
	if err != nil || !hasExp {
		return nil, errorf("InvalidIdentityToken", "Missing or malformed claim: exp")
	}
	if !now.Before(exp) {
		return nil, errorf("ExpiredTokenException", "Token expired: current date/time %d must be before the expiration date/time %d", now.Unix(), exp.Unix())
	}
	nbf, hasNbf, err := numericDate(claims.Nbf)
	if err != nil {
		return nil, errorf("InvalidIdentityToken", "Malformed claim: nbf")
	}
	if hasNbf && now.Before(nbf) {
		return nil, errorf("InvalidIdentityToken", "Token is not yet valid: current date/time %d must be after the not-before date/time %d", now.Unix(), nbf.Unix())
	}
	if claims.Sub == "" {
		return nil, errorf("InvalidIdentityToken", "Missing a required claim: sub")
	}
	call.Subject = claims.Sub

	// The condition keys are the issuer URL without its scheme (for https
	// issuers, the provider ARN's resource part).
	_, hostPath, _ := strings.Cut(prov.IssuerURL, "://")
	exists, allowed := s.iam.AssumeWithWebIdentity(roleArn, prov.ARN, hostPath, claims.Sub, aud)
	if !exists || !allowed {
		return nil, errorf("AccessDenied", msgNotAuthorized)
	}

	s.mu.Lock()
	maxSess, credTTL := s.maxSess, s.credTTL
	s.mu.Unlock()
	if duration > maxSess {
		return nil, errorf("ValidationError", "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.")
	}
	ttl := min(duration, credTTL)
	creds, err := s.reg.IssueSession(roleArn, session, ttl)
	if err != nil {
		return nil, errorf("InternalFailure", "issuing credentials: %v", err)
	}
	call.AccessKeyID = creds.AccessKeyID
	return &assumeRoleWithWebIdentityResult{
		SubjectFromWebIdentityToken: claims.Sub,
		Audience:                    aud,
		AssumedRoleUser:             assumedRoleUser{Arn: creds.Arn, AssumedRoleID: creds.UserID},
		Credentials: credentials{
			AccessKeyID:     creds.AccessKeyID,
			SecretAccessKey: creds.SecretAccessKey,
			SessionToken:    creds.SessionToken,
			Expiration:      creds.Expires.UTC().Format(time.RFC3339),
		},
		Provider: prov.ARN,
	}, nil
}

func hasPrefixKey(form url.Values, prefix string) bool {
	for k := range form {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// isRoleARN accepts arn:PARTITION:iam::ACCOUNT:role/[PATH/]NAME.
func isRoleARN(s string) bool {
	p := strings.SplitN(s, ":", 6)
	if len(p) != 6 || p[0] != "arn" || p[1] == "" || p[2] != "iam" || p[3] != "" {
		return false
	}
	if len(p[4]) != 12 || strings.Trim(p[4], "0123456789") != "" {
		return false
	}
	name, ok := strings.CutPrefix(p[5], "role/")
	return ok && name != "" && !strings.HasSuffix(name, "/")
}

// providerKeys is a provider's discovery document and key set as fetched.
type providerKeys struct {
	algs    []string
	set     jose.JSONWebKeySet
	fetched time.Time
}

func (p *providerKeys) algAllowed(alg string) bool {
	if len(p.algs) == 0 {
		return alg == "RS256" // OpenID Connect Discovery's default
	}
	for _, a := range p.algs {
		if a == alg {
			return true
		}
	}
	return false
}

func (p *providerKeys) key(kid string) (jose.JSONWebKey, bool) {
	if kid == "" {
		if len(p.set.Keys) == 1 {
			return p.set.Keys[0], true
		}
		return jose.JSONWebKey{}, false
	}
	ks := p.set.Key(kid)
	for _, k := range ks {
		if k.Use == "" || k.Use == "sig" {
			return k, true
		}
	}
	return jose.JSONWebKey{}, false
}

// keysFor returns the provider's keys, fetching them when not cached, when
// the cache is older than KeyCacheTTL, or when kid is not in the cached
// set (a key rotation).
func (s *Server) keysFor(ctx context.Context, issuer, kid string) (*providerKeys, *apiError) {
	s.mu.Lock()
	cached := s.keyCache[issuer]
	s.mu.Unlock()
	if cached != nil && s.clk.Now().Sub(cached.fetched) < s.opts.KeyCacheTTL {
		if _, ok := cached.key(kid); ok {
			return cached, nil
		}
	}
	v, err, _ := s.keyFlight.Do(issuer, func() (any, error) {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		pk, err := s.fetchKeys(fctx, issuer)
		if err != nil {
			return nil, err
		}
		s.mu.Lock()
		s.keyCache[issuer] = pk
		s.mu.Unlock()
		return pk, nil
	})
	if err != nil {
		return nil, errorf("IDPCommunicationError", "Couldn't retrieve verification key from your identity provider,  please reference AssumeRoleWithWebIdentity documentation for requirements")
	}
	return v.(*providerKeys), nil
}

func (s *Server) fetchKeys(ctx context.Context, issuer string) (*providerKeys, error) {
	var doc struct {
		Issuer  string   `json:"issuer"`
		JWKSURI string   `json:"jwks_uri"`
		Algs    []string `json:"id_token_signing_alg_values_supported"`
	}
	if err := s.getJSON(ctx, issuer+"/.well-known/openid-configuration", &doc); err != nil {
		return nil, err
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("discovery document names issuer %q, want %q", doc.Issuer, issuer)
	}
	u, err := url.Parse(doc.JWKSURI)
	if err != nil || (u.Scheme != "https" && !(s.opts.AllowHTTPIssuers && u.Scheme == "http")) {
		return nil, fmt.Errorf("bad jwks_uri %q", doc.JWKSURI)
	}
	pk := &providerKeys{algs: doc.Algs, fetched: s.clk.Now()}
	if err := s.getJSON(ctx, doc.JWKSURI, &pk.set); err != nil {
		return nil, err
	}
	return pk, nil
}

func (s *Server) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", u, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// checkSessionName checks a RoleSessionName against STS's pattern.
func checkSessionName(verr *validationErrors, session string) {
	if !sessionNameRE.MatchString(session) {
		verr.add(`Value '%s' at 'roleSessionName' failed to satisfy constraint: Member must satisfy regular expression pattern: [\w+=,.@-]*`, shorten(session, ""))
	}
}

// checkDuration reads DurationSeconds as STS does: absent, one hour;
// otherwise an integer from 900 to 43200. seconds is 0 when absent or
// invalid.
func checkDuration(verr *validationErrors, form url.Values) (d time.Duration, seconds int) {
	ds := form.Get("DurationSeconds")
	if ds == "" {
		return time.Hour, 0
	}
	n, err := strconv.Atoi(ds)
	switch {
	case err != nil:
		verr.add("Value '%s' at 'durationSeconds' failed to satisfy constraint: Member must be an integer", shorten(ds, ""))
	case n < 900:
		verr.add("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value greater than or equal to 900", n)
	case n > 43200:
		verr.add("Value '%d' at 'durationSeconds' failed to satisfy constraint: Member must have value less than or equal to 43200", n)
	default:
		return time.Duration(n) * time.Second, n
	}
	return time.Hour, 0
}
