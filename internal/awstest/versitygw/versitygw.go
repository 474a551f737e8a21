// Package versitygw runs versitygw (github.com/versity/versitygw, Apache-2.0),
// a real S3 server that also implements IAM and STS, as the peer of the S3
// integration tests: it verifies SigV4, evaluates IAM role policies and
// implements AssumeRoleWithWebIdentity as AWS does (OIDC provider registered
// through its IAM API, JWKS fetched over TLS from the issuer, trust-policy
// sub/aud conditions, AWS error codes).
//
// Two processes make up an [Env]: versitygw's standalone IAM service (IAM
// and STS on one HTTP listener, its private policy endpoint on a unix
// socket) and an S3 gateway with the posix backend in a temporary directory
// that authenticates and authorizes every request through that IAM service.
// Both listen on 127.0.0.1 only. An internal/awstest/oidc issuer, served
// over TLS at IssuerIP:443 with a self-signed IP-SAN certificate, plays the
// cluster's OIDC issuer; its certificate thumbprint is registered on the
// OIDC provider, as AWS requires for issuers outside public CAs.
//
// versitygw only fetches an issuer's keys from https://HOST on port 443 at a
// public address, so [Main] runs the test binary in a private network
// namespace where the issuer can take such an address (IssuerIP) on the
// namespace's loopback interface, unreachable from anywhere else.
//
// Where versitygw v1.8.0 differs from AWS, tests must allow for it:
//   - a token that fails a trust-policy condition (sub, aud) gets
//     InvalidIdentityToken ("could not be validated", the answer to a bad
//     signature too); AWS answers AccessDenied ("Not authorized to perform
//     sts:AssumeRoleWithWebIdentity"). The SDK's web-identity provider
//     retries InvalidIdentityToken, so such a test takes a few seconds;
//   - server-side encryption headers are accepted and ignored (no KMS);
//   - the account id is always 000000000000 ([Account]).
//
// The binary comes from tools/install-versitygw.sh (see [InstallHint]).
package versitygw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/procs"
)

// Account is the account id versitygw's IAM service puts in every ARN.
const Account = "000000000000"

// Audience is the audience EKS puts in service-account tokens for IRSA.
const Audience = "sts.amazonaws.com"

// Options configure [Start].
type Options struct {
	// Bin is the versitygw binary. Default: [Find].
	Bin string
	// Region is the gateway's region. Default us-east-1.
	Region string
	// IssuerAddr is where the OIDC issuer listens; versitygw only fetches
	// keys from port 443 at an address that is not loopback or private.
	// Default IssuerIP:443 (only available inside the namespace [Main]
	// creates). "-" starts no issuer.
	IssuerAddr string
	// Log receives the processes' output (request logs are off). Default:
	// files in the temporary directory, printed when startup fails.
	Log io.Writer
}

// Env is a running versitygw IAM service + S3 gateway, with an OIDC issuer
// registered as an identity provider. It is safe for concurrent use.
type Env struct {
	// Region is the S3 gateway's region.
	Region string
	// S3Endpoint is the S3 gateway's URL (http://127.0.0.1:PORT).
	S3Endpoint string
	// IAMEndpoint is the IAM service's URL, which also serves STS
	// (AssumeRoleWithWebIdentity, GetCallerIdentity).
	IAMEndpoint string
	// Issuer is the OIDC issuer (https://IssuerIP/id/HEX, like an EKS
	// cluster's); nil when Options.IssuerAddr was "-".
	Issuer *oidc.Issuer
	// ProviderARN is the issuer's OIDC provider in IAM.
	ProviderARN string

	dir   string
	root  aws.Credentials
	procs []*exec.Cmd
	waits []chan error
}

// Start starts versitygw's IAM service and S3 gateway on free loopback
// ports, and, unless disabled, the OIDC issuer, registering it as an OIDC
// provider with its CA thumbprint and the audience sts.amazonaws.com.
func Start(ctx context.Context, optFns ...func(*Options)) (_ *Env, err error) {
	o := Options{Region: "us-east-1", IssuerAddr: net.JoinHostPort(IssuerIP, "443")}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Bin == "" {
		if o.Bin, err = Find(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "vgw")
	if err != nil {
		return nil, err
	}
	e := &Env{Region: o.Region, dir: dir, root: aws.Credentials{
		AccessKeyID:     "ROOT" + strings.ToUpper(randHex(8)),
		SecretAccessKey: randHex(20),
		Source:          "versitygw root",
	}}
	defer func() {
		if err != nil {
			_ = e.Close()
		}
	}()
	for _, d := range []string{"iam", "data"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o700); err != nil {
			return nil, err
		}
	}

	iamPort, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	s3Port, err := procs.FreePort()
	if err != nil {
		return nil, err
	}
	sock := filepath.Join(dir, "iam.sock")
	e.IAMEndpoint = "http://127.0.0.1:" + strconv.Itoa(iamPort)
	e.S3Endpoint = "http://127.0.0.1:" + strconv.Itoa(s3Port)

	if err := e.spawn(o, "iam", []string{
		"--port", "127.0.0.1:" + strconv.Itoa(iamPort), "--health", "/healthz", "--keep-alive", "--quiet",
		"iam", "--dir", filepath.Join(dir, "iam"), "--private-ports", sock,
		"--disable-oidc-thumbprint-autofetch",
	}); err != nil {
		return nil, err
	}
	if err := e.waitHealthy(ctx, "iam", e.IAMEndpoint+"/healthz"); err != nil {
		return nil, err
	}
	if err := e.spawn(o, "s3", []string{
		"--port", "127.0.0.1:" + strconv.Itoa(s3Port), "--health", "/healthz", "--keep-alive", "--quiet",
		"--region", o.Region, "--iam-standalone-endpoint", sock,
		"posix", filepath.Join(dir, "data"),
	}); err != nil {
		return nil, err
	}
	if err := e.waitHealthy(ctx, "s3", e.S3Endpoint+"/healthz"); err != nil {
		return nil, err
	}

	if o.IssuerAddr != "-" {
		ln, err := net.Listen("tcp", o.IssuerAddr)
		if err != nil {
			return nil, fmt.Errorf("versitygw: OIDC issuer: %w", err)
		}
		if e.Issuer, err = oidc.New(func(oo *oidc.Options) { oo.Listener, oo.TLS = ln, true }); err != nil {
			ln.Close()
			return nil, err
		}
		out, err := e.IAM().CreateOpenIDConnectProvider(ctx, &iam.CreateOpenIDConnectProviderInput{
			Url:            aws.String(e.Issuer.URL()),
			ClientIDList:   []string{Audience},
			ThumbprintList: []string{e.Issuer.Thumbprint()},
		})
		if err != nil {
			return nil, fmt.Errorf("versitygw: registering the OIDC provider: %w", err)
		}
		e.ProviderARN = aws.ToString(out.OpenIDConnectProviderArn)
	}
	return e, nil
}

// spawn starts one versitygw process with a clean environment: the root
// credentials go through the environment rather than the command line, and
// nothing from the caller's VGW_* or AWS_* variables leaks in.
func (e *Env) spawn(o Options, name string, args []string) error {
	var logw io.Writer = o.Log
	if logw == nil {
		f, err := os.Create(filepath.Join(e.dir, name+".log"))
		if err != nil {
			return err
		}
		logw = f
	}
	cmd := exec.Command(o.Bin, args...)
	cmd.Dir = e.dir
	cmd.Env = []string{
		"PATH=/usr/local/bin:/usr/bin:/bin",
		"HOME=" + e.dir,
		"ROOT_ACCESS_KEY_ID=" + e.root.AccessKeyID,
		"ROOT_SECRET_ACCESS_KEY=" + e.root.SecretAccessKey,
	}
	cmd.Stdout, cmd.Stderr = logw, logw
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("versitygw: starting %s: %w", name, err)
	}
	wait := make(chan error, 1)
	go func() { wait <- cmd.Wait() }()
	e.procs = append(e.procs, cmd)
	e.waits = append(e.waits, wait)
	return nil
}

func (e *Env) waitHealthy(ctx context.Context, name, url string) error {
	wait := e.waits[len(e.waits)-1]
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case werr := <-wait:
			wait <- werr
			return fmt.Errorf("versitygw: %s exited during startup (%v): %s", name, werr, e.logTail(name))
		case <-ctx.Done():
			return fmt.Errorf("versitygw: %s not healthy at %s: %w: %s", name, url, ctx.Err(), e.logTail(name))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

func (e *Env) logTail(name string) string {
	b, err := os.ReadFile(filepath.Join(e.dir, name+".log"))
	if err != nil {
		return "(no log)"
	}
	if len(b) > 4000 {
		b = b[len(b)-4000:]
	}
	return string(bytes.TrimSpace(b))
}

// Close stops the processes and the issuer and removes the data.
func (e *Env) Close() error {
	var errs []error
	if e.Issuer != nil {
		errs = append(errs, e.Issuer.Close())
	}
	for i := len(e.procs) - 1; i >= 0; i-- {
		p := e.procs[i]
		_ = syscall.Kill(-p.Process.Pid, syscall.SIGTERM)
		select {
		case <-e.waits[i]:
		case <-time.After(10 * time.Second):
			_ = syscall.Kill(-p.Process.Pid, syscall.SIGKILL)
			<-e.waits[i]
		}
	}
	if e.dir != "" {
		errs = append(errs, os.RemoveAll(e.dir))
	}
	return errors.Join(errs...)
}

// Root returns the root account's credentials provider, for setup
// (buckets, roles). Tests of the code under test use role sessions instead.
func (e *Env) Root() aws.CredentialsProvider {
	return credentials.StaticCredentialsProvider{Value: e.root}
}

// RootConfig returns an aws.Config signed as the root account, with no
// endpoints set (the clients below set them).
func (e *Env) RootConfig() aws.Config {
	return aws.Config{Region: e.Region, Credentials: e.Root(), HTTPClient: http.DefaultClient}
}

// IAM returns an IAM client for the IAM service, as root.
func (e *Env) IAM() *iam.Client {
	return iam.NewFromConfig(e.RootConfig(), func(o *iam.Options) {
		o.BaseEndpoint = aws.String(e.IAMEndpoint)
		o.Region = "us-east-1"
	})
}

// S3 returns an S3 client (path style) for the gateway, as root unless
// creds is given.
func (e *Env) S3(creds aws.CredentialsProvider) *s3.Client {
	cfg := e.RootConfig()
	if creds != nil {
		cfg.Credentials = creds
	}
	return s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.BaseEndpoint = aws.String(e.S3Endpoint)
		o.UsePathStyle = true
	})
}

// CreateBucket creates a bucket owned by the root account.
func (e *Env) CreateBucket(ctx context.Context, name string) error {
	_, err := e.S3(nil).CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)})
	if err != nil {
		return fmt.Errorf("versitygw: create bucket %s: %w", name, err)
	}
	return nil
}

// Subject is the token subject of a Kubernetes service account.
func Subject(namespace, serviceAccount string) string {
	return oidc.ServiceAccountSubject(namespace, serviceAccount)
}

// TrustPolicy is the IRSA trust policy eksctl writes: the issuer's provider
// may assume the role for exactly subject, with audience sts.amazonaws.com.
func (e *Env) TrustPolicy(subject string) string {
	doc := map[string]any{
		"Version": "2012-10-17",
		"Statement": []any{map[string]any{
			"Effect":    "Allow",
			"Principal": map[string]any{"Federated": e.ProviderARN},
			"Action":    "sts:AssumeRoleWithWebIdentity",
			"Condition": map[string]any{"StringEquals": map[string]string{
				e.Issuer.HostPath() + ":sub": subject,
				e.Issuer.HostPath() + ":aud": Audience,
			}},
		}},
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// CreateRole creates role name trusting subject through the issuer (see
// [Env.TrustPolicy]) with the given inline identity policies (name →
// JSON), and returns its ARN.
func (e *Env) CreateRole(ctx context.Context, name, subject string, policies map[string]string) (string, error) {
	return e.CreateRoleWithTrust(ctx, name, e.TrustPolicy(subject), policies)
}

// CreateRoleWithTrust creates role name with the given trust policy (JSON)
// and inline identity policies (name → JSON), and returns its ARN.
func (e *Env) CreateRoleWithTrust(ctx context.Context, name, trust string, policies map[string]string) (string, error) {
	c := e.IAM()
	out, err := c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		AssumeRolePolicyDocument: aws.String(trust),
	})
	if err != nil {
		return "", fmt.Errorf("versitygw: create role %s: %w", name, err)
	}
	for pn, doc := range policies {
		if _, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{
			RoleName: aws.String(name), PolicyName: aws.String(pn), PolicyDocument: aws.String(doc),
		}); err != nil {
			return "", fmt.Errorf("versitygw: put role policy %s on %s: %w", pn, name, err)
		}
	}
	return aws.ToString(out.Role.Arn), nil
}

// IRSAVars returns the variables the EKS pod identity webhook injects for
// roleARN with the token at tokenFile, plus the endpoint overrides that
// point the SDK at this Env: AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE,
// AWS_ROLE_SESSION_NAME, AWS_REGION, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL_S3.
func (e *Env) IRSAVars(roleARN, tokenFile string) map[string]string {
	return map[string]string{
		"AWS_ROLE_ARN":                roleARN,
		"AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile,
		"AWS_ROLE_SESSION_NAME":       "irsakit-test",
		"AWS_REGION":                  e.Region,
		"AWS_ENDPOINT_URL_STS":        e.IAMEndpoint,
		"AWS_ENDPOINT_URL_S3":         e.S3Endpoint,
	}
}

// Setenv writes a token for subject into a fresh file and sets the
// environment of an IRSA pod for roleARN (see [Env.IRSAVars]) for the rest
// of tb, clearing every variable that would take precedence over web
// identity (static keys, profiles, container credentials). It returns the
// token file's path.
func (e *Env) Setenv(tb testing.TB, roleARN, subject string) string {
	tb.Helper()
	tokenFile := filepath.Join(tb.TempDir(), "token")
	if _, err := e.Issuer.WriteTokenFile(tokenFile, subject); err != nil {
		tb.Fatal(err)
	}
	empty := filepath.Join(tb.TempDir(), "empty")
	if err := os.WriteFile(empty, nil, 0o600); err != nil {
		tb.Fatal(err)
	}
	for _, k := range []string{
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
		"AWS_CONTAINER_AUTHORIZATION_TOKEN", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ENDPOINT_URL",
		"AWS_DEFAULT_REGION",
	} {
		tb.Setenv(k, "")
		os.Unsetenv(k)
	}
	tb.Setenv("AWS_CONFIG_FILE", empty)
	tb.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	tb.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	for k, v := range e.IRSAVars(roleARN, tokenFile) {
		tb.Setenv(k, v)
	}
	return tokenFile
}

func randHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
