package vaultauth

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
)

// DefaultMount is the path the aws auth method is enabled at unless
// `vault auth enable -path=...` chose another.
const DefaultMount = "aws"

// ServerIDHeader is the header Vault's iam_server_id_header_value checks;
// it must be signed into the GetCallerIdentity request.
const ServerIDHeader = "X-Vault-AWS-IAM-Server-ID"

// Options configure [BuildLogin], [Login] and [NewTokenSource]. Every field
// has a usable zero value.
type Options struct {
	// Mount is the path the aws auth method is enabled at: logins go to
	// /v1/auth/MOUNT/login. Default [DefaultMount] ("aws").
	Mount string
	// ServerID is the value of the X-Vault-AWS-IAM-Server-ID header signed
	// into the request, for a Vault configured with
	// iam_server_id_header_value (which must then equal it). Default: no
	// header.
	ServerID string
	// Namespace is sent as X-Vault-Namespace (Vault Enterprise). Default:
	// none, the root namespace.
	Namespace string

	// Region is the region whose STS endpoint is signed for. Default: the
	// aws.Config's region. Vault must send the request to the same
	// endpoint: set its sts_endpoint and sts_region to this region's, or
	// use_sts_region_from_client=true.
	Region string
	// STSEndpoint is the STS URL the request is signed for and that
	// iam_request_url names. Default: the endpoint the SDK's STS client
	// resolves from the aws.Config for Region (which honours
	// AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, the config's BaseEndpoint,
	// FIPS and dual-stack settings).
	STSEndpoint string

	// HTTPClient sends the requests to Vault. Default: a client with a
	// 30 s timeout on http.DefaultTransport.
	HTTPClient *http.Client
	// AllowHTTP permits a plain http:// Vault address on a host other than
	// the loopback interface (a Vault agent or proxy on localhost needs no
	// opt-in). Default false: such an address is ErrInsecureTransport.
	AllowHTTP bool

	// Margin: a TokenSource stops handing out a token this long before its
	// lease ends (at most a tenth of the lease), so a request made with it
	// still arrives in time. Default 30 s.
	Margin time.Duration
	// Logger receives debug records for logins and renewals and warnings
	// for failed background refreshes; never a token or a signed request.
	// Default: no logging.
	Logger *slog.Logger

	// clock is the time source; tests set it through export_test.go.
	clock clock.Clock
}

const (
	defaultMargin  = 30 * time.Second
	defaultTimeout = 30 * time.Second
)

var (
	// roleName is the role pattern of Vault's auth/aws/role/NAME path
	// (framework.GenericNameRegex).
	roleName    = regexp.MustCompile(`^\w(?:[\w.-]*\w)?$`)
	mountSegRe  = regexp.MustCompile(`^[\w.-]+$`)
	namespaceRe = regexp.MustCompile(`^[\w.-]+(?:/[\w.-]+)*$`)
)

func (o *Options) setDefaults() error {
	o.Mount = strings.Trim(o.Mount, "/")
	if o.Mount == "" {
		o.Mount = DefaultMount
	}
	for _, seg := range strings.Split(o.Mount, "/") {
		if !mountSegRe.MatchString(seg) || seg == "." || seg == ".." {
			return fmt.Errorf("%w: Mount %q is not an auth mount path: use the path given to `vault auth enable -path` (default %q)", ErrInvalidOptions, o.Mount, DefaultMount)
		}
	}
	o.Namespace = strings.Trim(o.Namespace, "/")
	if o.Namespace != "" && !namespaceRe.MatchString(o.Namespace) {
		return fmt.Errorf("%w: Namespace %q is not a Vault namespace path like \"team\" or \"org/team\"", ErrInvalidOptions, o.Namespace)
	}
	if strings.ContainsAny(o.ServerID, "\r\n\x00") {
		return fmt.Errorf("%w: ServerID contains a line break or NUL: use the exact iam_server_id_header_value of the Vault configuration", ErrInvalidOptions)
	}
	if o.ServerID != strings.TrimSpace(o.ServerID) {
		return fmt.Errorf("%w: ServerID %q has leading or trailing spaces, which signing would drop while Vault compares them: remove them", ErrInvalidOptions, o.ServerID)
	}
	if o.Margin <= 0 {
		o.Margin = defaultMargin
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: defaultTimeout}
	}
	o.clock = clock.Or(o.clock)
	return nil
}

func checkRole(role string) error {
	if role == "" || roleName.MatchString(role) {
		return nil
	}
	return fmt.Errorf("%w: %q: a role name is letters, digits, '_', '-' and '.', starting and ending with a letter, digit or '_' (the NAME of `vault write auth/aws/role/NAME`)", ErrInvalidRole, role)
}

// parseAddress checks a Vault address (VAULT_ADDR's form) and returns it
// without a trailing slash.
func parseAddress(addr string, allowHTTP bool) (*url.URL, error) {
	const want = "want http(s)://HOST[:PORT], e.g. https://vault.example.com:8200 (the value of VAULT_ADDR)"
	u, err := url.Parse(strings.TrimSpace(addr))
	if err != nil || addr == "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidAddress, addr, want)
	}
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.Hostname() == "" {
		return nil, fmt.Errorf("%w: %q: %s", ErrInvalidAddress, addr, want)
	}
	if u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: %q: user info, query and fragment are not allowed: %s", ErrInvalidAddress, u.Redacted(), want)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("%w: %q: port out of range: %s", ErrInvalidAddress, addr, want)
		}
	}
	if u.Scheme == "http" && !allowHTTP && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %q: use https (or set Options.AllowHTTP for a trusted network)", ErrInsecureTransport, addr)
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
