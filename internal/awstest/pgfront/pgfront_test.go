package pgfront_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/feature/rds/auth"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/presign"
)

const (
	roleARN   = "arn:aws:iam::111122223333:role/app"
	otherRole = "arn:aws:iam::111122223333:role/other"
	trust     = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"x"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
)

var (
	pg    *procs.Postgres
	clk   *clock.Fake
	reg   *sigv4.Registry
	mini  *iam.IAM
	front *pgfront.Front

	evMu   sync.Mutex
	events []pgfront.AuthEvent
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var err error
	pg, err = procs.StartPostgres(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer pg.Close()
	for _, r := range []string{"app", "other", "plain"} {
		if err := pg.CreateRole(ctx, r); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	clk = clock.NewFake(time.Now())
	reg = sigv4.NewRegistry(clk)
	mini = iam.New(sigv4.DefaultAccount)
	front, err = pgfront.Start(pgfront.Config{
		Backend:   pg.SocketPath(),
		Registry:  reg,
		IAM:       mini,
		Region:    "us-east-1",
		Passwords: map[string]string{"plain": "s3cret"},
		OnAuth: func(ev pgfront.AuthEvent) {
			evMu.Lock()
			events = append(events, ev)
			evMu.Unlock()
		},
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer front.Close()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":%q}]}`, front.UserARN("app"))
	if err := mini.PutRole(roleARN, []byte(trust), []byte(policy)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := mini.PutRole(otherRole, []byte(trust)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}

func lastEvent(t *testing.T) pgfront.AuthEvent {
	t.Helper()
	evMu.Lock()
	defer evMu.Unlock()
	if len(events) == 0 {
		t.Fatal("no auth event")
	}
	return events[len(events)-1]
}

func session(t *testing.T, role string) aws.Credentials {
	t.Helper()
	c, err := reg.IssueSession(role, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires}
}

type tokenSpec struct {
	creds   aws.Credentials
	host    string
	region  string
	user    string
	action  string
	expires time.Duration
	at      time.Time
}

func mint(t *testing.T, s tokenSpec) string {
	t.Helper()
	q := url.Values{"Action": {s.action}, "DBUser": {s.user}}
	tok, err := presign.Token(context.Background(), s.creds, "rds-db", s.region, s.host, q, s.expires, s.at)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func goodSpec(t *testing.T) tokenSpec {
	return tokenSpec{creds: session(t, roleARN), host: front.Addr(), region: "us-east-1", user: "app", action: "connect", expires: 900 * time.Second, at: clk.Now()}
}

func connect(ctx context.Context, t *testing.T, host, user, password, sslmode string) (*pgconn.PgConn, error) {
	t.Helper()
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=%s sslrootcert=%s connect_timeout=10",
		host, front.Port(), user, user, sslmode, front.CAFile()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = password
	return pgconn.ConnectConfig(ctx, cfg)
}

func currentUser(ctx context.Context, t *testing.T, c *pgconn.PgConn) string {
	t.Helper()
	res, err := c.Exec(ctx, "SELECT current_user").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return string(res[0].Rows[0][0])
}

func TestValidTokenRelaysToPostgres(t *testing.T) {
	ctx := context.Background()
	for _, sslmode := range []string{"require", "verify-full"} {
		t.Run(sslmode, func(t *testing.T) {
			c, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), sslmode)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close(ctx)
			if got := currentUser(ctx, t, c); got != "app" {
				t.Errorf("current_user = %q", got)
			}
			ev := lastEvent(t)
			if ev.Err != nil || !ev.IAM || ev.User != "app" || ev.Host != front.Addr() {
				t.Errorf("event = %+v", ev)
			}
		})
	}
	t.Run("dialled by name, SNI picks the host", func(t *testing.T) {
		s := goodSpec(t)
		s.host = "localhost:" + strconv.Itoa(front.Port())
		c, err := connect(ctx, t, "localhost", "app", mint(t, s), "verify-full")
		if err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
		if ev := lastEvent(t); ev.Host != s.host {
			t.Errorf("front checked host %q, want %q", ev.Host, s.host)
		}
	})
}

func TestBadTokensAreRefusedLikeRDS(t *testing.T) {
	ctx := context.Background()
	now := clk.Now()
	tests := []struct {
		name     string
		user     string // startup user; default app
		edit     func(s *tokenSpec)
		token    func(t *testing.T) string // instead of edit
		wantCode string                    // TokenError.Code
	}{
		{name: "expired", edit: func(s *tokenSpec) { s.at = now.Add(-16 * time.Minute) }, wantCode: "AccessDenied"},
		{name: "signed in the future", edit: func(s *tokenSpec) { s.at = now.Add(20 * time.Minute) }, wantCode: "AccessDenied"},
		{name: "other user", edit: func(s *tokenSpec) { s.user = "other" }, wantCode: "AccessDenied"},
		{name: "token for app used by other", user: "other", wantCode: "AccessDenied"},
		{name: "other port", edit: func(s *tokenSpec) { s.host = "127.0.0.1:" + strconv.Itoa(front.Port()+1) }, wantCode: "SignatureDoesNotMatch"},
		{name: "other host", edit: func(s *tokenSpec) { s.host = "db.example.com:" + strconv.Itoa(front.Port()) }, wantCode: "SignatureDoesNotMatch"},
		{name: "other region", edit: func(s *tokenSpec) { s.region = "eu-west-1" }, wantCode: "SignatureDoesNotMatch"},
		{name: "other action", edit: func(s *tokenSpec) { s.action = "describe" }, wantCode: "InvalidAction"},
		{name: "lifetime over 900s", edit: func(s *tokenSpec) { s.expires = 901 * time.Second }, wantCode: "AuthorizationQueryParametersError"},
		{name: "unknown key", edit: func(s *tokenSpec) { s.creds.AccessKeyID = "ASIAUNKNOWNUNKNOWN00" }, wantCode: "InvalidClientTokenId"},
		{name: "no session token", edit: func(s *tokenSpec) { s.creds.SessionToken = "" }, wantCode: "InvalidClientTokenId"},
		{name: "wrong secret", edit: func(s *tokenSpec) { s.creds.SecretAccessKey = strings.Repeat("x", 40) }, wantCode: "SignatureDoesNotMatch"},
		{name: "policy denies", edit: func(s *tokenSpec) { s.creds = session(t, otherRole) }, wantCode: "AccessDenied"},
		{name: "long-term user keys", edit: func(s *tokenSpec) {
			u := reg.AddUser(sigv4.DefaultAccount, "bob")
			s.creds = aws.Credentials{AccessKeyID: u.AccessKeyID, SecretAccessKey: u.SecretAccessKey}
		}, wantCode: "AccessDenied"},
		{name: "credentials expired", edit: func(s *tokenSpec) {
			c, err := reg.IssueSession(roleARN, "short", time.Second)
			if err != nil {
				t.Fatal(err)
			}
			s.creds = aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
			s.at = now.Add(-time.Minute) // signed while... the token window is fine
		}, wantCode: "ExpiredToken"},
		{name: "revoked key", edit: func(s *tokenSpec) { reg.Revoke(s.creds.AccessKeyID) }, wantCode: "InvalidClientTokenId"},
		{name: "tampered signature", token: func(t *testing.T) string {
			tok := mint(t, goodSpec(t))
			last := tok[len(tok)-1]
			repl := byte('0')
			if last == '0' {
				repl = '1'
			}
			return tok[:len(tok)-1] + string(repl)
		}, wantCode: "SignatureDoesNotMatch"},
		{name: "tampered user", token: func(t *testing.T) string {
			return strings.Replace(mint(t, goodSpec(t)), "DBUser=app", "DBUser=other", 1)
		}, user: "other", wantCode: "SignatureDoesNotMatch"},
		{name: "not a token", token: func(*testing.T) string { return "hunter2" }, wantCode: "AuthorizationQueryParametersError"},
		{name: "scheme prefix", token: func(t *testing.T) string { return "https://" + mint(t, goodSpec(t)) }, wantCode: "AuthorizationQueryParametersError"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tok string
			if tt.token != nil {
				tok = tt.token(t)
			} else {
				s := goodSpec(t)
				if tt.edit != nil {
					tt.edit(&s)
				}
				tok = mint(t, s)
			}
			if tt.name == "credentials expired" {
				clk.Advance(2 * time.Second)
			}
			user := tt.user
			if user == "" {
				user = "app"
			}
			before := front.Rejected()
			c, err := connect(ctx, t, "127.0.0.1", user, tok, "require")
			if err == nil {
				c.Close(ctx)
				t.Fatal("front accepted the token")
			}
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) {
				t.Fatalf("err = %v, want a server error", err)
			}
			if pgErr.Severity != "FATAL" || pgErr.Code != "28000" || pgErr.Message != fmt.Sprintf("PAM authentication failed for user %q", user) {
				t.Errorf("server answered %s %s %q, want RDS's FATAL 28000 PAM message", pgErr.Severity, pgErr.Code, pgErr.Message)
			}
			if front.Rejected() != before+1 {
				t.Errorf("Rejected() = %d, want %d", front.Rejected(), before+1)
			}
			var te *pgfront.TokenError
			if ev := lastEvent(t); !errors.As(ev.Err, &te) || te.Code != tt.wantCode {
				t.Errorf("refused because %v, want code %s", ev.Err, tt.wantCode)
			}
			if strings.Contains(err.Error(), "X-Amz-Signature") {
				t.Error("error shows the token")
			}
		})
	}
}

func TestTokenStillValidWithinWindow(t *testing.T) {
	ctx := context.Background()
	s := goodSpec(t)
	tok := mint(t, s)
	clk.Advance(14 * time.Minute)
	c, err := connect(ctx, t, "127.0.0.1", "app", tok, "require")
	if err != nil {
		t.Fatalf("token 14 minutes old refused: %v", err)
	}
	c.Close(ctx)
	clk.Advance(2 * time.Minute)
	if c, err := connect(ctx, t, "127.0.0.1", "app", tok, "require"); err == nil {
		c.Close(ctx)
		t.Fatal("token 16 minutes old accepted")
	}
}

func TestPlainStartupRefused(t *testing.T) {
	ctx := context.Background()
	_, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "disable")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28000" || !strings.Contains(pgErr.Message, "no encryption") {
		t.Fatalf("err = %v, want FATAL 28000 no pg_hba.conf entry ... no encryption", err)
	}
}

func TestPlainPasswordMode(t *testing.T) {
	ctx := context.Background()
	c, err := connect(ctx, t, "127.0.0.1", "plain", "s3cret", "require")
	if err != nil {
		t.Fatal(err)
	}
	if got := currentUser(ctx, t, c); got != "plain" {
		t.Errorf("current_user = %q", got)
	}
	c.Close(ctx)
	_, err = connect(ctx, t, "127.0.0.1", "plain", "wrong", "require")
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "28P01" {
		t.Fatalf("err = %v, want FATAL 28P01", err)
	}
	if ev := lastEvent(t); ev.IAM || ev.Err == nil {
		t.Errorf("event = %+v", ev)
	}
}

func TestStopStart(t *testing.T) {
	ctx := context.Background()
	c, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "require")
	if err != nil {
		t.Fatal(err)
	}
	port := front.Port()
	if err := front.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err == nil {
		t.Error("session survived Stop")
	}
	c.Close(ctx)
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if c, err := connect(short, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "require"); err == nil {
		c.Close(ctx)
		t.Fatal("connected to a stopped front")
	}
	if err := front.Start(); err != nil {
		t.Fatal(err)
	}
	if front.Port() != port {
		t.Errorf("port changed from %d to %d", port, front.Port())
	}
	c, err = connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "require")
	if err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)
}

func TestCancelRequestIsForwarded(t *testing.T) {
	ctx := context.Background()
	c, err := connect(ctx, t, "127.0.0.1", "app", mint(t, goodSpec(t)), "require")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	done := make(chan error, 1)
	go func() {
		_, err := c.Exec(ctx, "SELECT pg_sleep(60)").ReadAll()
		done <- err
	}()
	// Keep cancelling until the query is running and gets cancelled.
	for {
		if err := c.CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-done:
			var pgErr *pgconn.PgError
			if !errors.As(err, &pgErr) || pgErr.Code != "57014" {
				t.Fatalf("err = %v, want query_canceled", err)
			}
			return
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// The SDK's own token builder, not only internal/presign, produces tokens
// the front accepts: the front checks the RDS format, not irsakit's.
func TestSDKBuildAuthTokenAccepted(t *testing.T) {
	ctx := context.Background()
	realReg := sigv4.NewRegistry(nil)
	f, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: realReg, IAM: mini, Region: "eu-west-1"})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	policy := fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"rds-db:connect","Resource":%q}]}`, f.UserARN("app"))
	if err := mini.AttachPolicy(roleARN, []byte(policy)); err != nil {
		t.Fatal(err)
	}
	c, err := realReg.IssueSession(roleARN, "sdk", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	creds := credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)
	tok, err := auth.BuildAuthToken(ctx, f.Addr(), "eu-west-1", "app", creds)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.VerifyToken(tok, "app", f.Addr()); err != nil {
		t.Fatalf("SDK token refused: %v", err)
	}
	cfg, err := pgconn.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", f.Port(), f.CAFile()))
	if err != nil {
		t.Fatal(err)
	}
	cfg.Password = tok
	conn, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	if f.Accepted() != 1 || f.Rejected() != 0 {
		t.Errorf("accepted %d rejected %d", f.Accepted(), f.Rejected())
	}
}
