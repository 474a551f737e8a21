package rdsauth_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/rdsauth"
)

// dsqlHost is the DSQL front's cluster endpoint name; it does not
// resolve, so connections reach the front through Options.DialAddress.
func dsqlHost() string { return dsqlFront.Hostnames()[0] }

// dsqlDSN is a connection string to the DSQL cluster endpoint as user,
// verify-full against the front's CA.
func dsqlDSN(user, extra string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=verify-full sslrootcert=%s %s",
		dsqlHost(), dsqlFront.Port(), user, dsqlFront.CAFile(), extra)
}

// toDSQLFront sends the connections to the front.
func toDSQLFront(o *rdsauth.Options) { o.DialAddress = dsqlFront.Addr() }

func TestDSQLClusterFromHost(t *testing.T) {
	for _, tt := range []struct {
		host, id, region string
		ok               bool
	}{
		{"abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "abcdefghijklmnopqrstuvwxyz", "us-east-1", true},
		{"peccy.dsql.eu-west-2.on.aws.", "peccy", "eu-west-2", true},
		{"ABC123.DSQL.AP-NORTHEAST-1.ON.AWS", "abc123", "ap-northeast-1", true},
		{"abc.dsql.us-east-1.on.aws:5432", "", "", false},
		{"abc.dsql.nowhere.on.aws", "", "", false},
		{"abc.dsql-fips.us-east-1.on.aws", "", "", false},
		{"x.abc.dsql.us-east-1.on.aws", "", "", false},
		{".dsql.us-east-1.on.aws", "", "", false},
		{"ab_c.dsql.us-east-1.on.aws", "", "", false},
		{"mydb.c9akciq32.us-east-1.rds.amazonaws.com", "", "", false},
		{"dsql.us-east-1.on.aws", "", "", false},
		{"127.0.0.1", "", "", false},
		{"", "", "", false},
	} {
		t.Run(tt.host, func(t *testing.T) {
			id, region, ok := rdsauth.DSQLClusterFromHost(tt.host)
			assert.Equal(t, tt.ok, ok)
			assert.Equal(t, tt.id, id)
			assert.Equal(t, tt.region, region)
			assert.Equal(t, tt.ok, rdsauth.IsDSQLHost(tt.host))
		})
	}
}

func FuzzDSQLClusterFromHost(f *testing.F) {
	for _, s := range []string{"abc.dsql.us-east-1.on.aws", "ABC.dsql.eu-west-1.on.aws.", "a.b.dsql.us-east-1.on.aws", "x.dsql.cn-north-1.on.aws", "x.rds.us-east-1.amazonaws.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		id, region, ok := rdsauth.DSQLClusterFromHost(host)
		if !ok {
			require.Empty(t, id)
			require.Empty(t, region)
			return
		}
		// What it read is exactly the name, lower-cased.
		require.Equal(t, strings.TrimSuffix(strings.ToLower(host), "."), id+".dsql."+region+".on.aws")
		_, err := rdsauth.DSQLPolicy(region, "111122223333", id, []string{"admin"})
		require.NoError(t, err, "a cluster read from an endpoint must make a policy")
	})
}

// A DSQL token is what the SDK's feature/dsql/auth builds for the same
// inputs: the SDK's SigV4 presigner on GET https://ENDPOINT with
// Action=DbConnect or DbConnectAdmin and X-Amz-Expires, service dsql,
// scheme stripped. (That module is not served by the module proxy here, so
// its request building, a few lines, is repeated; the signer is the SDK's.)
func TestDSQLTokenMatchesTheSDK(t *testing.T) {
	ctx := context.Background()
	at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	creds := aws.Credentials{AccessKeyID: "ASIAEXAMPLEEXAMPLE00", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", SessionToken: "session/token+with=signs", CanExpire: true, Expires: at.Add(12 * time.Hour)}
	sdkToken := func(endpoint, region, action string, expires time.Duration) string {
		req, err := http.NewRequest(http.MethodGet, "https://"+endpoint, nil)
		require.NoError(t, err)
		req.URL.RawQuery = url.Values{"Action": {action}}.Encode()
		q := req.URL.Query()
		q.Set("X-Amz-Expires", fmt.Sprint(int(expires.Seconds())))
		req.URL.RawQuery = q.Encode()
		signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req,
			"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "dsql", region, at)
		require.NoError(t, err)
		return strings.TrimPrefix(signed, "https://")
	}
	for _, tt := range []struct {
		name, endpoint, user, action string
		expiresIn                    time.Duration // 0: default
	}{
		{"custom role", "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "app", "DbConnect", 0},
		{"admin", "abcdefghijklmnopqrstuvwxyz.dsql.us-east-1.on.aws", "admin", "DbConnectAdmin", 0},
		{"endpoint with :5432", "peccy.dsql.eu-west-2.on.aws:5432", "admin", "DbConnectAdmin", 0},
		{"one hour", "peccy.dsql.eu-west-2.on.aws", "reporting", "DbConnect", time.Hour},
		{"one week", "peccy.dsql.ap-northeast-1.on.aws", "admin", "DbConnectAdmin", rdsauth.MaxDSQLTokenLifetime},
	} {
		t.Run(tt.name, func(t *testing.T) {
			src, err := rdsauth.NewDSQLTokenSource(tt.endpoint, tt.user, staticCreds(creds), func(o *rdsauth.Options) {
				o.Clock = clock.NewFake(at)
				o.ExpiresIn = tt.expiresIn
			})
			require.NoError(t, err)
			defer src.Close()
			tok, err := src.Token(ctx)
			require.NoError(t, err)
			host := strings.TrimSuffix(tt.endpoint, ":5432")
			expires := tt.expiresIn
			if expires == 0 {
				expires = 15 * time.Minute
			}
			want := sdkToken(host, src.Region(), tt.action, expires)
			ours, err := url.Parse("https://" + tok.Value())
			require.NoError(t, err)
			theirs, err := url.Parse("https://" + want)
			require.NoError(t, err)
			assert.Equal(t, theirs.Host, ours.Host, "signed for the host without a port")
			assert.Equal(t, theirs.Query(), ours.Query(), "same parameters, same signature")
			assert.Contains(t, []string{"", "/"}, ours.Path)
			// The two differ only in the slash before the query, which
			// SigV4 signs the same way.
			assert.Equal(t, want, strings.Replace(tok.Value(), "/?", "?", 1))
			// Credentials that end first end the token, as the SDK caps
			// X-Amz-Expires.
			wantEnd := at.Add(expires)
			if creds.Expires.Before(wantEnd) {
				wantEnd = creds.Expires
			}
			assert.Equal(t, wantEnd, tok.Expires())
		})
	}
}

type staticCreds aws.Credentials

func (c staticCreds) Retrieve(context.Context) (aws.Credentials, error) {
	return aws.Credentials(c), nil
}

// Tokens for a DSQL cluster are accepted by the DSQL front, cached like RDS
// tokens (one mint for many connections), and admin gets DbConnectAdmin.
func TestDSQLPool(t *testing.T) {
	ctx := context.Background()
	for _, user := range []string{"admin", "app"} {
		t.Run(user, func(t *testing.T) {
			mark := authLog.mark()
			accepted := dsqlFront.Accepted()
			pool, src := newPool(t, dsqlDSN(user, "pool_max_conns=20"), sessionConfig(t), toDSQLFront)
			conns := acquireAll(ctx, t, pool, 20)
			for _, c := range conns {
				var who string
				require.NoError(t, c.QueryRow(ctx, "SELECT current_user").Scan(&who))
				assert.Equal(t, user, who)
				c.Release()
			}
			assert.Equal(t, accepted+20, dsqlFront.Accepted())
			assert.Equal(t, int64(1), src.Mints(), "tokens minted for 20 connections")
			evs := authLog.since(mark)
			require.Len(t, evs, 20)
			for _, ev := range evs {
				assert.NoError(t, ev.Err)
				assert.Equal(t, dsqlHost(), ev.Host, "DSQL checks the host without a port")
			}
			tok, err := src.Token(ctx)
			require.NoError(t, err)
			action := "DbConnect"
			if user == "admin" {
				action = "DbConnectAdmin"
			}
			u, err := url.Parse("https://" + tok.Value())
			require.NoError(t, err)
			assert.Equal(t, action, u.Query().Get("Action"))
			assert.Equal(t, "900", u.Query().Get("X-Amz-Expires"))
			assert.Equal(t, dsqlFront.Region(), tok.Region())
		})
	}

	t.Run("OpenDB", func(t *testing.T) {
		db, err := rdsauth.OpenDB(dsqlDSN("admin", ""), sessionConfig(t), fakeClock, toDSQLFront)
		require.NoError(t, err)
		defer db.Close()
		var who string
		require.NoError(t, db.QueryRowContext(ctx, "SELECT current_user").Scan(&who))
		assert.Equal(t, "admin", who)
	})

	t.Run("a TokenSource's BeforeConnect", func(t *testing.T) {
		src, err := rdsauth.NewDSQLTokenSource(dsqlHost(), "app", sessionConfig(t).Credentials, fakeClock, toDSQLFront,
			func(o *rdsauth.Options) { o.ExpiresIn = time.Hour })
		require.NoError(t, err)
		defer src.Close()
		poolCfg := mustParsePool(t, dsqlDSN("app", ""))
		poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
		pool := mustPool(t, poolCfg)
		_, err = pool.Exec(ctx, "SELECT 1")
		require.NoError(t, err)
		assert.Equal(t, int64(1), src.Mints())
	})
}

// A one-hour token is still accepted after 50 minutes, and the cache keeps
// serving it until shortly before its end.
func TestDSQLExpiresIn(t *testing.T) {
	ctx := context.Background()
	creds := newSwitchableCreds(t, 24*time.Hour)
	src, err := rdsauth.NewDSQLTokenSource(dsqlHost(), "app", creds, fakeClock, func(o *rdsauth.Options) { o.ExpiresIn = time.Hour })
	require.NoError(t, err)
	defer src.Close()
	tok, err := src.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok.SignedAt().Add(time.Hour), tok.Expires())
	advanceClock(t, 50*time.Minute)
	_, err = dsqlFront.VerifyToken(tok.Value(), "app", dsqlHost())
	require.NoError(t, err, "a one-hour token refused after 50 minutes")
	advanceClock(t, 11*time.Minute)
	_, err = dsqlFront.VerifyToken(tok.Value(), "app", dsqlHost())
	require.Error(t, err, "a one-hour token accepted after 61 minutes")
	fresh, err := src.Token(ctx)
	require.NoError(t, err)
	assert.True(t, fresh.SignedAt().After(tok.SignedAt()), "an expired token was served")
	_, err = dsqlFront.VerifyToken(fresh.Value(), "app", dsqlHost())
	assert.NoError(t, err)
}

// The role's policy decides between the custom role and admin.
func TestDSQLPolicyDeniesAdmin(t *testing.T) {
	ctx := context.Background()
	const role = "arn:aws:iam::111122223333:role/dsql-app-only"
	policy, err := rdsauth.DSQLPolicy(dsqlFront.Region(), dsqlFront.Account(), dsqlFront.ClusterID(), []string{"app"})
	require.NoError(t, err)
	require.NoError(t, env.IAM.PutRole(role, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`), policy))
	c, err := env.Registry.IssueSession(role, "dsql", time.Hour)
	require.NoError(t, err)
	creds := staticCreds(aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires})

	for _, tt := range []struct {
		user string
		ok   bool
	}{{"app", true}, {"admin", false}} {
		t.Run(tt.user, func(t *testing.T) {
			src, err := rdsauth.NewDSQLTokenSource(dsqlHost(), tt.user, creds, fakeClock, toDSQLFront)
			require.NoError(t, err)
			defer src.Close()
			poolCfg := mustParsePool(t, dsqlDSN(tt.user, ""))
			poolCfg.BeforeConnect = rdsauth.BeforeConnect(src)
			pool := mustPool(t, poolCfg)
			mark := authLog.mark()
			_, err = pool.Exec(ctx, "SELECT 1")
			if tt.ok {
				require.NoError(t, err)
				return
			}
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, "28P01", pgErr.Code)
			assert.Equal(t, `IAM authentication failed for user "admin"`, pgErr.Message)
			evs := authLog.since(mark)
			require.NotEmpty(t, evs)
			var te *pgfront.TokenError
			require.ErrorAs(t, evs[0].Err, &te)
			assert.Equal(t, "AccessDenied", te.Code)
			assert.Contains(t, te.Reason, "dsql:DbConnectAdmin")
		})
	}
}

func TestDSQLErrors(t *testing.T) {
	creds := sessionConfig(t).Credentials
	for _, tt := range []struct {
		name, endpoint string
		opt            func(*rdsauth.Options)
		is             error
		says           string
	}{
		{name: "URL", endpoint: "postgres://abc.dsql.us-east-1.on.aws", is: rdsauth.ErrInvalidEndpoint, says: "want the cluster endpoint"},
		{name: "empty", endpoint: "", is: rdsauth.ErrInvalidEndpoint, says: "want the cluster endpoint"},
		{name: "bad port", endpoint: "abc.dsql.us-east-1.on.aws:x", is: rdsauth.ErrInvalidEndpoint, says: "5432"},
		{name: "over a week", endpoint: "abc.dsql.us-east-1.on.aws", opt: func(o *rdsauth.Options) { o.ExpiresIn = rdsauth.MaxDSQLTokenLifetime + time.Second }, says: "Options.ExpiresIn"},
		{name: "not longer than Margin", endpoint: "abc.dsql.us-east-1.on.aws", opt: func(o *rdsauth.Options) { o.ExpiresIn = time.Minute }, says: "Options.Margin"},
		{name: "region mismatch", endpoint: "abc.dsql.us-east-1.on.aws", opt: func(o *rdsauth.Options) { o.Region = "eu-west-1" }, is: rdsauth.ErrRegionMismatch},
		{name: "no region", endpoint: "10.1.2.3", is: rdsauth.ErrNoRegion, says: "CLUSTERID.dsql.REGION.on.aws"},
		{name: "bad region", endpoint: "10.1.2.3", opt: func(o *rdsauth.Options) { o.Region = "nowhere" }, is: rdsauth.ErrInvalidRegion},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*rdsauth.Options)
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			_, err := rdsauth.NewDSQLTokenSource(tt.endpoint, "admin", creds, opts...)
			require.Error(t, err)
			if tt.is != nil {
				assert.ErrorIs(t, err, tt.is)
			}
			assert.Contains(t, err.Error(), tt.says)
		})
	}
	t.Run("RDS tokens stay within 15 minutes", func(t *testing.T) {
		_, err := rdsauth.NewTokenSource("mydb.c9akciq32.us-east-1.rds.amazonaws.com:5432", "app", creds,
			func(o *rdsauth.Options) { o.ExpiresIn = 16 * time.Minute })
		require.Error(t, err)
		assert.Contains(t, err.Error(), "RDS accepts tokens valid for at most 15m0s")
	})
	t.Run("a DSQL endpoint without a port names NewDSQLTokenSource", func(t *testing.T) {
		_, err := rdsauth.NewTokenSource("abc.dsql.us-east-1.on.aws", "admin", creds)
		require.ErrorIs(t, err, rdsauth.ErrMissingPort)
		assert.Contains(t, err.Error(), "NewDSQLTokenSource")
	})
	t.Run("sslmode=require names verify-full with the system roots", func(t *testing.T) {
		_, err := rdsauth.NewPool(context.Background(), "host=abc.dsql.us-east-1.on.aws user=admin dbname=postgres sslmode=require", sessionConfig(t))
		require.ErrorIs(t, err, rdsauth.ErrUnverifiedTLS)
		assert.Contains(t, err.Error(), "Aurora DSQL")
		assert.NotContains(t, err.Error(), "global-bundle.pem", "DSQL uses public CAs")
	})
	t.Run("an IP address with Options.DSQL", func(t *testing.T) {
		src, err := rdsauth.NewTokenSource("10.1.2.3:5432", "admin", creds, func(o *rdsauth.Options) {
			o.DSQL = true
			o.Region = "us-east-1"
		})
		require.NoError(t, err)
		defer src.Close()
		tok, err := src.Token(context.Background())
		require.NoError(t, err)
		assert.True(t, strings.HasPrefix(tok.Value(), "10.1.2.3/?Action=DbConnectAdmin&"), "signed for the host without its port")
	})
}

func TestDSQLPolicy(t *testing.T) {
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`)
	const arn = "arn:aws:dsql:us-east-1:111122223333:cluster/abcdefghijklmnopqrstuvwxyz"
	for _, tt := range []struct {
		name, region, cluster string
		users                 []string
		opt                   func(*rdsauth.PolicyOptions)
		allowed, denied       [][2]string // action, resource
	}{
		{
			name: "custom roles", region: "us-east-1", cluster: "abcdefghijklmnopqrstuvwxyz", users: []string{"app", "reporting"},
			allowed: [][2]string{{"dsql:DbConnect", arn}},
			denied: [][2]string{
				{"dsql:DbConnectAdmin", arn},
				{"dsql:DbConnect", "arn:aws:dsql:us-east-1:111122223333:cluster/otherclusterxxxxxxxxxxxxxx"},
				{"dsql:DbConnect", "arn:aws:dsql:us-east-2:111122223333:cluster/abcdefghijklmnopqrstuvwxyz"},
				{"dsql:DbConnect", "arn:aws:dsql:us-east-1:444455556666:cluster/abcdefghijklmnopqrstuvwxyz"},
				{"dsql:GetCluster", arn},
			},
		},
		{
			name: "admin", region: "us-east-1", cluster: "abcdefghijklmnopqrstuvwxyz", users: []string{"admin"},
			allowed: [][2]string{{"dsql:DbConnectAdmin", arn}},
			denied:  [][2]string{{"dsql:DbConnect", arn}},
		},
		{
			name: "both", region: "us-east-1", cluster: "abcdefghijklmnopqrstuvwxyz", users: []string{"admin", "app", "admin"},
			allowed: [][2]string{{"dsql:DbConnectAdmin", arn}, {"dsql:DbConnect", arn}},
		},
		{
			name: "GovCloud", region: "us-gov-west-1", cluster: "abc", users: []string{"app"},
			allowed: [][2]string{{"dsql:DbConnect", "arn:aws-us-gov:dsql:us-gov-west-1:111122223333:cluster/abc"}},
			denied:  [][2]string{{"dsql:DbConnect", "arn:aws:dsql:us-gov-west-1:111122223333:cluster/abc"}},
		},
		{
			name: "explicit partition", region: "eusc-de-east-1", cluster: "abc", users: []string{"admin"}, opt: func(o *rdsauth.PolicyOptions) { o.Partition = "aws-eusc" },
			allowed: [][2]string{{"dsql:DbConnectAdmin", "arn:aws-eusc:dsql:eusc-de-east-1:111122223333:cluster/abc"}},
		},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var opts []func(*rdsauth.PolicyOptions)
			if tt.opt != nil {
				opts = append(opts, tt.opt)
			}
			doc, err := rdsauth.DSQLPolicy(tt.region, "111122223333", tt.cluster, tt.users, opts...)
			require.NoError(t, err)
			mini := iam.New("111122223333")
			const role = "arn:aws:iam::111122223333:role/app"
			require.NoError(t, mini.PutRole(role, trust, doc), "IAM must accept the document")
			for _, ar := range tt.allowed {
				assert.True(t, mini.Authorize(role, ar[0], ar[1]), "%s on %s denied", ar[0], ar[1])
			}
			for _, ar := range tt.denied {
				assert.False(t, mini.Authorize(role, ar[0], ar[1]), "%s on %s allowed", ar[0], ar[1])
			}
		})
	}

	t.Run("bad input", func(t *testing.T) {
		for _, tt := range []struct {
			name, region, account, cluster string
			users                          []string
			says                           string
		}{
			{"endpoint for id", "us-east-1", "111122223333", "abc.dsql.us-east-1.on.aws", []string{"app"}, `pass the cluster id, its first label: "abc"`},
			{"host name for id", "us-east-1", "111122223333", "abc.example.com", []string{"app"}, "not a host name"},
			{"wildcard", "us-east-1", "111122223333", "*", []string{"app"}, "wildcards are not allowed"},
			{"upper case", "us-east-1", "111122223333", "ABC", []string{"app"}, "lower-case"},
			{"empty id", "us-east-1", "111122223333", "", []string{"app"}, "cluster id"},
			{"no users", "us-east-1", "111122223333", "abc", nil, "no database role"},
			{"bad user", "us-east-1", "111122223333", "abc", []string{"a*"}, `"a*"`},
			{"bad region", "us-east", "111122223333", "abc", []string{"app"}, "region"},
			{"bad account", "us-east-1", "1111", "abc", []string{"app"}, "12-digit"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				_, err := rdsauth.DSQLPolicy(tt.region, tt.account, tt.cluster, tt.users)
				require.ErrorIs(t, err, rdsauth.ErrInvalidPolicyInput)
				assert.Contains(t, err.Error(), tt.says)
			})
		}
		_, err := rdsauth.DSQLPolicy("us-east-1", "111122223333", "abc", []string{"app"}, func(o *rdsauth.PolicyOptions) { o.Partition = "aws-cn" })
		assert.ErrorIs(t, err, rdsauth.ErrInvalidPolicyInput, "a partition the region is not in")
	})
}

// One mint however many DSQL connections open at once, through the real
// pool (the storm benchmark measures the same with 500).
func TestDSQLConcurrentConnectsMintOnce(t *testing.T) {
	ctx := context.Background()
	pool, src := newPool(t, dsqlDSN("app", "pool_max_conns=50"), sessionConfig(t), toDSQLFront)
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			_, err := pool.Exec(ctx, "SELECT 1")
			assert.NoError(t, err)
		})
	}
	wg.Wait()
	assert.Equal(t, int64(1), src.Mints())
}

func mustParsePool(t *testing.T, conn string) *pgxpool.Config {
	t.Helper()
	c, err := pgxpool.ParseConfig(conn)
	require.NoError(t, err)
	return c
}

func mustPool(t *testing.T, c *pgxpool.Config) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.NewWithConfig(context.Background(), c)
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	return pool
}

// advanceClock moves the shared fake clock and keeps the pod's web
// identity token current, as the kubelet would.
func advanceClock(t *testing.T, d time.Duration) {
	t.Helper()
	clk.Advance(d)
	require.NoError(t, env.RotateToken())
}
