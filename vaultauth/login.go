package vaultauth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	smithyauth "github.com/aws/smithy-go/auth"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/irsakit/irsakit/internal/partition"
)

// stsBody is the GetCallerIdentity call in STS's Query protocol, the only
// body Vault accepts (Action and Version, nothing else).
const stsBody = "Action=GetCallerIdentity&Version=2011-06-15"

// SignatureLifetime is how long STS accepts the signed request after
// signing (its allowed clock skew), and so how long a [LoginRequest] can be
// used.
const SignatureLifetime = 15 * time.Minute

// LoginRequest is the body of a login to Vault's aws auth method with the
// iam auth type: a SigV4-signed sts:GetCallerIdentity request, which Vault
// forwards to STS to learn the caller's IAM identity. Anyone holding it can
// log in as that identity until [LoginRequest.Expires], so it prints
// redacted with fmt's verbs and slog; [LoginRequest.Data] is the only way to
// its content. It is immutable and safe for concurrent use.
type LoginRequest struct {
	d *loginData // nil for the zero LoginRequest
}

type loginData struct {
	mount, role, serverID string
	stsURL, region        string
	signedAt              time.Time
	// secret sits behind its own pointer, out of reach of fmt's printing
	// of unexported fields (see tokenData).
	secret *loginSecret
}

type loginSecret struct {
	data map[string]any
}

// BuildLogin signs a login request for role (the NAME of Vault's
// auth/MOUNT/role/NAME; empty lets Vault pick the role named like the IAM
// role) with the credentials of cfg, for the STS endpoint the session's
// STS client uses (see [Options.STSEndpoint]). Send it with [Login], or
// hand [LoginRequest.Data] to another Vault client at [LoginRequest.Path].
func BuildLogin(ctx context.Context, cfg aws.Config, role string, optFns ...func(*Options)) (LoginRequest, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if err := o.setDefaults(); err != nil {
		return LoginRequest{}, err
	}
	return buildLogin(ctx, cfg, role, &o)
}

func buildLogin(ctx context.Context, cfg aws.Config, role string, o *Options) (LoginRequest, error) {
	if err := checkRole(role); err != nil {
		return LoginRequest{}, err
	}
	if cfg.Credentials == nil {
		return LoginRequest{}, fmt.Errorf("%w: the aws.Config has no Credentials: load it with irsa.Load or config.LoadDefaultConfig", ErrNoCredentials)
	}
	endpoint, region, err := resolveSTS(ctx, cfg, o)
	if err != nil {
		return LoginRequest{}, err
	}
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		return LoginRequest{}, fmt.Errorf("vaultauth: retrieving AWS credentials: %w", err)
	}
	now := o.clock.Now()
	if creds.CanExpire && !now.Before(creds.Expires) {
		return LoginRequest{}, fmt.Errorf("%w: the provider (%s) returned credentials that expired at %s",
			ErrCredentialsExpired, creds.Source, creds.Expires.UTC().Format(time.RFC3339))
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, strings.NewReader(stsBody))
	if err != nil {
		return LoginRequest{}, fmt.Errorf("%w: %q: %v", ErrInvalidEndpoint, endpoint, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	if o.ServerID != "" {
		req.Header.Set(ServerIDHeader, o.ServerID)
	}
	sum := sha256.Sum256([]byte(stsBody))
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "sts", region, now); err != nil {
		return LoginRequest{}, fmt.Errorf("vaultauth: signing the GetCallerIdentity request: %w", err)
	}
	headers, err := json.Marshal(req.Header)
	if err != nil {
		return LoginRequest{}, fmt.Errorf("vaultauth: encoding the signed headers: %w", err)
	}
	data := map[string]any{
		"iam_http_request_method": http.MethodPost,
		"iam_request_url":         base64.StdEncoding.EncodeToString([]byte(endpoint)),
		"iam_request_body":        base64.StdEncoding.EncodeToString([]byte(stsBody)),
		"iam_request_headers":     base64.StdEncoding.EncodeToString(headers),
	}
	if role != "" {
		data["role"] = role
	}
	return LoginRequest{d: &loginData{
		mount: o.Mount, role: role, serverID: o.ServerID,
		stsURL: endpoint, region: region, signedAt: now, secret: &loginSecret{data: data},
	}}, nil
}

// resolveSTS returns the STS URL to sign for and the signing region: the
// endpoint the SDK's STS client built from cfg would call.
func resolveSTS(ctx context.Context, cfg aws.Config, o *Options) (endpoint, region string, err error) {
	client := sts.NewFromConfig(cfg, func(so *sts.Options) {
		if o.Region != "" {
			so.Region = o.Region
		}
		if o.STSEndpoint != "" {
			so.BaseEndpoint = aws.String(o.STSEndpoint)
		}
	})
	so := client.Options()
	if so.Region == "" {
		return "", "", fmt.Errorf("%w: the aws.Config has no region to sign for: set AWS_REGION (or Options.Region) to the region of the STS endpoint Vault calls", ErrNoRegion)
	}
	// aws-global is the SDK's name for STS's global endpoint.
	if so.Region != "aws-global" && !partition.ValidRegion(so.Region) {
		return "", "", fmt.Errorf("%w: %s; use the region of the STS endpoint Vault calls", ErrInvalidRegion, partition.RegionError("region", so.Region))
	}
	params := sts.EndpointParameters{
		Region:       aws.String(so.Region),
		UseDualStack: aws.Bool(so.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
		UseFIPS:      aws.Bool(so.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		Endpoint:     so.BaseEndpoint,
	}
	ep, err := so.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return "", "", fmt.Errorf("%w: resolving STS for region %q: %v", ErrInvalidEndpoint, so.Region, err)
	}
	u := ep.URI
	if u.Scheme != "https" && u.Scheme != "http" || u.Host == "" {
		return "", "", fmt.Errorf("%w: %q is not an http(s) URL", ErrInvalidEndpoint, u.Redacted())
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return "", "", fmt.Errorf("%w: %q: Vault refuses a POST whose iam_request_url has a query string; use the endpoint without one", ErrInvalidEndpoint, u.Redacted())
	}
	if u.Path == "" {
		u.Path = "/"
	}
	region = so.Region
	if opts, ok := smithyauth.GetAuthOptions(&ep.Properties); ok {
		for _, opt := range opts {
			// Endpoint rules name the scheme "sigv4"; smithy's ID is
			// "aws.auth#sigv4".
			if opt.SchemeID != "sigv4" && opt.SchemeID != smithyauth.SchemeIDSigV4 {
				continue
			}
			if r, ok := smithyhttp.GetSigV4SigningRegion(&opt.SignerProperties); ok && r != "" {
				region = r
			}
			break
		}
	}
	return u.String(), region, nil
}

func (r LoginRequest) data() *loginData {
	if r.d == nil {
		return &loginData{secret: &loginSecret{}}
	}
	return r.d
}

// Data returns the login's parameters: role, iam_http_request_method,
// iam_request_url, iam_request_body and iam_request_headers (the last
// three base64-encoded, the headers as JSON, as Vault's own client sends
// them), to be written to [LoginRequest.Path]. It is a fresh copy. Never log
// it: it is a credential until [LoginRequest.Expires].
func (r LoginRequest) Data() map[string]any { return maps.Clone(r.data().secret.data) }

// Path returns the Vault API path the login goes to, "auth/MOUNT/login".
func (r LoginRequest) Path() string {
	if r.d == nil {
		return ""
	}
	return "auth/" + r.d.mount + "/login"
}

// Role returns the Vault role logged in to ("" lets Vault choose the role
// named like the IAM role).
func (r LoginRequest) Role() string { return r.data().role }

// STSURL returns the STS endpoint the request is signed for.
func (r LoginRequest) STSURL() string { return r.data().stsURL }

// Region returns the region the request is signed for.
func (r LoginRequest) Region() string { return r.data().region }

// ServerID returns the signed X-Vault-AWS-IAM-Server-ID value ("" if none).
func (r LoginRequest) ServerID() string { return r.data().serverID }

// SignedAt returns the signing time.
func (r LoginRequest) SignedAt() time.Time { return r.data().signedAt }

// Expires returns when STS stops accepting the signature, and so Vault the
// login: [SignatureLifetime] after signing.
func (r LoginRequest) Expires() time.Time {
	if r.d == nil {
		return time.Time{}
	}
	return r.d.signedAt.Add(SignatureLifetime)
}

// IsZero reports whether r is the zero LoginRequest.
func (r LoginRequest) IsZero() bool { return r.d == nil }

// String returns a redacted description of the login request.
func (r LoginRequest) String() string {
	if r.d == nil {
		return "vaultauth.LoginRequest(none)"
	}
	var b strings.Builder
	b.WriteString("vaultauth.LoginRequest(")
	b.WriteString(r.Path())
	if r.d.role != "" {
		b.WriteString(" role " + r.d.role)
	}
	b.WriteString(", signed for " + r.d.stsURL + " " + r.d.region)
	if r.d.serverID != "" {
		b.WriteString(", server id " + strconv.Quote(r.d.serverID))
	}
	b.WriteString(", " + redacted + ")")
	return b.String()
}

// GoString returns the redacted description for %#v.
func (r LoginRequest) GoString() string { return r.String() }

// Format writes the redacted description for every verb and flag.
func (r LoginRequest) Format(f fmt.State, verb rune) { formatRedacted(f, verb, r.String()) }

// LogValue implements slog.LogValuer with a redacted group.
func (r LoginRequest) LogValue() slog.Value {
	if r.d == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("path", r.Path()),
		slog.String("role", r.d.role),
		slog.String("sts", r.d.stsURL),
		slog.String("region", r.d.region),
		slog.String("server_id", r.d.serverID),
		slog.String("data", redacted),
	)
}

var (
	_ fmt.Stringer   = LoginRequest{}
	_ fmt.GoStringer = LoginRequest{}
	_ fmt.Formatter  = LoginRequest{}
	_ slog.LogValuer = LoginRequest{}
)
