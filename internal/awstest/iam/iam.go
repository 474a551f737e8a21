// Package iam is the stand-ins' mini-IAM: roles with a trust policy and
// identity policies, OIDC identity providers, and an evaluator that every
// stand-in asks before it serves a request. Policies are JSON documents in
// the IAM policy grammar, so the policies irsakit generates can be loaded
// as they are and proven to allow exactly what they claim.
//
// Evaluation follows IAM's order: an explicit Deny wins, then any Allow,
// else the implicit deny. A statement whose Condition this evaluator does not
// understand never matches an Allow (it fails closed).
package iam

import (
	"encoding/json"
	"fmt"
	"path"
	"strings"
	"sync"
)

// Statement is one IAM policy statement.
type Statement struct {
	Sid       string                           `json:"Sid,omitempty"`
	Effect    string                           `json:"Effect"`
	Principal *Principal                       `json:"Principal,omitempty"`
	Action    StringList                       `json:"Action"`
	Resource  StringList                       `json:"Resource,omitempty"`
	Condition map[string]map[string]StringList `json:"Condition,omitempty"`
}

// Principal is a statement's principal (trust policies).
type Principal struct {
	Federated StringList `json:"Federated,omitempty"`
	AWS       StringList `json:"AWS,omitempty"`
	Service   StringList `json:"Service,omitempty"`
}

// Document is an IAM policy document.
type Document struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// StringList is a JSON string or array of strings.
type StringList []string

// UnmarshalJSON accepts "x" or ["x", ...].
func (s *StringList) UnmarshalJSON(b []byte) error {
	var one string
	if err := json.Unmarshal(b, &one); err == nil {
		*s = StringList{one}
		return nil
	}
	var many []string
	if err := json.Unmarshal(b, &many); err != nil {
		return fmt.Errorf("iam: want a string or an array of strings, got %s", b)
	}
	*s = many
	return nil
}

// ParseDocument parses and checks a policy document.
func ParseDocument(b []byte) (Document, error) {
	var d Document
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		return Document{}, fmt.Errorf("iam: malformed policy document: %w", err)
	}
	if d.Version != "2012-10-17" {
		return Document{}, fmt.Errorf("iam: policy Version must be \"2012-10-17\", got %q", d.Version)
	}
	if len(d.Statement) == 0 {
		return Document{}, fmt.Errorf("iam: policy has no statements")
	}
	for i, s := range d.Statement {
		if s.Effect != "Allow" && s.Effect != "Deny" {
			return Document{}, fmt.Errorf("iam: statement %d: Effect must be Allow or Deny, got %q", i, s.Effect)
		}
		if len(s.Action) == 0 {
			return Document{}, fmt.Errorf("iam: statement %d has no Action", i)
		}
	}
	return d, nil
}

// Role is an IAM role.
type Role struct {
	ARN      string
	Trust    Document   // who may assume it
	Policies []Document // what it may do
}

// Provider is a registered OIDC identity provider.
type Provider struct {
	ARN       string   // arn:aws:iam::ACCOUNT:oidc-provider/HOST/PATH
	IssuerURL string   // https://HOST/PATH
	ClientIDs []string // accepted audiences
}

// IAM holds roles and identity providers. It is safe for concurrent use.
type IAM struct {
	mu        sync.RWMutex
	account   string
	roles     map[string]*Role
	providers map[string]Provider // by issuer URL
}

// New returns an empty IAM for account.
func New(account string) *IAM {
	return &IAM{account: account, roles: map[string]*Role{}, providers: map[string]Provider{}}
}

// Account returns the account id.
func (i *IAM) Account() string { return i.account }

// AddOIDCProvider registers an issuer (https URL) that may federate into
// roles, accepting the given audiences, and returns its provider ARN.
func (i *IAM) AddOIDCProvider(issuerURL string, clientIDs ...string) string {
	host := strings.TrimPrefix(issuerURL, "https://")
	p := Provider{ARN: fmt.Sprintf("arn:aws:iam::%s:oidc-provider/%s", i.account, host), IssuerURL: issuerURL, ClientIDs: clientIDs}
	i.mu.Lock()
	i.providers[issuerURL] = p
	i.mu.Unlock()
	return p.ARN
}

// RemoveOIDCProvider forgets an issuer.
func (i *IAM) RemoveOIDCProvider(issuerURL string) {
	i.mu.Lock()
	delete(i.providers, issuerURL)
	i.mu.Unlock()
}

// ProviderFor returns the provider registered for issuerURL.
func (i *IAM) ProviderFor(issuerURL string) (Provider, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	p, ok := i.providers[issuerURL]
	return p, ok
}

// PutRole creates or replaces a role with its trust policy (JSON) and
// identity policies (JSON documents).
func (i *IAM) PutRole(roleARN string, trust []byte, policies ...[]byte) error {
	t, err := ParseDocument(trust)
	if err != nil {
		return fmt.Errorf("trust policy of %s: %w", roleARN, err)
	}
	r := &Role{ARN: roleARN, Trust: t}
	for _, p := range policies {
		d, err := ParseDocument(p)
		if err != nil {
			return fmt.Errorf("policy of %s: %w", roleARN, err)
		}
		r.Policies = append(r.Policies, d)
	}
	i.mu.Lock()
	i.roles[roleARN] = r
	i.mu.Unlock()
	return nil
}

// AttachPolicy adds an identity policy to an existing role.
func (i *IAM) AttachPolicy(roleARN string, policy []byte) error {
	d, err := ParseDocument(policy)
	if err != nil {
		return err
	}
	i.mu.Lock()
	defer i.mu.Unlock()
	r, ok := i.roles[roleARN]
	if !ok {
		return fmt.Errorf("iam: no role %s", roleARN)
	}
	r.Policies = append(r.Policies, d)
	return nil
}

// DetachPolicies removes every identity policy of a role.
func (i *IAM) DetachPolicies(roleARN string) {
	i.mu.Lock()
	defer i.mu.Unlock()
	if r, ok := i.roles[roleARN]; ok {
		r.Policies = nil
	}
}

// Role returns a copy of the role.
func (i *IAM) Role(roleARN string) (Role, bool) {
	i.mu.RLock()
	defer i.mu.RUnlock()
	r, ok := i.roles[roleARN]
	if !ok {
		return Role{}, false
	}
	return *r, true
}

// Authorize reports whether roleARN may perform action on resource. Users
// (empty roleARN) have no policies and are denied.
func (i *IAM) Authorize(roleARN, action, resource string) bool {
	i.mu.RLock()
	r, ok := i.roles[roleARN]
	var pols []Document
	if ok {
		pols = r.Policies
	}
	i.mu.RUnlock()
	return Evaluate(pols, action, resource, nil)
}

// Evaluate applies IAM's evaluation logic to docs for one request. ctx holds
// condition keys (e.g. "aws:SecureTransport") for conditions; conditions on
// keys absent from ctx do not match.
func Evaluate(docs []Document, action, resource string, ctx map[string]string) bool {
	allowed := false
	for _, d := range docs {
		for _, s := range d.Statement {
			if !matchAny(s.Action, action, true) {
				continue
			}
			if len(s.Resource) > 0 && !matchAny(s.Resource, resource, false) {
				continue
			}
			if !conditionsHold(s.Condition, ctx) {
				continue
			}
			if s.Effect == "Deny" {
				return false
			}
			allowed = true
		}
	}
	return allowed
}

// AssumeWithWebIdentity evaluates a role's trust policy for a federated
// principal: providerARN with token claims sub and aud. It reports whether
// the trust policy allows sts:AssumeRoleWithWebIdentity.
func (i *IAM) AssumeWithWebIdentity(roleARN, providerARN, issuerHostPath, sub, aud string) (roleExists, allowed bool) {
	r, ok := i.Role(roleARN)
	if !ok {
		return false, false
	}
	ctx := map[string]string{
		issuerHostPath + ":sub": sub,
		issuerHostPath + ":aud": aud,
	}
	allowed = false
	for _, s := range r.Trust.Statement {
		if s.Principal == nil || !containsExact(s.Principal.Federated, providerARN) {
			continue
		}
		if !matchAny(s.Action, "sts:AssumeRoleWithWebIdentity", true) {
			continue
		}
		if !conditionsHold(s.Condition, ctx) {
			continue
		}
		if s.Effect == "Deny" {
			return true, false
		}
		allowed = true
	}
	return true, allowed
}

func conditionsHold(cond map[string]map[string]StringList, ctx map[string]string) bool {
	for op, kv := range cond {
		for key, want := range kv {
			got, present := ctx[key]
			if !present {
				return false
			}
			switch op {
			case "StringEquals":
				if !containsExact(want, got) {
					return false
				}
			case "StringLike":
				if !matchAny(want, got, false) {
					return false
				}
			case "Bool":
				if !containsExact(want, got) {
					return false
				}
			default:
				return false // unknown operator: fail closed
			}
		}
	}
	return true
}

func containsExact(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// matchAny matches s against IAM wildcard patterns (* and ?). Actions
// compare case-insensitively, as IAM does.
func matchAny(patterns []string, s string, fold bool) bool {
	for _, p := range patterns {
		pp, ss := p, s
		if fold {
			pp, ss = strings.ToLower(p), strings.ToLower(s)
		}
		if wildcard(pp, ss) {
			return true
		}
	}
	return false
}

// wildcard is glob matching where '*' may span '/' (unlike path.Match).
func wildcard(p, s string) bool {
	if !strings.ContainsAny(p, "*?") {
		return p == s
	}
	// Escape path.Match's other metacharacters, then match segment-free by
	// replacing '/' on both sides.
	r := strings.NewReplacer("[", "\\[", "]", "\\]", "\\", "\\\\")
	p = strings.ReplaceAll(r.Replace(p), "/", "\x00")
	s = strings.ReplaceAll(s, "/", "\x00")
	ok, err := path.Match(p, s)
	return err == nil && ok
}
