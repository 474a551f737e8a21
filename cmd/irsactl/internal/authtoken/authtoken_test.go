package authtoken_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/authtoken"
)

var creds = credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "session")

func TestInspectRoundTrip(t *testing.T) {
	ctx := context.Background()
	cases := []struct {
		name     string
		mint     func() (string, error)
		want     authtoken.Info // the fields compared
		lifetime time.Duration
	}{
		{"elasticache serverless", func() (string, error) {
			return authtoken.ElastiCache(ctx, creds, "mcp-cache", "app", "us-east-1", true)
		}, authtoken.Info{Host: "mcp-cache", Action: "connect", Service: "elasticache", Region: "us-east-1", User: "app", Resource: "ServerlessCache"}, 15 * time.Minute},
		{"rds", func() (string, error) {
			return authtoken.RDS(ctx, creds, "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432", "app", "")
		}, authtoken.Info{Host: "db.cluster-abc.eu-west-1.rds.amazonaws.com:5432", Action: "connect", Service: "rds-db", Region: "eu-west-1", User: "app"}, 15 * time.Minute},
		{"dsql admin", func() (string, error) {
			tok, _, err := authtoken.DSQL(ctx, creds, "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws", "admin", "", 0)
			return tok, err
		}, authtoken.Info{Host: "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws", Action: "DbConnectAdmin", Service: "dsql", Region: "us-east-2"}, 15 * time.Minute},
		{"dsql custom role, port, one hour", func() (string, error) {
			tok, _, err := authtoken.DSQL(ctx, creds, "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws:5432", "app", "", time.Hour)
			return tok, err
		}, authtoken.Info{Host: "abcdefghijklmnopqrstuvwxyz.dsql.us-east-2.on.aws", Action: "DbConnect", Service: "dsql", Region: "us-east-2"}, time.Hour},
		{"dsql behind an IP, region given", func() (string, error) {
			tok, _, err := authtoken.DSQL(ctx, creds, "10.1.2.3", "app", "eu-west-1", 0)
			return tok, err
		}, authtoken.Info{Host: "10.1.2.3", Action: "DbConnect", Service: "dsql", Region: "eu-west-1"}, 15 * time.Minute},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, err := tc.mint()
			require.NoError(t, err)
			in, err := authtoken.Inspect(tok)
			require.NoError(t, err)
			assert.Equal(t, tc.lifetime, in.Expires.Sub(in.SignedAt))
			in.SignedAt, in.Expires = time.Time{}, time.Time{}
			assert.Equal(t, tc.want, in)
		})
	}
}

// A DSQL token works until its X-Amz-Expires ends or the credentials that
// signed it expire, whichever is first.
func TestDSQLExpiresWithTheCredentials(t *testing.T) {
	ctx := context.Background()
	soon := time.Now().Add(30 * time.Minute).Truncate(time.Second)
	expiring := aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
		return aws.Credentials{AccessKeyID: "AKIDEXAMPLE", SecretAccessKey: "secret", SessionToken: "session", CanExpire: true, Expires: soon}, nil
	})
	tok, expires, err := authtoken.DSQL(ctx, expiring, "abc.dsql.us-east-1.on.aws", "admin", "", 2*time.Hour)
	require.NoError(t, err)
	in, err := authtoken.Inspect(tok)
	require.NoError(t, err)
	assert.Equal(t, 2*time.Hour, in.Expires.Sub(in.SignedAt), "X-Amz-Expires as asked")
	assert.True(t, expires.Equal(soon), "expires %s, want the credentials' %s", expires, soon)
	_, expires, err = authtoken.DSQL(ctx, creds, "abc.dsql.us-east-1.on.aws", "admin", "", time.Hour)
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now().Add(time.Hour), expires, time.Minute, "credentials that do not expire")
}

func TestSplitDSQLEndpoint(t *testing.T) {
	for _, tc := range []struct {
		endpoint, host, cluster, region string
		ok                              bool
	}{
		{"abc.dsql.us-east-1.on.aws", "abc.dsql.us-east-1.on.aws", "abc", "us-east-1", true},
		{"abc.dsql.us-east-1.on.aws:5432", "abc.dsql.us-east-1.on.aws", "abc", "us-east-1", true},
		{"10.1.2.3:5432", "10.1.2.3", "", "", false},
		{"mydb.cluster-abc.us-east-1.rds.amazonaws.com:5432", "mydb.cluster-abc.us-east-1.rds.amazonaws.com", "", "", false},
	} {
		host, cluster, region, ok := authtoken.SplitDSQLEndpoint(tc.endpoint)
		assert.Equal(t, []any{tc.host, tc.cluster, tc.region, tc.ok}, []any{host, cluster, region, ok}, tc.endpoint)
	}
}

func TestRDSEndpointErrors(t *testing.T) {
	for _, ep := range []string{"db.example.com", "postgres://db:5432", "db:0", ""} {
		_, _, err := authtoken.SplitRDSEndpoint(ep)
		require.Error(t, err, "%q accepted", ep)
		if ep == "db.example.com" {
			assert.ErrorIs(t, err, authtoken.ErrMissingPort)
		}
	}
	_, err := authtoken.ElastiCache(context.Background(), aws.AnonymousCredentials{}, "master.mcp.abc.use1.cache.amazonaws.com", "app", "us-east-1", false)
	assert.ErrorContains(t, err, "not the endpoint host", "endpoint as cache name")
}

func FuzzInspect(f *testing.F) {
	f.Add("mcp-cache/?Action=connect&User=app&X-Amz-Date=20240101T000000Z&X-Amz-Expires=900")
	f.Add("host:5432/?DBUser=x")
	f.Add("abc.dsql.us-east-1.on.aws/?Action=DbConnect&X-Amz-Credential=AKID%2F20240101%2Fus-east-1%2Fdsql%2Faws4_request")
	f.Add("%zz")
	f.Fuzz(func(t *testing.T, s string) {
		in, err := authtoken.Inspect(s)
		if err == nil && !in.Expires.IsZero() && in.Expires.Before(in.SignedAt) && !strings.Contains(s, "-") {
			t.Errorf("expiry before signing without a negative X-Amz-Expires: %q", s)
		}
		if err == nil && (strings.Contains(in.Service, "/") || strings.Contains(in.Region, "/")) {
			t.Errorf("the credential scope was split wrongly: %+v from %q", in, s)
		}
	})
}
