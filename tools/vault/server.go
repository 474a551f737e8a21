package main

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/go-uuid"
	awsauth "github.com/hashicorp/vault/builtin/credential/aws"
	"github.com/hashicorp/vault/sdk/framework"
	"github.com/hashicorp/vault/sdk/helper/base62"
	"github.com/hashicorp/vault/sdk/helper/jsonutil"
	"github.com/hashicorp/vault/sdk/helper/parseutil"
	"github.com/hashicorp/vault/sdk/helper/policyutil"
	"github.com/hashicorp/vault/sdk/logical"
	"github.com/hashicorp/vault/sdk/rotation"
)

// Config configures a Server.
type Config struct {
	Mount     string
	Namespace string
	RootToken string

	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration

	STSEndpoint string
	STSRegion   string
	ServerID    string
	MaxRetries  int

	Roles         []RoleFlag
	TokenTTL      string
	TokenMaxTTL   string
	TokenPolicies string

	Logger hclog.Logger
}

// RoleFlag is one -role NAME=ARN.
type RoleFlag struct{ Name, ARN string }

// sysView is the SDK's static system view with the rotation-job calls a
// real Vault answers: the aws backend deregisters the root-credential
// rotation job whenever config/client is written without a schedule, and
// Vault accepts that when none is registered.
type sysView struct {
	logical.StaticSystemView
}

func (sysView) DeregisterRotationJob(context.Context, *rotation.RotationJobDeregisterRequest) error {
	return nil
}

// tokenEntry is the token store's record of one token.
type tokenEntry struct {
	id      string
	typ     logical.TokenType
	auth    *logical.Auth
	issued  time.Time
	expires time.Time
}

// Server is the HTTP front of the aws auth backend plus a token store.
type Server struct {
	cfg     Config
	sys     sysView
	backend logical.Backend
	storage logical.Storage
	mount   string // "auth/MOUNT/"

	mu     sync.Mutex
	tokens map[string]*tokenEntry
}

// NewServer builds the backend on in-memory storage and applies cfg's
// config/client settings and roles through the backend's own paths.
func NewServer(ctx context.Context, cfg Config) (*Server, error) {
	cfg.Mount = strings.Trim(cfg.Mount, "/")
	if cfg.Mount == "" {
		return nil, errors.New("-mount must not be empty")
	}
	s := &Server{
		cfg: cfg,
		sys: sysView{logical.StaticSystemView{
			DefaultLeaseTTLVal: cfg.DefaultLeaseTTL,
			MaxLeaseTTLVal:     cfg.MaxLeaseTTL,
			VersionString:      "vault-awsauth",
		}},
		storage: &logical.InmemStorage{},
		mount:   "auth/" + cfg.Mount + "/",
		tokens:  map[string]*tokenEntry{},
	}
	b, err := awsauth.Factory(ctx, &logical.BackendConfig{
		Logger:      cfg.Logger,
		System:      s.sys,
		Config:      map[string]string{},
		BackendUUID: mustUUID(),
	})
	if err != nil {
		return nil, fmt.Errorf("creating the aws auth backend: %w", err)
	}
	if err := b.Initialize(ctx, &logical.InitializationRequest{Storage: s.storage}); err != nil {
		return nil, fmt.Errorf("initializing the aws auth backend: %w", err)
	}
	s.backend = b

	client := map[string]any{}
	if cfg.STSEndpoint != "" {
		client["sts_endpoint"] = cfg.STSEndpoint
	}
	if cfg.STSRegion != "" {
		client["sts_region"] = cfg.STSRegion
	}
	if cfg.ServerID != "" {
		client["iam_server_id_header_value"] = cfg.ServerID
	}
	client["max_retries"] = cfg.MaxRetries
	if err := s.write(ctx, "config/client", client); err != nil {
		return nil, err
	}
	for _, r := range cfg.Roles {
		data := map[string]any{
			"auth_type":               "iam",
			"bound_iam_principal_arn": r.ARN,
			// Resolving the ARN to a unique id needs iam:GetRole on the
			// AWS side, which does not exist here.
			"resolve_aws_unique_ids": false,
		}
		if cfg.TokenTTL != "" {
			data["token_ttl"] = cfg.TokenTTL
		}
		if cfg.TokenMaxTTL != "" {
			data["token_max_ttl"] = cfg.TokenMaxTTL
		}
		if cfg.TokenPolicies != "" {
			data["token_policies"] = cfg.TokenPolicies
		}
		if err := s.write(ctx, "role/"+r.Name, data); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// write performs a create-or-update on a backend path, as `vault write` does.
func (s *Server) write(ctx context.Context, path string, data map[string]any) error {
	req := s.request(logical.UpdateOperation, path, data)
	req.Operation = s.writeOperation(ctx, req)
	resp, err := s.backend.HandleRequest(ctx, req)
	if err == nil && resp != nil && resp.IsError() {
		err = resp.Error()
	}
	if err != nil {
		return fmt.Errorf("writing %s%s: %w", s.mount, path, err)
	}
	return nil
}

func (s *Server) request(op logical.Operation, path string, data map[string]any) *logical.Request {
	return &logical.Request{
		ID:         mustUUID(),
		Operation:  op,
		Path:       path,
		Data:       data,
		Storage:    s.storage,
		MountPoint: s.mount,
		MountType:  "aws",
	}
}

// writeOperation picks create or update the way Vault's router does: by the
// path's existence check.
func (s *Server) writeOperation(ctx context.Context, req *logical.Request) logical.Operation {
	checkFound, exists, err := s.backend.HandleExistenceCheck(ctx, req)
	if err == nil && checkFound && !exists {
		return logical.CreateOperation
	}
	return logical.UpdateOperation
}

func mustUUID() string {
	id, err := uuid.GenerateUUID()
	if err != nil {
		panic(err)
	}
	return id
}

// ServeHTTP routes Vault's HTTP API paths this server knows.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p, ok := strings.CutPrefix(r.URL.Path, "/v1/")
	if !ok {
		respondError(w, http.StatusNotFound, errors.New("404 page not found"))
		return
	}
	ns := strings.Trim(r.Header.Get("X-Vault-Namespace"), "/")
	switch {
	case strings.HasPrefix(p, "auth/token/"):
		s.serveToken(w, r, strings.TrimPrefix(p, "auth/token/"))
	case strings.HasPrefix(p, s.mount) && ns == s.cfg.Namespace:
		s.serveBackend(w, r, strings.TrimPrefix(p, s.mount))
	default:
		respondError(w, http.StatusNotFound, fmt.Errorf("no handler for route %q. route entry not found.", p))
	}
}

func (s *Server) serveBackend(w http.ResponseWriter, r *http.Request, path string) {
	ctx := r.Context()
	var op logical.Operation
	switch r.Method {
	case http.MethodGet:
		op = logical.ReadOperation
		if r.URL.Query().Get("list") == "true" {
			op = logical.ListOperation
		}
	case "LIST":
		op = logical.ListOperation
	case http.MethodPut, http.MethodPost:
		op = logical.UpdateOperation
	case http.MethodDelete:
		op = logical.DeleteOperation
	default:
		respondError(w, http.StatusMethodNotAllowed, logical.ErrUnsupportedOperation)
		return
	}
	data, err := readData(r)
	if err != nil {
		respondError(w, http.StatusBadRequest, err)
		return
	}
	req := s.request(op, path, data)
	req.Connection = connection(r)
	if path == "login" {
		if op != logical.UpdateOperation {
			respondError(w, http.StatusMethodNotAllowed, logical.ErrUnsupportedOperation)
			return
		}
		s.login(ctx, w, req)
		return
	}
	if !s.isRoot(r) {
		respondError(w, http.StatusForbidden, logical.ErrPermissionDenied)
		return
	}
	if op == logical.UpdateOperation {
		req.Operation = s.writeOperation(ctx, req)
	}
	resp, err := s.backend.HandleRequest(ctx, req)
	if status, rerr := logical.RespondErrorCommon(req, resp, err); rerr != nil || status != 0 {
		if rerr == nil {
			rerr = errors.New(http.StatusText(status))
		}
		respondError(w, status, rerr)
		return
	}
	if resp == nil {
		w.WriteHeader(http.StatusNoContent)
		return
	}
	respondOK(w, req.ID, resp)
}

func (s *Server) isRoot(r *http.Request) bool {
	t := r.Header.Get("X-Vault-Token")
	return s.cfg.RootToken != "" && subtle.ConstantTimeCompare([]byte(t), []byte(s.cfg.RootToken)) == 1
}

// login runs the backend's login and, when it authenticates, creates a
// token as Vault's LoginCreateToken does.
func (s *Server) login(ctx context.Context, w http.ResponseWriter, req *logical.Request) {
	resp, err := s.backend.HandleRequest(ctx, req)
	if status, rerr := logical.RespondErrorCommon(req, resp, err); rerr != nil || status != 0 {
		if rerr == nil {
			rerr = errors.New(http.StatusText(status))
		}
		respondError(w, status, rerr)
		return
	}
	if resp == nil || resp.Auth == nil {
		respondError(w, http.StatusInternalServerError, errors.New("internal error"))
		return
	}
	auth := resp.Auth
	ttl, warnings, err := framework.CalculateTTL(s.sys, 0, auth.TTL, auth.Period, auth.MaxTTL, auth.ExplicitMaxTTL, time.Time{})
	if err != nil {
		respondError(w, http.StatusInternalServerError, err)
		return
	}
	auth.TokenPolicies = policyutil.SanitizePolicies(auth.Policies, !auth.NoDefaultPolicy)
	auth.Policies = auth.TokenPolicies
	for _, p := range auth.Policies {
		if p == "root" {
			respondError(w, http.StatusBadRequest, errors.New("auth methods cannot create root tokens"))
			return
		}
	}
	auth.DisplayName = strings.TrimSuffix(strings.ReplaceAll(s.cfg.Mount, "/", "-")+"-"+auth.DisplayName, "-")
	auth.TTL = ttl
	auth.Orphan = true
	now := time.Now()
	auth.IssueTime = now

	typ := auth.TokenType
	switch typ {
	case logical.TokenTypeDefault, logical.TokenTypeDefaultService:
		typ = logical.TokenTypeService
	case logical.TokenTypeDefaultBatch:
		typ = logical.TokenTypeBatch
	}
	auth.TokenType = typ
	prefix := "hvs."
	if typ == logical.TokenTypeBatch {
		// Batch tokens have no accessor and cannot be renewed.
		prefix = "hvb."
		auth.Renewable = false
	} else {
		auth.Accessor = randomID(24)
	}
	auth.ClientToken = prefix + randomID(24)

	s.mu.Lock()
	s.tokens[auth.ClientToken] = &tokenEntry{id: auth.ClientToken, typ: typ, auth: auth, issued: now, expires: now.Add(ttl)}
	s.mu.Unlock()

	out := &logical.Response{Auth: auth, Warnings: append(resp.Warnings, warnings...)}
	respondOK(w, req.ID, out)
}

// lookup returns the live entry of the request's token.
func (s *Server) lookup(r *http.Request) (*tokenEntry, bool) {
	id := r.Header.Get("X-Vault-Token")
	s.mu.Lock()
	defer s.mu.Unlock()
	te, ok := s.tokens[id]
	if !ok {
		return nil, false
	}
	if !time.Now().Before(te.expires) {
		delete(s.tokens, id)
		return nil, false
	}
	return te, true
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request, path string) {
	te, ok := s.lookup(r)
	if !ok {
		respondError(w, http.StatusForbidden, logical.ErrPermissionDenied)
		return
	}
	switch {
	case path == "renew-self" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		s.renew(w, r, te)
	case path == "lookup-self" && r.Method == http.MethodGet:
		s.lookupSelf(w, te)
	case path == "revoke-self" && (r.Method == http.MethodPut || r.Method == http.MethodPost):
		s.mu.Lock()
		delete(s.tokens, te.id)
		s.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		respondError(w, http.StatusNotFound, fmt.Errorf("no handler for route %q. route entry not found.", "auth/token/"+path))
	}
}

// renew renews the token through the backend's renew handler and Vault's
// TTL rules (ExpirationManager.RenewToken).
func (s *Server) renew(w http.ResponseWriter, r *http.Request, te *tokenEntry) {
	ctx := r.Context()
	data, err := readData(r)
	if err != nil {
		respondError(w, http.StatusBadRequest, err)
		return
	}
	var increment time.Duration
	if v, ok := data["increment"]; ok {
		if increment, err = parseutil.ParseDurationSecond(v); err != nil {
			respondError(w, http.StatusBadRequest, fmt.Errorf("invalid increment: %w", err))
			return
		}
	}
	if te.typ == logical.TokenTypeBatch {
		respondError(w, http.StatusBadRequest, errors.New("batch tokens cannot be renewed"))
		return
	}
	s.mu.Lock()
	prev := *te.auth
	s.mu.Unlock()
	if !prev.Renewable {
		respondError(w, http.StatusBadRequest, errors.New("lease is not renewable"))
		return
	}
	prev.Increment = increment
	prev.IssueTime = te.issued
	req := s.request(logical.RenewOperation, "login", nil)
	req.Auth = &prev
	req.Connection = connection(r)
	resp, err := s.backend.HandleRequest(ctx, req)
	if status, rerr := logical.RespondErrorCommon(req, resp, err); rerr != nil || status != 0 {
		if rerr == nil {
			rerr = errors.New(http.StatusText(status))
		}
		respondError(w, status, rerr)
		return
	}
	if resp == nil || resp.Auth == nil {
		respondError(w, http.StatusInternalServerError, errors.New("internal error"))
		return
	}
	ttl, warnings, err := framework.CalculateTTL(s.sys, increment, resp.Auth.TTL, resp.Auth.Period, resp.Auth.MaxTTL, resp.Auth.ExplicitMaxTTL, te.issued)
	if err != nil {
		respondError(w, http.StatusInternalServerError, err)
		return
	}
	auth := *resp.Auth
	auth.TTL = ttl
	auth.ClientToken = te.id
	s.mu.Lock()
	te.auth = &auth
	te.expires = time.Now().Add(ttl)
	s.mu.Unlock()
	respondOK(w, req.ID, &logical.Response{Auth: &auth, Warnings: append(resp.Warnings, warnings...)})
}

func (s *Server) lookupSelf(w http.ResponseWriter, te *tokenEntry) {
	s.mu.Lock()
	a := *te.auth
	expires := te.expires
	s.mu.Unlock()
	ttl := time.Until(expires).Truncate(time.Second)
	respondOK(w, mustUUID(), &logical.Response{Data: map[string]any{
		"accessor":     a.Accessor,
		"display_name": a.DisplayName,
		"entity_id":    a.EntityID,
		"expire_time":  expires.UTC().Format(time.RFC3339Nano),
		"issue_time":   te.issued.UTC().Format(time.RFC3339Nano),
		"meta":         a.Metadata,
		"orphan":       a.Orphan,
		"path":         s.mount + "login",
		"policies":     a.Policies,
		"renewable":    a.Renewable,
		"ttl":          int64(ttl.Seconds()),
		"type":         te.typ.String(),
	}})
}

// readData decodes a JSON request body as Vault's HTTP layer does.
func readData(r *http.Request) (map[string]any, error) {
	var data map[string]any
	body := io.LimitReader(r.Body, 32<<20)
	if err := jsonutil.DecodeJSONFromReader(body, &data); err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("error parsing JSON")
	}
	return data, nil
}

func connection(r *http.Request) *logical.Connection {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	return &logical.Connection{RemoteAddr: host}
}

func randomID(n int) string {
	s, err := base62.Random(n)
	if err != nil {
		panic(err)
	}
	return s
}

func respondOK(w http.ResponseWriter, requestID string, resp *logical.Response) {
	out := logical.LogicalResponseToHTTPResponse(resp)
	out.RequestID = requestID
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_ = json.NewEncoder(w).Encode(out)
}

// respondError writes Vault's error shape with its status adjustments.
func respondError(w http.ResponseWriter, status int, err error) {
	logical.RespondError(w, status, err)
}
