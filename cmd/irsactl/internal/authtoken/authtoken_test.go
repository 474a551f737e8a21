package authtoken_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
)

var creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session")

func TestInspectRoundTrip(t *testing.T) {
	ctx := context.Background()
	tok, err := authtoken.ElastiCache(ctx, creds, "mcp-cache", "app", "us-east-1", true)
	if err != nil {
		t.Fatal(err)
	}
	in, err := authtoken.Inspect(tok)
	if err != nil {
		t.Fatal(err)
	}
	if in.Host != "mcp-cache" || in.User != "app" || in.Action != "connect" || in.Resource != "ServerlessCache" {
		t.Errorf("%+v", in)
	}
	if d := in.Expires.Sub(in.SignedAt); d != 15*time.Minute {
		t.Errorf("lifetime %s", d)
	}
	tok, err = authtoken.RDS(ctx, creds, "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "app", "")
	if err != nil {
		t.Fatal(err)
	}
	if in, _ := authtoken.Inspect(tok); in.Host != "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432" || in.User != "app" {
		t.Errorf("rds %+v", in)
	}
}

func TestRDSEndpointErrors(t *testing.T) {
	for _, ep := range []string{"db.example.com", "postgres://db:5432", "db:0", ""} {
		_, _, err := authtoken.SplitRDSEndpoint(ep)
		if err == nil {
			t.Errorf("%q accepted", ep)
		}
		if ep == "db.example.com" && !errors.Is(err, authtoken.ErrMissingPort) {
			t.Errorf("%q: %v, want ErrMissingPort", ep, err)
		}
	}
	_, err := authtoken.ElastiCache(context.Background(), aws.AnonymousCredentials{}, "master.mcp.abc.use1.cache.amazonaws.com", "app", "us-east-1", false)
	if err == nil || !strings.Contains(err.Error(), "not the endpoint host") {
		t.Errorf("endpoint as cache name: %v", err)
	}
}

func FuzzInspect(f *testing.F) {
	f.Add("mcp-cache/?Action=connect&User=app&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900")
	f.Add("host:5432/?DBUser=x")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, s string) {
		in, err := authtoken.Inspect(s)
		if err == nil && !in.Expires.IsZero() && in.Expires.Before(in.SignedAt) && !strings.Contains(s, "-") {
			t.Errorf("expiry before signing without a negative X-Amz-Expires: %q", s)
		}
	})
}
