package pgfront_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/presign"
)

const (
	dsqlRole      = "arn:aws:iam::111122223333:role/dsql-app"
	dsqlAdminRole = "arn:aws:iam::111122223333:role/dsql-admin"
	// dsqlElsewhere may connect, but to another cluster.
	dsqlElsewhere = "arn:aws:iam::111122223333:role/dsql-elsewhere"
)

// startDSQL starts a DSQL front with its policies: dsqlRole may
// DbConnect, dsqlAdminRole may DbConnectAdmin (only), dsqlElsewhere may do
// both on another cluster.
func startDSQL(t *testing.T) (*pgfront.Front, *[]pgfront.AuthEvent) {
	t.Helper()
	var evs []pgfront.AuthEvent
	f, err := pgfront.Start(pgfront.Config{
		Backend: pg.SocketPath(), Registry: reg, IAM: mini, Region: "us-east-1", DSQL: true,
		OnAuth: func(ev pgfront.AuthEvent) {
			evMu.Lock()
			evs = append(evs, ev)
			evMu.Unlock()
		},
	})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	allow := func(action, resource string) []byte {
		return fmt.Appendf(nil, `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":%q,"Resource":%q}]}`, action, resource)
	}
	require.NoError(t, mini.PutRole(dsqlRole, []byte(trust), allow("dsql:DbConnect", f.ClusterARN())))
	require.NoError(t, mini.PutRole(dsqlAdminRole, []byte(trust), allow("dsql:DbConnectAdmin", f.ClusterARN())))
	other := strings.Replace(f.ClusterARN(), f.ClusterID(), "othercluster00000000000000", 1)
	require.NoError(t, mini.PutRole(dsqlElsewhere, []byte(trust), allow("dsql:*", other)))
	require.NoError(t, pg.CreateRole(context.Background(), "admin"))
	return f, &evs
}

func dsqlEndpoint(f *pgfront.Front) string { return f.Hostnames()[0] }

type dsqlSpec struct {
	creds   aws.Credentials
	service string
	host    string
	region  string
	action  string
	expires time.Duration
	at      time.Time
}

func goodDSQLSpec(t *testing.T, f *pgfront.Front, role, action string) dsqlSpec {
	return dsqlSpec{creds: session(t, role), service: "dsql", host: dsqlEndpoint(f), region: "us-east-1", action: action, expires: 15 * time.Minute, at: clk.Now()}
}

func mintDSQL(t *testing.T, s dsqlSpec) string {
	t.Helper()
	tok, err := presign.Token(context.Background(), s.creds, s.service, s.region, s.host, url.Values{"Action": {s.action}}, s.expires, s.at)
	require.NoError(t, err)
	return tok
}

// connectDSQL logs in to f as user, dialling the front's address but
// asking (SNI, certificate name) for host, as a client of the real
// endpoint does.
func connectDSQL(ctx context.Context, t *testing.T, f *pgfront.Front, host, user, password, sslmode string) (*pgconn.PgConn, error) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=postgres sslmode=%s sslrootcert=%s connect_timeout=10",
		host, f.Port(), user, sslmode, f.CAFile()))
	require.NoError(t, err)
	cfg.LookupFunc = func(context.Context, string) ([]string, error) { return []string{"127.0.0.1"}, nil }
	cfg.Password = password
	return pgconn.ConnectConfig(ctx, cfg)
}

func TestDSQLTokenRelaysToPostgres(t *testing.T) {
	ctx := context.Background()
	f, evs := startDSQL(t)
	for _, tt := range []struct{ user, role, action string }{
		{"app", dsqlRole, "DbConnect"},
		{"admin", dsqlAdminRole, "DbConnectAdmin"},
	} {
		t.Run(tt.user, func(t *testing.T) {
			c, err := connectDSQL(ctx, t, f, dsqlEndpoint(f), tt.user, mintDSQL(t, goodDSQLSpec(t, f, tt.role, tt.action)), "verify-full")
			require.NoError(t, err)
			defer c.Close(ctx)
			assert.Equal(t, tt.user, currentUser(ctx, t, c))
			evMu.Lock()
			ev := (*evs)[len(*evs)-1]
			evMu.Unlock()
			assert.NoError(t, ev.Err)
			assert.Equal(t, dsqlEndpoint(f), ev.Host, "DSQL signs for the host without a port")
		})
	}
	t.Run("a week-long token", func(t *testing.T) {
		s := goodDSQLSpec(t, f, dsqlRole, "DbConnect")
		s.expires = pgfront.MaxDSQLTokenLifetime
		c, err := connectDSQL(ctx, t, f, dsqlEndpoint(f), "app", mintDSQL(t, s), "verify-full")
		require.NoError(t, err)
		c.Close(ctx)
	})
}

func TestDSQLBadTokensAreRefused(t *testing.T) {
	ctx := context.Background()
	f, evs := startDSQL(t)
	now := clk.Now()
	port := ":" + strconv.Itoa(f.Port())
	tests := []struct {
		name     string
		user     string // default app
		role     string // default dsqlRole (dsqlAdminRole for admin)
		edit     func(s *dsqlSpec)
		wantCode string
	}{
		{name: "expired", edit: func(s *dsqlSpec) { s.at = now.Add(-16 * time.Minute) }, wantCode: "AccessDenied"},
		{name: "lifetime over a week", edit: func(s *dsqlSpec) { s.expires = pgfront.MaxDSQLTokenLifetime + time.Second }, wantCode: "AuthorizationQueryParametersError"},
		{name: "signed for rds-db", edit: func(s *dsqlSpec) { s.service = "rds-db" }, wantCode: "SignatureDoesNotMatch"},
		{name: "host with port", edit: func(s *dsqlSpec) { s.host += port }, wantCode: "SignatureDoesNotMatch"},
		{name: "host with port 5432", edit: func(s *dsqlSpec) { s.host += ":5432" }, wantCode: "SignatureDoesNotMatch"},
		{name: "other cluster", edit: func(s *dsqlSpec) { s.host = "othercluster00000000000000.dsql.us-east-1.on.aws" }, wantCode: "SignatureDoesNotMatch"},
		{name: "other region", edit: func(s *dsqlSpec) { s.region = "us-east-2" }, wantCode: "SignatureDoesNotMatch"},
		{name: "RDS action", edit: func(s *dsqlSpec) { s.action = "connect" }, wantCode: "InvalidAction"},
		{name: "admin action for a custom role", edit: func(s *dsqlSpec) { s.action = "DbConnectAdmin" }, wantCode: "InvalidAction"},
		{name: "custom-role action for admin", user: "admin", edit: func(s *dsqlSpec) { s.action = "DbConnect" }, wantCode: "InvalidAction"},
		{name: "unknown key", edit: func(s *dsqlSpec) { s.creds.AccessKeyID = "ASIAUNKNOWNUNKNOWN00" }, wantCode: "InvalidClientTokenId"},
		{name: "no session token", edit: func(s *dsqlSpec) { s.creds.SessionToken = "" }, wantCode: "InvalidClientTokenId"},
		{name: "wrong secret", edit: func(s *dsqlSpec) { s.creds.SecretAccessKey = strings.Repeat("x", 40) }, wantCode: "SignatureDoesNotMatch"},
		{name: "revoked key", edit: func(s *dsqlSpec) { reg.Revoke(s.creds.AccessKeyID) }, wantCode: "InvalidClientTokenId"},
		{name: "no policy", role: otherRole, wantCode: "AccessDenied"},
		{name: "DbConnect does not make admin", user: "admin", role: dsqlRole, wantCode: "AccessDenied"},
		{name: "DbConnectAdmin does not make a custom role", role: dsqlAdminRole, wantCode: "AccessDenied"},
		{name: "policy for another cluster", role: dsqlElsewhere, wantCode: "AccessDenied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			user, role, action := "app", dsqlRole, "DbConnect"
			if tt.user == "admin" {
				user, role, action = "admin", dsqlAdminRole, "DbConnectAdmin"
			}
			if tt.role != "" {
				role = tt.role
			}
			s := goodDSQLSpec(t, f, role, action)
			if tt.edit != nil {
				tt.edit(&s)
			}
			tok := mintDSQL(t, s)
			before := f.Rejected()
			c, err := connectDSQL(ctx, t, f, dsqlEndpoint(f), user, tok, "verify-full")
			if err == nil {
				c.Close(ctx)
				t.Fatal("front accepted the token")
			}
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, "FATAL", pgErr.Severity)
			assert.Equal(t, "28P01", pgErr.Code)
			assert.Equal(t, fmt.Sprintf("IAM authentication failed for user %q", user), pgErr.Message)
			assert.Equal(t, before+1, f.Rejected())
			evMu.Lock()
			ev := (*evs)[len(*evs)-1]
			evMu.Unlock()
			var te *pgfront.TokenError
			require.ErrorAs(t, ev.Err, &te)
			assert.Equal(t, tt.wantCode, te.Code, "refused because %v", ev.Err)
			assert.NotContains(t, err.Error(), "X-Amz-Signature", "error shows the token")
		})
	}
}

// DSQL routes by SNI: a client that sends none, or names no cluster of the
// front, is turned away before any password.
func TestDSQLNeedsSNI(t *testing.T) {
	ctx := context.Background()
	f, _ := startDSQL(t)
	tok := mintDSQL(t, goodDSQLSpec(t, f, dsqlRole, "DbConnect"))
	for _, tt := range []struct{ name, host, want string }{
		// pgx, like libpq, sends no SNI for an IP address.
		{"no SNI", "127.0.0.1", "unable to accept connection, sni was not received"},
		{"unknown name", "localhost", `unable to accept connection, no cluster for "localhost"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			before := f.Rejected()
			_, err := connectDSQL(ctx, t, f, tt.host, "app", tok, "require")
			var pgErr *pgconn.PgError
			require.ErrorAs(t, err, &pgErr)
			assert.Equal(t, tt.want, pgErr.Message)
			assert.Equal(t, before+1, f.Rejected())
		})
	}
}

func TestDSQLFrontHasNoPasswordUsers(t *testing.T) {
	_, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), DSQL: true, Passwords: map[string]string{"plain": "x"}})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Passwords")
}

// A token made the way the AWS SDK's feature/dsql/auth makes it (the SDK's
// SigV4 presigner on GET https://ENDPOINT/?Action=...&X-Amz-Expires=900,
// scheme stripped) is accepted: the front checks DSQL's format, not
// irsakit's. (feature/dsql/auth itself is not served by the module proxy
// here, so its few lines of request building are repeated.)
func TestSDKSignerDSQLTokenAccepted(t *testing.T) {
	ctx := context.Background()
	realReg := sigv4.NewRegistry(nil)
	f, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: realReg, IAM: mini, Region: "eu-west-1", DSQL: true})
	require.NoError(t, err)
	defer f.Close()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"dsql:DbConnectAdmin","Resource":%q}]}`, f.ClusterARN())
	require.NoError(t, mini.PutRole(dsqlAdminRole, []byte(trust), []byte(policy)))
	require.NoError(t, pg.CreateRole(ctx, "admin"))
	c, err := realReg.IssueSession(dsqlAdminRole, "sdk", time.Hour)
	require.NoError(t, err)
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}

	req, err := http.NewRequest(http.MethodGet, "https://"+dsqlEndpoint(f), nil)
	require.NoError(t, err)
	q := url.Values{"Action": {"DbConnectAdmin"}, "X-Amz-Expires": {"900"}}
	req.URL.RawQuery = q.Encode()
	signed, _, err := v4.NewSigner().PresignHTTP(ctx, creds, req, sigv4.EmptySHA256, "dsql", "eu-west-1", time.Now().UTC())
	require.NoError(t, err)
	tok := strings.TrimPrefix(signed, "https://")

	_, err = f.VerifyToken(tok, "admin", dsqlEndpoint(f))
	require.NoError(t, err)
	conn, err := connectDSQL(ctx, t, f, dsqlEndpoint(f), "admin", tok, "verify-full")
	require.NoError(t, err)
	assert.Equal(t, "admin", currentUser(ctx, t, conn))
	conn.Close(ctx)
	assert.Equal(t, int64(1), f.Accepted())
}
