package presign_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/presign"
)

// A token minted here verifies under the documentation-based verifier for
// exactly the service, region and host it was signed for.
func TestTokenVerifies(t *testing.T) {
	reg := sigv4.NewRegistry(nil)
	c, err := reg.IssueSession("arn:aws:iam::111122223333:role/app", "s", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	q := url.Values{"Action": {"connect"}, "User": {"app user"}}
	tok, err := presign.Token(context.Background(), creds, "elasticache", "eu-west-1", "orders", q, 15*time.Minute, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, "orders/?") || strings.Contains(tok, "http://") {
		t.Fatalf("token shape: %s", tok)
	}
	u, err := url.Parse("http://" + tok)
	if err != nil {
		t.Fatal(err)
	}
	if u.Query().Get("X-Amz-Expires") != "900" || u.Query().Get("User") != "app user" {
		t.Fatalf("query: %v", u.Query())
	}
	o := sigv4.PresignOptions{Service: "elasticache", Region: "eu-west-1", Host: "orders", MaxExpires: 15 * time.Minute}
	if _, err := reg.VerifyPresigned(u, o); err != nil {
		t.Fatalf("verifier rejects the token: %v", err)
	}
	for _, bad := range []sigv4.PresignOptions{
		{Service: "rds-db", Region: "eu-west-1", Host: "orders"},
		{Service: "elasticache", Region: "us-east-1", Host: "orders"},
		{Service: "elasticache", Region: "eu-west-1", Host: "payments"},
	} {
		if _, err := reg.VerifyPresigned(u, bad); err == nil {
			t.Errorf("token accepted for %+v", bad)
		}
	}
	// The caller's query is not modified.
	if q.Get("X-Amz-Expires") != "" {
		t.Error("Token modified the caller's query")
	}
}

func TestTokenRejectsBadHost(t *testing.T) {
	for _, h := range []string{"", "a/b", "a?b", "user@host", "a b"} {
		if _, err := presign.Token(context.Background(), aws.Credentials{AccessKeyID: "A", SecretAccessKey: "S"}, "rds-db", "us-east-1", h, nil, time.Minute, time.Now()); err == nil {
			t.Errorf("host %q accepted", h)
		}
	}
}
