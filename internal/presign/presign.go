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

// ExpiredCredentialsError: the credentials provider handed out
// credentials that had already expired, even after being asked again. It
// names the access key by its ends only.
type ExpiredCredentialsError struct {
	AccessKey string // redacted
	Expired   time.Time
}

func (e *ExpiredCredentialsError) Error() string {
	return fmt.Sprintf("credentials (access key %s) expired at %s; the provider must refresh them",
		e.AccessKey, e.Expired.UTC().Format(time.RFC3339))
}

// Minted is a token and the end of its validity.
type Minted struct {
	Value    string
	SignedAt time.Time // truncated to the second, as X-Amz-Date
	// Expires is the earlier of SignedAt+lifetime and the signing
	// credentials' expiry: a token is worthless once they expire.
	Expires time.Time
}

// Mint retrieves credentials from provider and presigns a token valid for
// lifetime from now, capped by the credentials' expiry. If the provider
// (typically an aws.CredentialsCache judging expiry by another clock) hands
// out credentials that expired by now, it is invalidated and asked once
// more; still-expired credentials give an *ExpiredCredentialsError.
func Mint(ctx context.Context, provider aws.CredentialsProvider, service, region, host string, query url.Values, lifetime time.Duration, now time.Time) (Minted, error) {
	creds, err := provider.Retrieve(ctx)
	if err != nil {
		return Minted{}, fmt.Errorf("retrieving credentials: %w", err)
	}
	if creds.CanExpire && !creds.Expires.After(now) {
		if inv, ok := provider.(interface{ Invalidate() }); ok {
			inv.Invalidate()
			if creds, err = provider.Retrieve(ctx); err != nil {
				return Minted{}, fmt.Errorf("retrieving credentials: %w", err)
			}
		}
		if creds.CanExpire && !creds.Expires.After(now) {
			return Minted{}, &ExpiredCredentialsError{AccessKey: redactKey(creds.AccessKeyID), Expired: creds.Expires}
		}
	}
	signedAt := now.UTC().Truncate(time.Second)
	v, err := Token(ctx, creds, service, region, host, query, lifetime, signedAt)
	if err != nil {
		return Minted{}, err
	}
	expires := signedAt.Add(lifetime)
	if creds.CanExpire && creds.Expires.Before(expires) {
		expires = creds.Expires
	}
	return Minted{Value: v, SignedAt: signedAt, Expires: expires}, nil
}

func redactKey(id string) string {
	if len(id) <= 8 {
		return "…"
	}
	return id[:4] + "…" + id[len(id)-4:]
}
