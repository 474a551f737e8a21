package sigv4_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

// AWS services other than S3 normalize the request path before computing
// the canonical request: dot segments go and consecutive slashes collapse
// (the SigV4 test suite's get-slashes, get-relative, ... cases). Vault's aws
// auth method depends on it: it forwards a login's GetCallerIdentity,
// signed by the client for "/", to STS at "//".
func TestHeaderSignedPathNormalization(t *testing.T) {
	reg, clk, c := setup(t)
	creds, err := provider(c).Retrieve(context.Background())
	require.NoError(t, err)
	body := "Action=GetCallerIdentity&Version=2011-06-15"

	// sign signs a request for signedURL and returns it re-addressed to
	// sentPath, as a proxy forwarding it would send it.
	sign := func(t *testing.T, service, signedURL, sentPath string) *http.Request {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, signedURL, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		// The SDK's signer escapes the path as it is; S3 turns that off.
		err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" }).
			SignHTTP(context.Background(), creds, req, sha(body), service, "us-east-1", clk.Now())
		require.NoError(t, err)
		req.URL.Path = sentPath
		req.URL.RawPath = ""
		return req
	}

	cases := []struct {
		name      string
		service   string
		signedURL string
		sentPath  string
		code      string // "" when it must verify
	}{
		{"vault forwards / as //", "sts", "http://127.0.0.1:9/", "//", ""},
		{"consecutive slashes", "sts", "http://127.0.0.1:9/example/", "//example//", ""},
		{"dot segment", "sts", "http://127.0.0.1:9/example", "/./example", ""},
		{"dot-dot segments", "sts", "http://127.0.0.1:9/", "/example1/example2/../..", ""},
		{"as signed", "sts", "http://127.0.0.1:9/a/b", "/a/b", ""},
		{"another path", "sts", "http://127.0.0.1:9/", "/other", "SignatureDoesNotMatch"},
		{"slash dropped", "sts", "http://127.0.0.1:9/example/", "/example", "SignatureDoesNotMatch"},
		// S3 signs keys as they are: "//" is part of the key.
		{"s3 key as signed", "s3", "http://127.0.0.1:9/bucket//key", "/bucket//key", ""},
		{"s3 is not normalized", "s3", "http://127.0.0.1:9/bucket/key", "/bucket//key", "SignatureDoesNotMatch"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := sign(t, tc.service, tc.signedURL, tc.sentPath)
			_, err := reg.VerifyRequest(req, []byte(body), sigv4.HeaderOptions{Service: tc.service, Region: "us-east-1", S3: tc.service == "s3"})
			if tc.code == "" {
				assert.NoError(t, err)
				return
			}
			var se *sigv4.Error
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tc.code, se.Code)
		})
	}
}
