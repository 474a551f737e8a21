// Command vault-awsauth serves HashiCorp Vault's real aws auth method
// (github.com/hashicorp/vault/builtin/credential/aws, run in-process on
// in-memory storage) behind Vault's HTTP API, for irsakit's integration
// tests. It is not a Vault server: it has no seal, no policies to enforce,
// no secrets engines and no persistence, only what a client of the aws auth
// method talks to:
//
//	PUT|POST /v1/auth/MOUNT/login          the backend's login (unauthenticated)
//	any      /v1/auth/MOUNT/PATH           the backend's other paths (role/NAME,
//	                                       config/client, ...), root token only
//	PUT|POST /v1/auth/token/renew-self     the backend's renewal, then Vault's TTL rules
//	GET      /v1/auth/token/lookup-self    the token's lease as Vault reports it
//	PUT|POST /v1/auth/token/revoke-self    forget the token
//
// Login and renewal tokens follow Vault's token store: policies are the
// backend's plus "default", TTLs are computed by the SDK's
// framework.CalculateTTL against the mount's default and maximum lease TTLs,
// batch tokens cannot be renewed, expired or revoked tokens are "permission
// denied". Errors are Vault's {"errors":[...]} with Vault's status codes.
//
// It listens on 127.0.0.1 (a random port unless -listen says otherwise) and
// prints "vault-awsauth listening on http://ADDR" on stdout once ready. The
// root token for the backend's configuration paths comes from the
// environment variable IRSAKIT_VAULT_ROOT_TOKEN (admin paths are refused
// without it). Flags configure config/client and roles at startup, written
// through the backend's own paths as `vault write` would.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
)

// vaultModule is the module whose aws auth method this program serves.
const vaultModule = "github.com/hashicorp/vault"

// sourceHash identifies the source this binary was built from; the install
// script sets it (-ldflags -X) so the test harness can refuse a stale build.
var sourceHash = "unknown"

type roleFlags []string

func (r *roleFlags) String() string     { return strings.Join(*r, ",") }
func (r *roleFlags) Set(v string) error { *r = append(*r, v); return nil }

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "vault-awsauth:", err)
		os.Exit(1)
	}
}

func run() error {
	var (
		cfg     Config
		roles   roleFlags
		listen  = flag.String("listen", "127.0.0.1:0", "address to listen on (loopback only)")
		version = flag.Bool("version", false, "print the version of "+vaultModule+" built in and the source hash, and exit")
		level   = flag.String("log-level", "warn", "backend log level (trace, debug, info, warn, error)")
	)
	flag.StringVar(&cfg.Mount, "mount", "aws", "path the aws auth method is mounted at (auth/MOUNT)")
	flag.StringVar(&cfg.Namespace, "namespace", "", "serve the mount only to requests whose X-Vault-Namespace is this (as a mount inside a Vault Enterprise namespace); empty: the root namespace")
	flag.DurationVar(&cfg.DefaultLeaseTTL, "default-lease-ttl", 768*time.Hour, "the mount's default lease TTL (Vault's default: 768h)")
	flag.DurationVar(&cfg.MaxLeaseTTL, "max-lease-ttl", 768*time.Hour, "the mount's maximum lease TTL (Vault's default: 768h)")
	flag.StringVar(&cfg.STSEndpoint, "sts-endpoint", "", "config/client sts_endpoint: where logins' signed GetCallerIdentity requests are sent")
	flag.StringVar(&cfg.STSRegion, "sts-region", "", "config/client sts_region")
	flag.StringVar(&cfg.ServerID, "server-id", "", "config/client iam_server_id_header_value: the X-Vault-AWS-IAM-Server-ID logins must sign")
	flag.IntVar(&cfg.MaxRetries, "max-retries", 0, "config/client max_retries for the STS request (Vault's default: 3; here 0 so a failure shows at once)")
	flag.Var(&roles, "role", "NAME=ARN: an iam role bound to the principal ARN (repeatable)")
	flag.StringVar(&cfg.TokenTTL, "token-ttl", "", "token_ttl of the -role roles")
	flag.StringVar(&cfg.TokenMaxTTL, "token-max-ttl", "", "token_max_ttl of the -role roles")
	flag.StringVar(&cfg.TokenPolicies, "token-policies", "", "token_policies of the -role roles (comma-separated)")
	flag.Parse()

	if *version {
		v, err := builtVaultVersion()
		if err != nil {
			return err
		}
		fmt.Println(v, "source", sourceHash)
		return nil
	}
	for _, r := range roles {
		name, arn, ok := strings.Cut(r, "=")
		if !ok || name == "" || arn == "" {
			return fmt.Errorf("-role %q: want NAME=ARN", r)
		}
		cfg.Roles = append(cfg.Roles, RoleFlag{Name: name, ARN: arn})
	}
	host, _, err := net.SplitHostPort(*listen)
	if err != nil {
		return fmt.Errorf("-listen %q: %w", *listen, err)
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("-listen %q: only loopback addresses (127.0.0.1, ::1)", *listen)
	}
	cfg.RootToken = os.Getenv("IRSAKIT_VAULT_ROOT_TOKEN")
	cfg.Logger = hclog.New(&hclog.LoggerOptions{
		Name:   "aws",
		Level:  hclog.LevelFromString(*level),
		Output: os.Stderr,
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	srv, err := NewServer(ctx, cfg)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	hs := &http.Server{Handler: srv, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	fmt.Printf("vault-awsauth listening on http://%s\n", ln.Addr())
	select {
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return hs.Shutdown(sctx)
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	}
}

// builtVaultVersion reports the version of the Vault module compiled in.
func builtVaultVersion() (string, error) {
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "", errors.New("no build information in the binary")
	}
	for _, d := range info.Deps {
		if d.Path == vaultModule {
			if d.Replace != nil {
				return "", fmt.Errorf("%s is replaced by %s", vaultModule, d.Replace.Path)
			}
			return d.Version, nil
		}
	}
	return "", fmt.Errorf("%s is not in the binary's build information", vaultModule)
}
