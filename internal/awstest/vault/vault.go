// Package vault runs HashiCorp Vault's real aws auth method
// (github.com/hashicorp/vault/builtin/credential/aws at [VaultVersion]) as
// the peer of the vaultauth integration tests. The binary, vault-awsauth,
// is built from tools/vault (a module of its own) by tools/install-vault.sh;
// it hosts the backend in-process on in-memory storage behind Vault's HTTP
// API: /v1/auth/MOUNT/login, the backend's configuration paths
// (auth/MOUNT/role/NAME, auth/MOUNT/config/client) for the root token, and
// /v1/auth/token/{renew-self,lookup-self,revoke-self} with Vault's token
// store rules (policies plus "default", TTLs from the SDK's
// framework.CalculateTTL, batch tokens not renewable, unknown or expired
// tokens "permission denied").
//
// A login is verified by Vault's own code: the request must be a POST (or
// GET) of exactly Action=GetCallerIdentity&Version=..., with no query string
// on a POST and no X-Amz-* header outside Vault's allow list, carrying the
// configured X-Vault-AWS-IAM-Server-ID signed; Vault then forwards it to
// the configured sts_endpoint (here the STS stand-in of
// internal/awstest/sts, which checks the signature) and binds the caller's
// ARN to the role.
//
// [Start] starts one server process on 127.0.0.1; [Need] skips a test when
// the binary is missing unless [Required] (CI, IRSAKIT_REQUIRE_VAULT).
//
// Where the host differs from a Vault server, tests must allow for it: no
// seal, no ACL policies are enforced, no identity entities (entity_id is
// empty), no audit, nothing persists across restarts, and the mount's
// tunables come from flags.
package vault

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Options configure [Start]. Every field has a usable zero value.
type Options struct {
	// Bin is the vault-awsauth binary. Default: [Find].
	Bin string
	// Mount is the path the aws auth method is mounted at. Default "aws".
	Mount string
	// Namespace, when set, serves the mount only to requests with this
	// X-Vault-Namespace, as a mount inside a Vault Enterprise namespace.
	Namespace string
	// STSEndpoint, STSRegion and ServerID set config/client's
	// sts_endpoint, sts_region and iam_server_id_header_value.
	STSEndpoint string
	STSRegion   string
	ServerID    string
	// DefaultLeaseTTL and MaxLeaseTTL are the mount's lease TTLs. Default:
	// Vault's, 768h each.
	DefaultLeaseTTL time.Duration
	MaxLeaseTTL     time.Duration
	// Log receives the process's stderr (the backend's log). Default: kept
	// in memory and included in a startup error.
	Log io.Writer
}

// Server is a running vault-awsauth process. It is safe for concurrent use.
type Server struct {
	// URL is the Vault address, http://127.0.0.1:PORT.
	URL string
	// Mount is the aws auth method's mount path.
	Mount string
	// Namespace is the namespace the mount lives in ("" for root).
	Namespace string

	root string
	cmd  *exec.Cmd
	wait chan error
	hc   *http.Client

	closeOnce sync.Once
}

// Start runs a server and waits until it listens.
func Start(ctx context.Context, optFns ...func(*Options)) (*Server, error) {
	o := Options{Mount: "aws"}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Bin == "" {
		bin, err := Find()
		if err != nil {
			return nil, err
		}
		o.Bin = bin
	}
	root := make([]byte, 16)
	if _, err := rand.Read(root); err != nil {
		return nil, err
	}
	s := &Server{
		Mount:     strings.Trim(o.Mount, "/"),
		Namespace: strings.Trim(o.Namespace, "/"),
		root:      "hvs." + hex.EncodeToString(root),
		wait:      make(chan error, 1),
		hc:        &http.Client{Timeout: 30 * time.Second},
	}
	args := []string{"-listen", "127.0.0.1:0", "-mount", s.Mount}
	if s.Namespace != "" {
		args = append(args, "-namespace", s.Namespace)
	}
	for flag, v := range map[string]string{"-sts-endpoint": o.STSEndpoint, "-sts-region": o.STSRegion, "-server-id": o.ServerID} {
		if v != "" {
			args = append(args, flag, v)
		}
	}
	if o.DefaultLeaseTTL > 0 {
		args = append(args, "-default-lease-ttl", o.DefaultLeaseTTL.String())
	}
	if o.MaxLeaseTTL > 0 {
		args = append(args, "-max-lease-ttl", o.MaxLeaseTTL.String())
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Env = []string{"PATH=/usr/bin:/bin", "IRSAKIT_VAULT_ROOT_TOKEN=" + s.root}
	var logBuf bytes.Buffer
	var logMu sync.Mutex
	if o.Log != nil {
		cmd.Stderr = o.Log
	} else {
		cmd.Stderr = writerFunc(func(p []byte) (int, error) {
			logMu.Lock()
			defer logMu.Unlock()
			if logBuf.Len() < 1<<20 {
				logBuf.Write(p)
			}
			return len(p), nil
		})
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("vault: starting %s: %w", o.Bin, err)
	}
	s.cmd = cmd
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		sent := false
		for sc.Scan() {
			if u, ok := strings.CutPrefix(sc.Text(), "vault-awsauth listening on "); ok && !sent {
				addr <- u
				sent = true
			}
		}
		if !sent {
			close(addr)
		}
	}()
	go func() { s.wait <- cmd.Wait() }()
	select {
	case u, ok := <-addr:
		if ok {
			s.URL = u
			return s, nil
		}
	case <-ctx.Done():
	}
	_ = s.Close()
	logMu.Lock()
	defer logMu.Unlock()
	return nil, fmt.Errorf("vault: %s did not start: %v\n%s", o.Bin, context.Cause(ctx), logBuf.String())
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// Close stops the process (SIGTERM, then SIGKILL after 10 s). It is
// idempotent.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		_ = s.cmd.Process.Signal(syscall.SIGTERM)
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-s.wait:
		case <-t.C:
			_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
			<-s.wait
		}
	})
	return nil
}

// Error is a Vault error answer to one of the Server's helpers.
type Error struct {
	StatusCode int
	Errors     []string
}

func (e *Error) Error() string {
	return fmt.Sprintf("vault: HTTP %d: %s", e.StatusCode, strings.Join(e.Errors, "; "))
}

// Do sends a request to the server's API (path without /v1/), with token
// as X-Vault-Token unless empty and the server's namespace, and returns
// the decoded JSON answer (nil for 204). A non-2xx answer is an *Error.
func (s *Server) Do(ctx context.Context, method, path, token string, body any) (map[string]any, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, s.URL+"/v1/"+strings.TrimPrefix(path, "/"), rd)
	if err != nil {
		return nil, err
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	if s.Namespace != "" {
		req.Header.Set("X-Vault-Namespace", s.Namespace)
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("vault: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var out map[string]any
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			return nil, fmt.Errorf("vault: %s %s: HTTP %d, not JSON: %q", method, path, resp.StatusCode, raw)
		}
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e := &Error{StatusCode: resp.StatusCode}
		if errs, ok := out["errors"].([]any); ok {
			for _, m := range errs {
				e.Errors = append(e.Errors, fmt.Sprint(m))
			}
		}
		return nil, e
	}
	return out, nil
}

// Write writes data to a path of the auth mount with the root token, as
// `vault write auth/MOUNT/PATH key=value ...` does (e.g. "role/app",
// "config/client").
func (s *Server) Write(ctx context.Context, path string, data map[string]any) error {
	_, err := s.Do(ctx, http.MethodPut, "auth/"+s.Mount+"/"+strings.TrimPrefix(path, "/"), s.root, data)
	return err
}

// Read reads a path of the auth mount with the root token; it returns the
// answer's data.
func (s *Server) Read(ctx context.Context, path string) (map[string]any, error) {
	out, err := s.Do(ctx, http.MethodGet, "auth/"+s.Mount+"/"+strings.TrimPrefix(path, "/"), s.root, nil)
	if err != nil {
		return nil, err
	}
	d, _ := out["data"].(map[string]any)
	return d, nil
}

// Lookup is what auth/token/lookup-self reports about a token.
type Lookup struct {
	Policies  []string
	TTL       time.Duration
	Renewable bool
	Type      string
	Meta      map[string]string
}

// LookupSelf looks token up as its holder would.
func (s *Server) LookupSelf(ctx context.Context, token string) (Lookup, error) {
	out, err := s.Do(ctx, http.MethodGet, "auth/token/lookup-self", token, nil)
	if err != nil {
		return Lookup{}, err
	}
	d, _ := out["data"].(map[string]any)
	var l Lookup
	if ps, ok := d["policies"].([]any); ok {
		for _, p := range ps {
			l.Policies = append(l.Policies, fmt.Sprint(p))
		}
	}
	if ttl, ok := d["ttl"].(float64); ok {
		l.TTL = time.Duration(ttl) * time.Second
	}
	l.Renewable, _ = d["renewable"].(bool)
	l.Type, _ = d["type"].(string)
	if m, ok := d["meta"].(map[string]any); ok {
		l.Meta = map[string]string{}
		for k, v := range m {
			l.Meta[k] = fmt.Sprint(v)
		}
	}
	return l, nil
}

// RevokeSelf revokes token.
func (s *Server) RevokeSelf(ctx context.Context, token string) error {
	_, err := s.Do(ctx, http.MethodPut, "auth/token/revoke-self", token, nil)
	return err
}

// RoleIAM returns the data of an iam role bound to principalARN, as
// `vault write auth/aws/role/NAME auth_type=iam bound_iam_principal_arn=ARN
// resolve_aws_unique_ids=false` with token_policies, plus extra fields.
// resolve_aws_unique_ids is off because resolving an ARN to its unique id
// needs IAM's GetRole, which the stand-ins do not serve.
func RoleIAM(principalARN string, policies []string, extra map[string]any) map[string]any {
	d := map[string]any{
		"auth_type":               "iam",
		"bound_iam_principal_arn": principalARN,
		"resolve_aws_unique_ids":  false,
		"token_policies":          strings.Join(policies, ","),
	}
	for k, v := range extra {
		d[k] = v
	}
	return d
}

// Seconds formats d as Vault's duration fields accept it.
func Seconds(d time.Duration) string { return strconv.FormatInt(int64(d/time.Second), 10) + "s" }
