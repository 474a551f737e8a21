package vaultauth_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/vaultauth"
)

// sdkCall records where the SDK's own STS client sends GetCallerIdentity
// and the region it signs for, without sending it.
type sdkCall struct {
	url, region string
}

var errCaptured = errors.New("captured")

type capture struct{ got *sdkCall }

var scopeRe = regexp.MustCompile(`Credential=[^/]+/\d{8}/([^/]+)/sts/aws4_request`)

func (c capture) Do(req *http.Request) (*http.Response, error) {
	c.got.url = req.URL.Scheme + "://" + req.URL.Host + req.URL.Path
	if m := scopeRe.FindStringSubmatch(req.Header.Get("Authorization")); m != nil {
		c.got.region = m[1]
	}
	return nil, errCaptured
}

func sdkGetCallerIdentity(t *testing.T, cfg aws.Config, region string) sdkCall {
	t.Helper()
	var got sdkCall
	client := awssts.NewFromConfig(cfg, func(o *awssts.Options) {
		o.HTTPClient = capture{&got}
		o.Retryer = aws.NopRetryer{}
		if region != "" {
			o.Region = region
		}
	})
	_, err := client.GetCallerIdentity(context.Background(), &awssts.GetCallerIdentityInput{})
	require.ErrorIs(t, err, errCaptured)
	return got
}

// The login is signed for the endpoint and region the session's own STS
// client uses, whatever configures them: the region (every partition),
// AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, FIPS and dual-stack settings, or
// BaseEndpoint in code. Both run here on the same configurations.
func TestEndpointMatchesSDK(t *testing.T) {
	cases := []struct {
		name   string
		env    map[string]string
		load   []func(*config.LoadOptions) error
		region string // Options.Region, also given to the SDK client
		want   string // the URL both must use, as a check on the matrix
	}{
		{name: "us-east-1", env: map[string]string{"AWS_REGION": "us-east-1"}, want: "https://sts.us-east-1.amazonaws.com/"},
		{name: "eu-central-2", env: map[string]string{"AWS_REGION": "eu-central-2"}, want: "https://sts.eu-central-2.amazonaws.com/"},
		{name: "china", env: map[string]string{"AWS_REGION": "cn-northwest-1"}, want: "https://sts.cn-northwest-1.amazonaws.com.cn/"},
		{name: "GovCloud", env: map[string]string{"AWS_REGION": "us-gov-west-1"}, want: "https://sts.us-gov-west-1.amazonaws.com/"},
		{name: "aws-global", env: map[string]string{"AWS_REGION": "aws-global"}, want: "https://sts.amazonaws.com/"},
		{name: "FIPS", env: map[string]string{"AWS_REGION": "us-west-2", "AWS_USE_FIPS_ENDPOINT": "true"}, want: "https://sts-fips.us-west-2.amazonaws.com/"},
		{name: "dual-stack", env: map[string]string{"AWS_REGION": "eu-west-1", "AWS_USE_DUALSTACK_ENDPOINT": "true"}, want: "https://sts.eu-west-1.api.aws/"},
		{name: "AWS_ENDPOINT_URL_STS", env: map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:4566"}, want: "http://127.0.0.1:4566/"},
		{name: "AWS_ENDPOINT_URL", env: map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "https://proxy.internal/aws"}, want: "https://proxy.internal/aws"},
		{name: "service endpoint wins", env: map[string]string{"AWS_REGION": "us-east-1", "AWS_ENDPOINT_URL": "https://all.internal", "AWS_ENDPOINT_URL_STS": "https://sts.internal"}, want: "https://sts.internal/"},
		{name: "BaseEndpoint", env: map[string]string{"AWS_REGION": "ap-south-1"}, load: []func(*config.LoadOptions) error{config.WithBaseEndpoint("https://vpce-1a2b.sts.ap-south-1.vpce.amazonaws.com")}, want: "https://vpce-1a2b.sts.ap-south-1.vpce.amazonaws.com/"},
		{name: "Options.Region", env: map[string]string{"AWS_REGION": "us-east-1"}, region: "ca-central-1", want: "https://sts.ca-central-1.amazonaws.com/"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			isolateEnv(t)
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			load := append([]func(*config.LoadOptions) error{
				config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", "")),
			}, tc.load...)
			cfg, err := config.LoadDefaultConfig(context.Background(), load...)
			require.NoError(t, err)

			sdk := sdkGetCallerIdentity(t, cfg, tc.region)
			req, err := vaultauth.BuildLogin(context.Background(), cfg, "app", func(o *vaultauth.Options) { o.Region = tc.region })
			require.NoError(t, err)
			assert.Equal(t, sdk.url, strings.TrimSuffix(req.STSURL(), "/")+pathOf(sdk.url), "endpoint")
			assert.Equal(t, sdk.region, req.Region(), "signing region")
			assert.Equal(t, strings.TrimSuffix(tc.want, "/"), strings.TrimSuffix(req.STSURL(), "/"))
		})
	}
}

// pathOf returns what the SDK appends to the endpoint's path: nothing when
// the endpoint has a path, "/" when it has none.
func pathOf(u string) string {
	if strings.HasSuffix(u, "/") {
		return "/"
	}
	return ""
}

// isolateEnv clears the variables that would change the SDK's configuration
// and points the shared config files at empty ones.
func isolateEnv(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		if strings.HasPrefix(k, "AWS_") {
			t.Setenv(k, "")
			os.Unsetenv(k)
		}
	}
	empty := filepath.Join(t.TempDir(), "empty")
	require.NoError(t, os.WriteFile(empty, nil, 0o600))
	t.Setenv("AWS_CONFIG_FILE", empty)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", empty)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}
