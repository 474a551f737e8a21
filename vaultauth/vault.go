package vaultauth

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// maxAnswer bounds how much of a Vault answer is read.
const maxAnswer = 1 << 20

// vault talks to one Vault server's HTTP API.
type vault struct {
	addr *url.URL
	opts *Options
}

// answer is the part of Vault's response shape this package reads.
type answer struct {
	Auth *struct {
		ClientToken   string            `json:"client_token"`
		Accessor      string            `json:"accessor"`
		Policies      []string          `json:"policies"`
		Metadata      map[string]string `json:"metadata"`
		LeaseDuration int64             `json:"lease_duration"`
		Renewable     bool              `json:"renewable"`
		EntityID      string            `json:"entity_id"`
		TokenType     string            `json:"token_type"`
	} `json:"auth"`
	Warnings []string `json:"warnings"`
	Errors   []string `json:"errors"`
}

// Login sends a login to Vault at vaultAddr (an http(s)://HOST[:PORT]
// address, VAULT_ADDR's form) for role with the credentials of cfg, and
// returns the client token and its lease. It makes one attempt and caches
// nothing; a [TokenSource] keeps a token valid.
func Login(ctx context.Context, vaultAddr, role string, cfg aws.Config, optFns ...func(*Options)) (Token, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if err := o.setDefaults(); err != nil {
		return Token{}, err
	}
	addr, err := parseAddress(vaultAddr, o.AllowHTTP)
	if err != nil {
		return Token{}, err
	}
	if err := checkRole(role); err != nil {
		return Token{}, err
	}
	v := &vault{addr: addr, opts: &o}
	return v.login(ctx, cfg, role)
}

func (v *vault) login(ctx context.Context, cfg aws.Config, role string) (Token, error) {
	req, err := buildLogin(ctx, cfg, role, v.opts)
	if err != nil {
		return Token{}, err
	}
	sent := v.opts.clock.Now()
	ans, err := v.call(ctx, "login", req.Path(), "", req.d.secret.data)
	if err != nil {
		return Token{}, err
	}
	tok, err := v.token(ans, "login", req.Path(), role, sent)
	if err != nil {
		return Token{}, err
	}
	tok.d.loginLease = tok.d.lease
	return tok, nil
}

// renew renews cur with auth/token/renew-self.
func (v *vault) renew(ctx context.Context, cur Token) (Token, error) {
	const path = "auth/token/renew-self"
	sent := v.opts.clock.Now()
	ans, err := v.call(ctx, "renew-self", path, cur.d.secret.value, map[string]any{})
	if err != nil {
		return Token{}, err
	}
	tok, err := v.token(ans, "renew-self", path, cur.d.role, sent)
	if err != nil {
		return Token{}, err
	}
	if tok.d.secret.value != cur.d.secret.value {
		return Token{}, fmt.Errorf("%w: renew-self answered with another token", ErrUnexpectedResponse)
	}
	tok.d.loginLease = cur.d.loginLease
	if tok.d.secret.accessor == "" {
		tok.d.secret.accessor = cur.d.secret.accessor
	}
	return tok, nil
}

func (v *vault) token(ans *answer, op, path, role string, sent time.Time) (Token, error) {
	a := ans.Auth
	if a == nil || a.ClientToken == "" {
		return Token{}, fmt.Errorf("%w: %s at %s answered without a client token", ErrUnexpectedResponse, op, path)
	}
	if a.LeaseDuration < 0 {
		return Token{}, fmt.Errorf("%w: %s at %s answered with a negative lease_duration", ErrUnexpectedResponse, op, path)
	}
	d := &tokenData{
		secret:    &tokenSecret{value: a.ClientToken, accessor: a.Accessor},
		mount:     v.opts.Mount,
		role:      role,
		policies:  a.Policies,
		metadata:  a.Metadata,
		lease:     time.Duration(a.LeaseDuration) * time.Second,
		renewable: a.Renewable,
		tokenType: a.TokenType,
		entityID:  a.EntityID,
		obtained:  sent,
	}
	if d.tokenType == "" {
		d.tokenType = "service"
	}
	if d.lease > 0 {
		d.expires = sent.Add(d.lease)
	}
	return Token{d: d}, nil
}

// call sends one request to Vault and decodes the answer; a non-2xx answer
// is a *VaultError.
func (v *vault) call(ctx context.Context, op, path, token string, body map[string]any) (*answer, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("vaultauth: encoding the %s request: %w", op, err)
	}
	u := *v.addr
	u.Path = v.addr.Path + "/v1/" + path
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(b))
	if err != nil {
		return nil, fmt.Errorf("vaultauth: %s: %w", op, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Vault-Request", "true")
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if v.opts.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", v.opts.Namespace)
	}
	resp, err := v.opts.HTTPClient.Do(req)
	if err != nil {
		// The error names the URL, which holds no secret.
		return nil, fmt.Errorf("vaultauth: %s at %s: %w", op, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer))
	if err != nil {
		return nil, fmt.Errorf("vaultauth: reading Vault's answer to %s at %s: %w", op, path, err)
	}
	return decodeAnswer(op, path, resp.StatusCode, resp.Header.Get("Content-Type"), raw)
}

// decodeAnswer turns Vault's HTTP answer into an answer or an error. It
// never quotes the body of a successful answer, which holds the token.
func decodeAnswer(op, path string, status int, contentType string, raw []byte) (*answer, error) {
	var ans answer
	jsonErr := json.Unmarshal(raw, &ans)
	if status < 200 || status > 299 {
		ve := &VaultError{Op: op, Path: path, StatusCode: status}
		if jsonErr == nil {
			ve.Messages = ans.Errors
		}
		if len(ve.Messages) == 0 {
			ve.Messages = []string{describeBody(contentType, raw)}
		}
		return nil, ve
	}
	if jsonErr != nil {
		return nil, fmt.Errorf("%w: %s at %s answered HTTP %d with %s", ErrUnexpectedResponse, op, path, status, describeBody(contentType, raw))
	}
	return &ans, nil
}

// describeBody names what a non-Vault answer (a proxy's page, say) was
// without quoting it.
func describeBody(contentType string, raw []byte) string {
	mt, _, err := mime.ParseMediaType(contentType)
	if err != nil || mt == "" {
		mt = "no content type"
	}
	if len(bytes.TrimSpace(raw)) == 0 {
		return "an empty body (" + mt + ")"
	}
	if strings.HasPrefix(mt, "text/") || mt == "application/json" {
		return fmt.Sprintf("a %d-byte %s body that is not Vault's answer (is the address a Vault server?)", len(raw), mt)
	}
	return fmt.Sprintf("a %d-byte %s body", len(raw), mt)
}
