package vaultauth

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
)

// Sentinel errors. Every error this package returns wraps at most one of
// them; test with errors.Is. Refusals by Vault are a *[VaultError] instead.
var (
	// ErrInvalidAddress: the Vault address is not an http(s)://HOST[:PORT]
	// URL.
	ErrInvalidAddress = errors.New("vaultauth: invalid Vault address")
	// ErrInsecureTransport: the Vault address is plain http to a host other
	// than the loopback interface, where the login request (a replayable
	// credential for 15 minutes) and the token would travel unencrypted.
	ErrInsecureTransport = errors.New("vaultauth: Vault address without TLS")
	// ErrInvalidRole: the Vault role name is not one Vault accepts.
	ErrInvalidRole = errors.New("vaultauth: invalid Vault role")
	// ErrInvalidOptions: Options.Mount, Options.Namespace or
	// Options.ServerID is malformed.
	ErrInvalidOptions = errors.New("vaultauth: invalid options")
	// ErrNoCredentials: the aws.Config has no credentials provider.
	ErrNoCredentials = errors.New("vaultauth: no AWS credentials provider")
	// ErrCredentialsExpired: the provider returned credentials that have
	// already expired; nothing is signed with them.
	ErrCredentialsExpired = errors.New("vaultauth: AWS credentials expired")
	// ErrNoRegion: no region to sign for: neither the aws.Config nor
	// Options.Region names one.
	ErrNoRegion = errors.New("vaultauth: no AWS region")
	// ErrInvalidRegion: the region (of the aws.Config or Options.Region)
	// is not a region name.
	ErrInvalidRegion = errors.New("vaultauth: invalid AWS region")
	// ErrInvalidEndpoint: the STS endpoint cannot carry a Vault login (not
	// an http(s) URL, or it has a query string, which Vault refuses on a
	// POST), or the SDK could not resolve one.
	ErrInvalidEndpoint = errors.New("vaultauth: invalid STS endpoint")
	// ErrUnexpectedResponse: Vault answered with something that is not a
	// login or renewal answer (no client token, not JSON).
	ErrUnexpectedResponse = errors.New("vaultauth: unexpected answer from Vault")
	// ErrClosed: the TokenSource has been closed.
	ErrClosed = errors.New("vaultauth: token source closed")
)

// VaultError is Vault's refusal of a login or renewal: the HTTP status and
// the messages of Vault's {"errors":[...]} answer, which never contain a
// token or a credential. Match it with errors.As.
type VaultError struct {
	// Op is what was refused: "login" or "renew-self".
	Op string
	// Path is the API path, e.g. "auth/aws/login" or "auth/token/renew-self".
	Path string
	// StatusCode is the HTTP status of the answer: 400 for a refused login
	// (wrong role, principal not bound to the role, wrong server id,
	// signature STS refused), 403 for a token that is unknown, expired or
	// revoked, 5xx when Vault itself failed.
	StatusCode int
	// Messages are Vault's error messages, in order.
	Messages []string
}

func (e *VaultError) Error() string {
	var b strings.Builder
	b.WriteString("vaultauth: Vault refused ")
	b.WriteString(e.Op)
	b.WriteString(" at ")
	b.WriteString(e.Path)
	b.WriteString(" (HTTP ")
	b.WriteString(strconv.Itoa(e.StatusCode))
	if t := http.StatusText(e.StatusCode); t != "" {
		b.WriteString(" " + t)
	}
	b.WriteString(")")
	if len(e.Messages) > 0 {
		b.WriteString(": ")
		b.WriteString(strings.Join(e.Messages, "; "))
	}
	return b.String()
}

// IsPermissionDenied reports whether err is Vault's "permission denied"
// (HTTP 403): for a token, that it is unknown, expired or revoked.
func IsPermissionDenied(err error) bool {
	var ve *VaultError
	return errors.As(err, &ve) && ve.StatusCode == http.StatusForbidden
}
