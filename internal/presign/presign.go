// Package presign builds the SigV4 presigned-URL tokens that RDS and
// ElastiCache accept as passwords. One implementation serves both.
package presign

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// emptySHA256 is the hashed payload of a GET with no body.
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

var signer = v4.NewSigner()

// Token presigns GET http://host/?query for service and region with creds,
// valid for expires from now, and returns the URL without its scheme, the
// form RDS and ElastiCache take as a password.
func Token(ctx context.Context, creds aws.Credentials, service, region, host string, query url.Values, expires time.Duration, now time.Time) (string, error) {
	if host == "" || strings.ContainsAny(host, "/?#@ ") {
		return "", fmt.Errorf("presign: invalid host %q", host)
	}
	q := make(url.Values, len(query)+1)
	for k, v := range query {
		q[k] = v
	}
	q.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+host+"/?"+q.Encode(), nil)
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	signed, _, err := signer.PresignHTTP(ctx, creds, req, emptySHA256, service, region, now.UTC())
	if err != nil {
		return "", fmt.Errorf("presign: %w", err)
	}
	return strings.TrimPrefix(signed, "http://"), nil
}
