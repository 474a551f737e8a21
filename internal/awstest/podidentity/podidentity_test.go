package podidentity_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/podidentity"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

const role = "arn:aws:iam::111122223333:role/pod-role"

type fixture struct {
	reg       *sigv4.Registry
	iss       *oidc.Issuer
	srv       *podidentity.Server
	tokenFile string
	sub       string
}

func start(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{reg: sigv4.NewRegistry(nil), sub: oidc.ServiceAccountSubject("mcp", "mcp-server")}
	var err error
	f.iss, err = oidc.New(func(o *oidc.Options) { o.TLS = true })
	require.NoError(t, err)
	t.Cleanup(func() { f.iss.Close() })
	f.srv, err = podidentity.New(f.reg, f.iss)
	require.NoError(t, err)
	t.Cleanup(func() { f.srv.Close() })
	f.srv.Associate("mcp", "mcp-server", role)
	f.tokenFile = filepath.Join(t.TempDir(), "eks-pod-identity-token")
	f.write(t)
	f.srv.SetTokenFile(f.tokenFile)
	return f
}

func (f *fixture) write(t *testing.T, opts ...func(*oidc.Claims)) string {
	t.Helper()
	tok, err := f.iss.WriteTokenFile(f.tokenFile, f.sub, append([]func(*oidc.Claims){oidc.WithAudience(podidentity.Audience)}, opts...)...)
	require.NoError(t, err)
	return tok
}

// provider is the SDK's container credentials provider, configured as
// config.LoadDefaultConfig configures it from the Pod Identity variables.
func (f *fixture) provider() *endpointcreds.Provider {
	return endpointcreds.New(f.srv.URL(), func(o *endpointcreds.Options) {
		o.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
			b, err := os.ReadFile(f.tokenFile)
			return string(b), err
		})
	})
}

func TestSDKGetsRegisteredCredentials(t *testing.T) {
	f := start(t)
	before := time.Now()
	c, err := f.provider().Retrieve(context.Background())
	require.NoError(t, err)
	assert.True(t, c.CanExpire)
	assert.WithinDuration(t, before.Add(podidentity.DefaultCredentialTTL), c.Expires, 5*time.Second)
	assert.Equal(t, "111122223333", c.AccountID)
	issued, ok := f.reg.Lookup(c.AccessKeyID)
	require.True(t, ok, "credentials not in the registry")
	assert.Equal(t, role, issued.RoleARN)
	assert.Equal(t, c.SecretAccessKey, issued.SecretAccessKey)
	assert.Equal(t, c.SessionToken, issued.SessionToken)
	assert.EqualValues(t, 1, f.srv.Calls())
	log := f.srv.CallLog()
	require.Len(t, log, 1)
	assert.Equal(t, http.StatusOK, log[0].Status)
	assert.Equal(t, f.sub, log[0].Subject)

	// The kubelet rotates the token; the next request presents the new one.
	f.write(t)
	_, err = f.provider().Retrieve(context.Background())
	require.NoError(t, err)
}

// get sends a request as a client other than the SDK could.
func get(t *testing.T, f *fixture, host, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, strings.TrimSuffix(f.srv.URL(), podidentity.Path)+path, nil)
	require.NoError(t, err)
	if host != "" {
		req.Host = host
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// The endpoint refuses what the real one (and EKS Auth behind it) refuses.
func TestRejects(t *testing.T) {
	f := start(t)
	good, err := os.ReadFile(f.tokenFile)
	require.NoError(t, err)
	cases := []struct {
		name   string
		setup  func(t *testing.T) (host, path, auth string)
		status int
		says   string
	}{
		{"no token", func(t *testing.T) (string, string, string) { return "", podidentity.Path, "" }, 400, "Service account token cannot be empty"},
		{"not a JWT", func(t *testing.T) (string, string, string) { return "", podidentity.Path, "not-a-token" }, 400, "cannot be parsed"},
		{"expired", func(t *testing.T) (string, string, string) { return "", podidentity.Path, f.write(t, oidc.Expired()) }, 400, "failed basic claim validations"},
		{"not yet valid", func(t *testing.T) (string, string, string) {
			return "", podidentity.Path, f.write(t, oidc.NotYetValid())
		}, 400, "failed basic claim validations"},
		{"not the projected token", func(t *testing.T) (string, string, string) {
			f.write(t)
			return "", podidentity.Path, string(good)
		}, 400, "InvalidTokenException"},
		{"signed by a foreign key", func(t *testing.T) (string, string, string) {
			return "", podidentity.Path, f.write(t, oidc.SignedByForeignKey())
		}, 400, "InvalidTokenException"},
		{"IRSA audience", func(t *testing.T) (string, string, string) {
			return "", podidentity.Path, f.write(t, oidc.WithAudience(oidc.DefaultAudience))
		}, 400, "audience"},
		{"other issuer", func(t *testing.T) (string, string, string) {
			return "", podidentity.Path, f.write(t, oidc.WithIssuer("https://oidc.eks.us-east-1.amazonaws.com/id/OTHER"))
		}, 400, "InvalidTokenException"},
		{"no association", func(t *testing.T) (string, string, string) {
			f.srv.Disassociate("mcp", "mcp-server")
			t.Cleanup(func() { f.srv.Associate("mcp", "mcp-server", role) })
			return "", podidentity.Path, f.write(t)
		}, 404, "ResourceNotFoundException"},
		{"wrong address", func(t *testing.T) (string, string, string) { return "169.254.169.254", podidentity.Path, f.write(t) }, 403, "invalid address"},
		{"wrong path", func(t *testing.T) (string, string, string) {
			return "", "/latest/meta-data/iam/security-credentials/", f.write(t)
		}, 404, "not found"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			host, path, auth := c.setup(t)
			status, body := get(t, f, host, path, auth)
			assert.Equal(t, c.status, status, body)
			assert.Contains(t, body, c.says)
			assert.NotContains(t, body, "SecretAccessKey")
		})
	}
	assert.Equal(t, 0, f.reg.Len(), "a refused request issued credentials")
}

// The SDK surfaces the endpoint's refusals with their status.
func TestSDKSeesRefusal(t *testing.T) {
	f := start(t)
	f.write(t, oidc.WithAudience(oidc.DefaultAudience))
	_, err := f.provider().Retrieve(context.Background())
	var ae smithy.APIError
	require.True(t, errors.As(err, &ae), "got %v", err)
	assert.Contains(t, ae.ErrorMessage(), "InvalidTokenException")
	var hs interface{ HTTPStatusCode() int }
	require.True(t, errors.As(err, &hs))
	assert.Equal(t, 400, hs.HTTPStatusCode())
}

func TestDownAndFailures(t *testing.T) {
	f := start(t)
	ctx := context.Background()
	f.srv.SetDown(true)
	_, err := f.provider().Retrieve(ctx)
	require.Error(t, err)
	var ae smithy.APIError
	assert.False(t, errors.As(err, &ae), "a down endpoint answered: %v", err)
	assert.EqualValues(t, 0, f.srv.Calls())

	f.srv.SetDown(false)
	f.srv.FailNext(1)
	status, _ := get(t, f, "", podidentity.Path, f.write(t))
	assert.Equal(t, 500, status)
	_, err = f.provider().Retrieve(ctx)
	require.NoError(t, err)

	f.srv.SetCredentialTTL(10 * time.Minute)
	c, err := f.provider().Retrieve(ctx)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(10*time.Minute), c.Expires, 5*time.Second)
}
