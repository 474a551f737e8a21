package awstest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/podidentity"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/internal/clock"
)

// Options configure [New]. Every field has a usable zero value.
type Options struct {
	// Region the STS stand-in claims and AWS_REGION. Default "us-east-1".
	Region string
	// Namespace and ServiceAccount make the token subject
	// system:serviceaccount:NAMESPACE:SERVICEACCOUNT the role trusts.
	// Defaults "mcp" and "mcp-server".
	Namespace      string
	ServiceAccount string
	// RoleName is the IAM role the service account is annotated with.
	// Default "mcp-server-role".
	RoleName string
	// CredentialTTL is the lifetime of credentials STS issues (capped by
	// the requested DurationSeconds) and of those the EKS Pod Identity
	// endpoint issues. Default one hour.
	CredentialTTL time.Duration
	// MaxSessionDuration is the role's MaxSessionDuration. Default one
	// hour, IAM's default.
	MaxSessionDuration time.Duration
	// Clock is shared by the registry, issuer and STS. Default: the system
	// clock. With a fake clock keep it near the real time if requests are
	// SigV4-signed by the SDK (it signs with the real time and the verifier
	// allows 15 minutes of skew).
	Clock clock.Clock
	// RolePolicies are identity policies (IAM JSON) attached to the role.
	RolePolicies [][]byte
}

// Env is a complete IRSA environment: an EKS-like OIDC issuer registered as
// an IAM OIDC provider, a role trusting the service account, STS, the
// credentials registry every stand-in verifies signatures with, and the
// projected token file. Its fields are read-only after New; the components
// are safe for concurrent use.
type Env struct {
	Registry *sigv4.Registry
	IAM      *iam.IAM
	Issuer   *oidc.Issuer
	STS      *sts.Server
	// PodIdentity is the node's EKS Pod Identity endpoint, with an
	// association of the service account to RoleARN.
	PodIdentity *podidentity.Server

	Region      string
	Account     string // sigv4.DefaultAccount
	RoleARN     string // arn:aws:iam::ACCOUNT:role/ROLENAME
	ProviderARN string // arn:aws:iam::ACCOUNT:oidc-provider/HOST/id/ID
	Subject     string // system:serviceaccount:NAMESPACE:SERVICEACCOUNT
	TokenFile   string // DIR/var/run/secrets/eks.amazonaws.com/serviceaccount/token
	// PodIdentityTokenFile is the projected EKS Pod Identity token
	// (audience pods.eks.amazonaws.com):
	// DIR/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token
	PodIdentityTokenFile string
	Dir                  string // temporary directory removed by Close

	configFile      string
	credentialsFile string
}

// TrustPolicy returns the trust policy the EKS guides give an IRSA role:
// the OIDC provider as federated principal may call
// sts:AssumeRoleWithWebIdentity when the token's sub and aud equal the
// given ones (condition keys "ISSUERHOSTPATH:sub" and "ISSUERHOSTPATH:aud").
func TrustPolicy(providerARN, issuerHostPath, subject, audience string) []byte {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": providerARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{
				"StringEquals": map[string]string{
					issuerHostPath + ":sub": subject,
					issuerHostPath + ":aud": audience,
				},
			},
		}},
	}
	b, err := json.MarshalIndent(doc, "", "  ")
	if err != nil {
		panic(err) // a map of strings always marshals
	}
	return b
}

// New starts an environment. Close releases it.
func New(optFns ...func(*Options)) (env *Env, err error) {
	o := Options{
		Region:         "us-east-1",
		Namespace:      "mcp",
		ServiceAccount: "mcp-server",
		RoleName:       "mcp-server-role",
		CredentialTTL:  time.Hour,
	}
	for _, fn := range optFns {
		fn(&o)
	}
	clk := clock.Or(o.Clock)
	dir, err := os.MkdirTemp("", "awstest-")
	if err != nil {
		return nil, fmt.Errorf("awstest: %w", err)
	}
	e := &Env{
		Region:               o.Region,
		Account:              sigv4.DefaultAccount,
		Subject:              oidc.ServiceAccountSubject(o.Namespace, o.ServiceAccount),
		Dir:                  dir,
		TokenFile:            filepath.Join(dir, "var/run/secrets/eks.amazonaws.com/serviceaccount/token"),
		PodIdentityTokenFile: filepath.Join(dir, "var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"),
		configFile:           filepath.Join(dir, "aws/config"),
		credentialsFile:      filepath.Join(dir, "aws/credentials"),
	}
	defer func() {
		if err != nil {
			e.Close()
			e = nil
		}
	}()
	if err := os.MkdirAll(filepath.Dir(e.configFile), 0o700); err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	for _, f := range []string{e.configFile, e.credentialsFile} {
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			return e, fmt.Errorf("awstest: %w", err)
		}
	}
	e.Registry = sigv4.NewRegistry(clk)
	e.IAM = iam.New(e.Account)
	e.Issuer, err = oidc.New(func(oo *oidc.Options) { oo.TLS = true; oo.Clock = clk })
	if err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	e.ProviderARN = e.IAM.AddOIDCProvider(e.Issuer.URL(), oidc.DefaultAudience)
	e.RoleARN = fmt.Sprintf("arn:aws:iam::%s:role/%s", e.Account, o.RoleName)
	trust := TrustPolicy(e.ProviderARN, e.Issuer.HostPath(), e.Subject, oidc.DefaultAudience)
	if err := e.IAM.PutRole(e.RoleARN, trust, o.RolePolicies...); err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	e.STS, err = sts.New(e.Registry, e.IAM, func(so *sts.Options) {
		so.Region = o.Region
		so.Clock = clk
		so.CredentialTTL = o.CredentialTTL
		so.MaxSessionDuration = o.MaxSessionDuration
		so.HTTPClient = e.Issuer.Client()
	})
	if err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	if _, err := e.Issuer.WriteTokenFile(e.TokenFile, e.Subject); err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	e.PodIdentity, err = podidentity.New(e.Registry, e.Issuer, func(po *podidentity.Options) {
		po.Clock = clk
		po.CredentialTTL = o.CredentialTTL
	})
	if err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	e.PodIdentity.Associate(o.Namespace, o.ServiceAccount, e.RoleARN)
	if _, err := e.Issuer.WriteTokenFile(e.PodIdentityTokenFile, e.Subject, oidc.WithAudience(podidentity.Audience)); err != nil {
		return e, fmt.Errorf("awstest: %w", err)
	}
	e.PodIdentity.SetTokenFile(e.PodIdentityTokenFile)
	return e, nil
}

// Start is New for tests: it fails tb on error and closes the environment
// when tb ends.
func Start(tb testing.TB, optFns ...func(*Options)) *Env {
	tb.Helper()
	env, err := New(optFns...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := env.Close(); err != nil {
			tb.Errorf("awstest: close: %v", err)
		}
	})
	return env
}

// Close stops the servers and removes Dir.
func (e *Env) Close() error {
	var errs []error
	if e.PodIdentity != nil {
		errs = append(errs, e.PodIdentity.Close())
	}
	if e.STS != nil {
		errs = append(errs, e.STS.Close())
	}
	if e.Issuer != nil {
		errs = append(errs, e.Issuer.Close())
	}
	if e.Dir != "" {
		errs = append(errs, os.RemoveAll(e.Dir))
	}
	return errors.Join(errs...)
}

// Environ returns the environment of an IRSA pod pointed at the stand-ins,
// as "KEY=VALUE": AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
// AWS_ENDPOINT_URL_STS, AWS_REGION, AWS_STS_REGIONAL_ENDPOINTS=regional,
// AWS_EC2_METADATA_DISABLED=true, and AWS_CONFIG_FILE and
// AWS_SHARED_CREDENTIALS_FILE naming empty files under Dir so a developer's
// ~/.aws never leaks in. Use it for child processes.
func (e *Env) Environ() []string {
	return []string{
		"AWS_ROLE_ARN=" + e.RoleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE=" + e.TokenFile,
		"AWS_ENDPOINT_URL_STS=" + e.STS.URL(),
		"AWS_REGION=" + e.Region,
		"AWS_STS_REGIONAL_ENDPOINTS=regional",
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + e.configFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + e.credentialsFile,
	}
}

// PodIdentityEnviron returns the environment of an EKS Pod Identity pod
// pointed at the stand-ins, as "KEY=VALUE": AWS_CONTAINER_CREDENTIALS_FULL_URI
// (the Pod Identity stand-in), AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE,
// AWS_REGION, AWS_ENDPOINT_URL_STS, AWS_EC2_METADATA_DISABLED=true and the
// empty shared config files; no IRSA variable.
func (e *Env) PodIdentityEnviron() []string {
	return []string{
		"AWS_CONTAINER_CREDENTIALS_FULL_URI=" + e.PodIdentity.URL(),
		"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE=" + e.PodIdentityTokenFile,
		"AWS_ENDPOINT_URL_STS=" + e.STS.URL(),
		"AWS_REGION=" + e.Region,
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_CONFIG_FILE=" + e.configFile,
		"AWS_SHARED_CREDENTIALS_FILE=" + e.credentialsFile,
	}
}

// SetenvPodIdentity is [Env.Setenv] for an EKS Pod Identity pod: it sets
// PodIdentityEnviron instead of the IRSA variables (AWS_ROLE_ARN and
// AWS_WEB_IDENTITY_TOKEN_FILE stay unset).
func (e *Env) SetenvPodIdentity(tb testing.TB) {
	tb.Helper()
	e.Setenv(tb)
	for _, k := range []string{"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_STS_REGIONAL_ENDPOINTS"} {
		tb.Setenv(k, "")
		os.Unsetenv(k)
	}
	for _, kv := range e.PodIdentityEnviron() {
		k, v, _ := strings.Cut(kv, "=")
		tb.Setenv(k, v)
	}
}

// RotatePodIdentityToken replaces PodIdentityTokenFile with a freshly
// minted token, as the kubelet does.
func (e *Env) RotatePodIdentityToken() error {
	if _, err := e.Issuer.RotateTokenFile(e.PodIdentityTokenFile); err != nil {
		return fmt.Errorf("awstest: %w", err)
	}
	return nil
}

// clearedVars are unset by Setenv: other credential sources, settings that
// would redirect or break the endpoint override, and the in-pod marker
// (tests that want to be "in a pod" set KUBERNETES_SERVICE_HOST after).
var clearedVars = []string{
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN",
	"AWS_ACCESS_KEY", "AWS_SECRET_KEY",
	"AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_DEFAULT_REGION",
	"AWS_ROLE_SESSION_NAME",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
	"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
	"AWS_EC2_METADATA_SERVICE_ENDPOINT", "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
	"AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "AWS_ENDPOINT_URL",
	"AWS_USE_FIPS_ENDPOINT", "AWS_USE_DUALSTACK_ENDPOINT",
	"AWS_SDK_LOAD_CONFIG",
	"KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
}

// Setenv points the SDK's standard configuration chain at the stand-ins
// for the rest of the test: it sets every variable of Environ and unsets
// other credential sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN, AWS_PROFILE, AWS_DEFAULT_REGION, the container
// credential variables, ...), KUBERNETES_SERVICE_HOST and every other
// AWS_ENDPOINT_URL_* variable. The previous values come back when tb ends.
// Like tb.Setenv it cannot be used in parallel tests; use [Env.Config]
// there.
func (e *Env) Setenv(tb testing.TB) {
	tb.Helper()
	unset := append([]string(nil), clearedVars...)
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_ENDPOINT_URL_") && k != "AWS_ENDPOINT_URL_STS" {
			unset = append(unset, k)
		}
	}
	for _, k := range unset {
		tb.Setenv(k, "") // records the old value for restoring
		os.Unsetenv(k)
	}
	for _, kv := range e.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		tb.Setenv(k, v)
	}
}

// Config returns an aws.Config for the pod's identity without touching the
// process environment (usable in parallel tests): region Region, the empty
// shared config files, IMDS disabled, STS clients made from it pointed at
// the stand-in (a ServiceOptions hook), and credentials from a web-identity
// provider that reads TokenFile and calls the STS stand-in, in one
// aws.CredentialsCache. optFns are applied after these. Clients of other
// services still need their endpoint (BaseEndpoint or AWS_ENDPOINT_URL_*).
func (e *Env) Config(ctx context.Context, optFns ...func(*config.LoadOptions) error) (aws.Config, error) {
	opts := []func(*config.LoadOptions) error{
		config.WithRegion(e.Region),
		config.WithSharedConfigFiles([]string{e.configFile}),
		config.WithSharedCredentialsFiles([]string{e.credentialsFile}),
		config.WithEC2IMDSClientEnableState(imds.ClientDisabled),
		config.WithCredentialsProvider(aws.AnonymousCredentials{}),
	}
	cfg, err := config.LoadDefaultConfig(ctx, append(opts, optFns...)...)
	if err != nil {
		return aws.Config{}, fmt.Errorf("awstest: load config: %w", err)
	}
	// STS clients made from cfg (the credential provider's and the
	// caller's) go to the stand-in, never to the real regional endpoint.
	stsURL := e.STS.URL()
	cfg.ServiceOptions = append(cfg.ServiceOptions, func(serviceID string, o any) {
		if so, ok := o.(*awssts.Options); ok && serviceID == awssts.ServiceID {
			so.BaseEndpoint = aws.String(stsURL)
		}
	})
	client := awssts.NewFromConfig(cfg)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewWebIdentityRoleProvider(
		client, e.RoleARN, stscreds.IdentityTokenFile(e.TokenFile)))
	return cfg, nil
}

// AttachPolicy attaches an identity policy (IAM JSON) to the role.
func (e *Env) AttachPolicy(doc []byte) error {
	if err := e.IAM.AttachPolicy(e.RoleARN, doc); err != nil {
		return fmt.Errorf("awstest: %w", err)
	}
	return nil
}

// SessionCredentials issues role credentials valid for ttl straight from
// the registry, bypassing STS: for unit tests of code that only signs.
// Every Retrieve returns the same credentials, with CanExpire and Expires
// set.
func (e *Env) SessionCredentials(ttl time.Duration) (aws.CredentialsProvider, error) {
	c, err := e.Registry.IssueSession(e.RoleARN, "awstest-session", ttl)
	if err != nil {
		return nil, fmt.Errorf("awstest: %w", err)
	}
	creds := aws.Credentials{
		AccessKeyID:     c.AccessKeyID,
		SecretAccessKey: c.SecretAccessKey,
		SessionToken:    c.SessionToken,
		Source:          "awstest",
		CanExpire:       true,
		Expires:         c.Expires,
		AccountID:       c.Account,
	}
	return aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) { return creds, nil }), nil
}

// RotateToken replaces TokenFile with a freshly minted token, as the
// kubelet does before the old one expires.
func (e *Env) RotateToken() error {
	if _, err := e.Issuer.RotateTokenFile(e.TokenFile); err != nil {
		return fmt.Errorf("awstest: %w", err)
	}
	return nil
}
