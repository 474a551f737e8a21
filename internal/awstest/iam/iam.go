// Package iam is the stand-ins' mini-IAM: roles with a trust policy and
// identity policies, OIDC identity providers, and an evaluator that every
// stand-in asks before it serves a request. Policies are JSON documents in
// the IAM policy grammar, so the policies irsakit generates can be loaded
// as they are and proven to allow exactly what they claim.
//
// Evaluation follows IAM's order: an explicit Deny wins, then any Allow,
// else the implicit deny. Conditions: StringEquals, StringNotEquals,
// StringEqualsIgnoreCase, StringLike, StringNotLike, Bool and Null, with the
// ForAllValues:/ForAnyValue: qualifiers and the IfExists suffix, on keys
// that may hold several values (aws:TagKeys). A statement whose Condition
// this evaluator does not understand never matches an Allow (it fails
// closed).
//
// Trust policies are evaluated for federated principals
// ([IAM.AssumeWithWebIdentity]) and for AWS principals — role sessions and
// users, by role ARN, session ARN, account or "*" — calling sts:AssumeRole,
// sts:TagSession or sts:SetSourceIdentity ([IAM.AssumeRoleTrust]) with the
// request's condition keys (sts:ExternalId, sts:SourceIdentity,
// sts:RoleSessionName, aws:RequestTag/KEY, aws:TagKeys, aws:PrincipalArn,
// aws:PrincipalAccount). One IAM holds one account; a stand-in serving
// several accounts keeps one IAM per account.
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
	return i.AuthorizeRequest(roleARN, action, resource, nil)
}

// AuthorizeRequest is Authorize with the request's condition keys (a key
// may have several values, like aws:TagKeys).
func (i *IAM) AuthorizeRequest(roleARN, action, resource string, ctx map[string][]string) bool {
	i.mu.RLock()
	r, ok := i.roles[roleARN]
	var pols []Document
	if ok {
		pols = r.Policies
	}
	i.mu.RUnlock()
	return evaluate(pols, action, resource, ctx)
}

// Evaluate applies IAM's evaluation logic to docs for one request. ctx holds
// condition keys (e.g. "aws:SecureTransport") for conditions; conditions on
// keys absent from ctx do not match.
func Evaluate(docs []Document, action, resource string, ctx map[string]string) bool {
	multi := make(map[string][]string, len(ctx))
	for k, v := range ctx {
		multi[k] = []string{v}
	}
	return evaluate(docs, action, resource, multi)
}

func evaluate(docs []Document, action, resource string, ctx map[string][]string) bool {
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
	ctx := map[string][]string{
		issuerHostPath + ":sub": {sub},
		issuerHostPath + ":aud": {aud},
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

// AssumeRequest is an sts:AssumeRole request as a role's trust policy sees
// it: who calls, and what the request carries.
type AssumeRequest struct {
	// CallerRoleARN is the role whose session calls
	// (arn:PARTITION:iam::ACCOUNT:role/NAME); empty for an IAM user.
	CallerRoleARN string
	// CallerARN is the caller's identity: its assumed-role session ARN
	// (arn:PARTITION:sts::ACCOUNT:assumed-role/NAME/SESSION) or user ARN.
	CallerARN string
	// CallerAccount is the caller's account id.
	CallerAccount string
	// RoleSessionName is the session name asked for (sts:RoleSessionName).
	RoleSessionName string
	// ExternalID is the ExternalId sent (sts:ExternalId); "" when absent.
	ExternalID string
	// SourceIdentity is the SourceIdentity sent (sts:SourceIdentity); ""
	// when absent.
	SourceIdentity string
	// Tags are the session tags sent (aws:RequestTag/KEY, aws:TagKeys).
	Tags map[string]string
}

// Context returns the condition keys of the request: aws:PrincipalArn (the
// caller's role ARN, else its ARN), aws:PrincipalAccount,
// sts:RoleSessionName, sts:ExternalId and sts:SourceIdentity when sent,
// aws:RequestTag/KEY for each tag and aws:TagKeys.
func (r AssumeRequest) Context() map[string][]string {
	ctx := map[string][]string{
		"aws:PrincipalArn":     {firstNonEmpty(r.CallerRoleARN, r.CallerARN)},
		"aws:PrincipalAccount": {r.CallerAccount},
		"sts:RoleSessionName":  {r.RoleSessionName},
	}
	if r.ExternalID != "" {
		ctx["sts:ExternalId"] = []string{r.ExternalID}
	}
	if r.SourceIdentity != "" {
		ctx["sts:SourceIdentity"] = []string{r.SourceIdentity}
	}
	if len(r.Tags) > 0 {
		keys := make([]string, 0, len(r.Tags))
		for k, v := range r.Tags {
			ctx["aws:RequestTag/"+k] = []string{v}
			keys = append(keys, k)
		}
		ctx["aws:TagKeys"] = keys
	}
	return ctx
}

// AssumeRoleTrust evaluates roleARN's trust policy for an AWS principal
// (a role session or a user) performing action — sts:AssumeRole, or
// sts:TagSession / sts:SetSourceIdentity, which AWS also demands of the
// trust policy when the request carries tags or a source identity.
// Principal.AWS may name the caller's role ARN, its session ARN, its
// account ("ACCOUNT" or arn:PARTITION:iam::ACCOUNT:root) or "*"; the
// statement's conditions are evaluated on req.Context(). An explicit Deny
// wins.
func (i *IAM) AssumeRoleTrust(roleARN, action string, req AssumeRequest) (roleExists, allowed bool) {
	r, ok := i.Role(roleARN)
	if !ok {
		return false, false
	}
	ctx := req.Context()
	for _, s := range r.Trust.Statement {
		if s.Principal == nil || !principalMatches(s.Principal.AWS, req) {
			continue
		}
		if !matchAny(s.Action, action, true) {
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

// principalMatches reports whether one of the Principal.AWS entries names
// the caller.
func principalMatches(aws []string, req AssumeRequest) bool {
	for _, p := range aws {
		switch {
		case p == "*":
			return true
		case req.CallerAccount != "" && p == req.CallerAccount:
			return true
		case req.CallerRoleARN != "" && p == req.CallerRoleARN, req.CallerARN != "" && p == req.CallerARN:
			return true
		case strings.HasSuffix(p, ":root"):
			// arn:PARTITION:iam::ACCOUNT:root, in the caller's partition.
			parts := strings.Split(p, ":")
			caller := strings.Split(firstNonEmpty(req.CallerRoleARN, req.CallerARN), ":")
			if len(parts) == 6 && len(caller) >= 2 && parts[0] == "arn" && parts[1] == caller[1] &&
				parts[2] == "iam" && parts[3] == "" && parts[4] == req.CallerAccount {
				return true
			}
		}
	}
	return false
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

// conditionsHold evaluates a Condition block: every operator, every key,
// must hold. Operators: StringEquals, StringNotEquals,
// StringEqualsIgnoreCase, StringLike, StringNotLike, Bool and Null, each
// optionally with the ForAllValues: or ForAnyValue: set qualifier and the
// IfExists suffix. Anything else never holds (fails closed).
func conditionsHold(cond map[string]map[string]StringList, ctx map[string][]string) bool {
	for op, kv := range cond {
		for key, want := range kv {
			got, present := lookupKey(ctx, key)
			if !conditionHolds(op, want, got, present) {
				return false
			}
		}
	}
	return true
}

func lookupKey(ctx map[string][]string, key string) ([]string, bool) {
	if v, ok := ctx[key]; ok {
		return v, true
	}
	// Condition key names are case-insensitive.
	for k, v := range ctx {
		if strings.EqualFold(k, key) {
			return v, true
		}
	}
	return nil, false
}

func conditionHolds(op string, want, got []string, present bool) bool {
	if op == "Null" {
		if len(want) != 1 || (want[0] != "true" && want[0] != "false") {
			return false
		}
		return (want[0] == "true") == !present
	}
	set := ""
	if q, rest, ok := strings.Cut(op, ":"); ok {
		if q != "ForAllValues" && q != "ForAnyValue" {
			return false
		}
		set, op = q, rest
	}
	ifExists := false
	if base, ok := strings.CutSuffix(op, "IfExists"); ok {
		op, ifExists = base, true
	}
	match, negated, known := operator(op)
	if !known {
		return false
	}
	one := func(v string) bool {
		for _, w := range want {
			if match(w, v) {
				return !negated
			}
		}
		return negated
	}
	switch set {
	case "ForAllValues":
		// True for an absent or empty key, as in IAM.
		for _, v := range got {
			if !one(v) {
				return false
			}
		}
		return true
	case "ForAnyValue":
		for _, v := range got {
			if one(v) {
				return true
			}
		}
		return false
	}
	if !present {
		return ifExists
	}
	for _, v := range got {
		if one(v) {
			return true
		}
	}
	return false
}

// operator returns how a condition operator compares a policy value with
// a request value, and whether it is a negated one.
func operator(op string) (match func(want, got string) bool, negated, known bool) {
	switch op {
	case "StringEquals", "Bool":
		return func(w, g string) bool { return w == g }, false, true
	case "StringNotEquals":
		return func(w, g string) bool { return w == g }, true, true
	case "StringEqualsIgnoreCase":
		return strings.EqualFold, false, true
	case "StringLike":
		return func(w, g string) bool { return wildcard(w, g) }, false, true
	case "StringNotLike":
		return func(w, g string) bool { return wildcard(w, g) }, true, true
	}
	return nil, false, false
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
