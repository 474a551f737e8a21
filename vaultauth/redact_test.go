package vaultauth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/vaultauth"
)

// printed renders v with every fmt verb and flag combination people use,
// and with slog's text and JSON handlers.
func printed(v any) string {
	var b strings.Builder
	for _, f := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d", "%T %v", "%10v", "%-8s"} {
		fmt.Fprintf(&b, f+"\n", v)
	}
	fmt.Fprintln(&b, v)
	fmt.Fprint(&b, v, "\n")
	fmt.Fprintf(&b, "%v\n", []any{v})
	fmt.Fprintf(&b, "%+v\n", struct{ V any }{v})
	for _, h := range []slog.Handler{slog.NewTextHandler(&b, nil), slog.NewJSONHandler(&b, nil)} {
		slog.New(h).Info("msg", "v", v)
		slog.New(h).Info("msg", slog.Any("v", v))
		slog.New(h).With("v", v).Info("msg")
	}
	return b.String()
}

// secretsOf returns the credential parts of a login request: the session
// token, the signature and the encoded forms Vault receives.
func secretsOf(t *testing.T, data map[string]any) []string {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(data["iam_request_headers"].(string))
	require.NoError(t, err)
	var h http.Header
	require.NoError(t, json.Unmarshal(raw, &h))
	sig := regexp.MustCompile(`Signature=([0-9a-f]+)`).FindStringSubmatch(h.Get("Authorization"))
	require.Len(t, sig, 2)
	return []string{sig[1], h.Get("X-Amz-Security-Token"), data["iam_request_headers"].(string)}
}

// Neither a Token nor a LoginRequest prints its secret, by value or by
// pointer, with any fmt verb or slog handler.
func TestRedaction(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	cfg := roleConfig(t, time.Hour)
	creds, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	tok, err := vaultauth.Login(ctx, srv.URL, "app", cfg, opts()...)
	require.NoError(t, err)
	req, err := vaultauth.BuildLogin(ctx, cfg, "app", opts()...)
	require.NoError(t, err)

	secrets := append([]string{tok.Value(), tok.Accessor(), creds.SecretAccessKey, creds.SessionToken}, secretsOf(t, req.Data())...)
	for _, s := range secrets {
		require.NotEmpty(t, s)
	}
	// A source holding a static provider, a struct of the keys themselves.
	static := withSTS(aws.Config{Region: env.Region, Credentials: credentials.NewStaticCredentialsProvider(creds.AccessKeyID, creds.SecretAccessKey, creds.SessionToken)})
	src, err := vaultauth.NewTokenSource(srv.URL, "app", static, opts()...)
	require.NoError(t, err)
	defer src.Close()
	srcTok, err := src.Token(ctx)
	require.NoError(t, err)
	secrets = append(secrets, srcTok.Value(), srcTok.Accessor())
	for name, v := range map[string]any{"Token": tok, "*Token": &tok, "LoginRequest": req, "*LoginRequest": &req, "*TokenSource": src} {
		t.Run(name, func(t *testing.T) {
			out := printed(v)
			for _, s := range secrets {
				assert.NotContains(t, out, s)
			}
			assert.Contains(t, out, "vaultauth."+strings.TrimPrefix(name, "*")+"(")
		})
	}
	assert.Equal(t, "vaultauth.Token(auth/aws role app, service, policies [app-read default], lease 1h0m0s, renewable, REDACTED)", tok.String())
	assert.Equal(t, "vaultauth.LoginRequest(auth/aws/login role app, signed for "+env.STS.URL()+"/ us-east-1, server id \"vault.irsakit.test\", REDACTED)", req.String())
	assert.Equal(t, "vaultauth.TokenSource("+srv.URL+" auth/aws role app)", src.String())
	assert.Equal(t, "vaultauth.Token(none)", vaultauth.Token{}.String())
	assert.Equal(t, "vaultauth.LoginRequest(none)", vaultauth.LoginRequest{}.String())
}

// lockedBuffer collects log output from several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// recordLogins keeps the bodies of the logins sent, to know their secrets.
type recordLogins struct {
	mu     sync.Mutex
	bodies []map[string]any
}

func (r *recordLogins) RoundTrip(req *http.Request) (*http.Response, error) {
	if strings.HasSuffix(req.URL.Path, "/login") {
		b, err := io.ReadAll(req.Body)
		if err != nil {
			return nil, err
		}
		var d map[string]any
		if err := json.Unmarshal(b, &d); err != nil {
			return nil, err
		}
		r.mu.Lock()
		r.bodies = append(r.bodies, d)
		r.mu.Unlock()
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(b))
	}
	return http.DefaultTransport.RoundTrip(req)
}

// Through logins, renewals and failures of both, no token, accessor, AWS
// secret or signed request reaches the log or an error.
func TestNoSecretInLogsOrErrors(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	text := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	rec := &recordLogins{}
	cfg := roleConfig(t, 24*time.Hour)
	creds, err := cfg.Credentials.Retrieve(ctx)
	require.NoError(t, err)
	require.NoError(t, srv.Write(ctx, "role/logged", map[string]any{
		"auth_type": "iam", "bound_iam_principal_arn": env.RoleARN, "resolve_aws_unique_ids": false, "token_ttl": "1h",
	}))

	var tokens []vaultauth.Token
	var errs []error
	for i, l := range []*slog.Logger{logger, text} {
		s := newSource(t, "logged", cfg, func(o *vaultauth.Options) {
			o.Logger = l
			o.HTTPClient = &http.Client{Transport: rec}
		})
		tokens = append(tokens, s.first(t))
		// A renewal.
		clk.Advance(pastRefresh)
		tok, err := s.next(t)
		require.NoError(t, err)
		tokens = append(tokens, tok)
		// A renewal that fails (revoked) and a login that succeeds.
		require.NoError(t, srv.RevokeSelf(ctx, tok.Value()))
		clk.Advance(pastRefresh)
		tok, err = s.next(t)
		require.NoError(t, err)
		tokens = append(tokens, tok)
		// Then both fail: the role no longer trusts the principal.
		require.NoError(t, srv.Write(ctx, "role/logged", map[string]any{"bound_iam_principal_arn": fmt.Sprintf("arn:aws:iam::%s:role/x%d", env.Account, i)}))
		clk.Advance(pastRefresh)
		_, err = s.next(t)
		require.Error(t, err)
		errs = append(errs, err)
		clk.Advance(pastRefresh)
		_, err = s.Token(ctx)
		require.Error(t, err)
		errs = append(errs, err)
		<-s.failed
		require.NoError(t, srv.Write(ctx, "role/logged", map[string]any{"bound_iam_principal_arn": env.RoleARN}))
	}
	// A login refused for a wrong server id.
	_, err = vaultauth.Login(ctx, srv.URL, "logged", cfg, opts(func(o *vaultauth.Options) {
		o.ServerID = "wrong"
		o.HTTPClient = &http.Client{Transport: rec}
	})...)
	require.Error(t, err)
	errs = append(errs, err)

	secrets := []string{creds.SecretAccessKey, creds.SessionToken}
	for _, tok := range tokens {
		secrets = append(secrets, tok.Value(), tok.Accessor())
	}
	rec.mu.Lock()
	for _, d := range rec.bodies {
		secrets = append(secrets, secretsOf(t, d)...)
	}
	rec.mu.Unlock()
	out := logs.String()
	for _, e := range errs {
		out += "\n" + e.Error() + "\n" + fmt.Sprintf("%+v %#v", e, e)
	}
	for _, s := range secrets {
		require.NotEmpty(t, s)
		assert.NotContains(t, out, s)
	}
	// The log is there and says what happened.
	for _, want := range []string{"logged in to Vault", "renewed the Vault token", "renewing the Vault token failed", "refreshing the Vault token failed", "does not belong to the role"} {
		assert.Contains(t, out, want)
	}
}
