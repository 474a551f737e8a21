package vaultauth_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/vault"
	"github.com/irsakit/irsakit/vaultauth"
)

// source is a TokenSource under test with its refresh notifications.
type source struct {
	*vaultauth.TokenSource
	refreshed chan vaultauth.Token
	failed    chan error
}

func newSource(t *testing.T, role string, cfg aws.Config, extra ...func(*vaultauth.Options)) *source {
	t.Helper()
	src, err := vaultauth.NewTokenSource(srv.URL, role, cfg, opts(extra...)...)
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, src.Close()) })
	s := &source{TokenSource: src, refreshed: make(chan vaultauth.Token, 16), failed: make(chan error, 16)}
	vaultauth.OnRefresh(src, func(tok vaultauth.Token) { s.refreshed <- tok })
	vaultauth.OnRefreshError(src, func(err error) { s.failed <- err })
	return s
}

// next waits for the next refresh to finish; the timeout only guards
// against a hang.
func (s *source) next(t *testing.T) (vaultauth.Token, error) {
	t.Helper()
	select {
	case tok := <-s.refreshed:
		return tok, nil
	case err := <-s.failed:
		return vaultauth.Token{}, err
	case <-time.After(time.Minute):
		t.Fatal("no refresh finished within a minute")
		return vaultauth.Token{}, nil
	}
}

// first gets the source's first token (a login) and consumes its refresh
// notification.
func (s *source) first(t *testing.T) vaultauth.Token {
	t.Helper()
	tok, err := s.Token(context.Background())
	require.NoError(t, err)
	got, err := s.next(t)
	require.NoError(t, err)
	require.Equal(t, tok.Value(), got.Value())
	return tok
}

// pastRefresh is far enough into a 1 h lease for the early refresh (between
// 1/2 and 3/4 of the way to the end of serving) to have started, and short
// of the end of serving.
const pastRefresh = 45 * time.Minute

// A renewable token is renewed before its lease ends: same token, new
// lease, no new login and no STS call.
func TestTokenSourceRenews(t *testing.T) {
	needVault(t)
	s := newSource(t, "app", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	assert.Equal(t, int64(1), s.Logins())
	stsCalls := env.STS.Calls("GetCallerIdentity")

	clk.Advance(pastRefresh)
	renewed, err := s.next(t)
	require.NoError(t, err)
	assert.Equal(t, tok.Value(), renewed.Value())
	assert.Equal(t, tok.Accessor(), renewed.Accessor())
	assert.Equal(t, clk.Now(), renewed.Obtained())
	assert.Equal(t, clk.Now().Add(time.Hour), renewed.Expires())
	assert.Equal(t, int64(1), s.Logins())
	assert.Equal(t, int64(1), s.Renewals())
	assert.Equal(t, stsCalls, env.STS.Calls("GetCallerIdentity"), "a renewal does not go to STS")

	got, err := s.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, renewed.Expires(), got.Expires())
	l, err := srv.LookupSelf(context.Background(), got.Value())
	require.NoError(t, err)
	assert.Equal(t, []string{"app-read", "default"}, l.Policies)
}

// A token Vault will not renew (a batch token) is replaced by a new login
// before its lease ends.
func TestTokenSourceLogsInAgainWhenNotRenewable(t *testing.T) {
	needVault(t)
	s := newSource(t, "batch", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	assert.False(t, tok.Renewable())
	assert.Equal(t, "batch", tok.Type())
	assert.Equal(t, 20*time.Minute, tok.LeaseDuration())

	clk.Advance(15 * time.Minute) // past 3/4 of 20m less the 30 s margin
	next, err := s.next(t)
	require.NoError(t, err)
	assert.NotEqual(t, tok.Value(), next.Value())
	assert.Equal(t, int64(2), s.Logins())
	assert.Equal(t, int64(0), s.Renewals())
}

// When Vault caps a renewal well below the lease the login got (the token
// nears its max TTL, or the role's TTLs were cut), the source logs in again
// rather than renewing ever more often.
func TestTokenSourceLogsInAgainWhenRenewalIsCapped(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	require.NoError(t, srv.Write(ctx, "role/capped", vault.RoleIAM(env.RoleARN, []string{"app-read"}, map[string]any{"token_ttl": "1h", "token_max_ttl": "4h"})))
	s := newSource(t, "capped", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	require.NoError(t, srv.Write(ctx, "role/capped", map[string]any{"token_ttl": "20m", "token_max_ttl": "20m"}))

	clk.Advance(pastRefresh)
	next, err := s.next(t)
	require.NoError(t, err)
	assert.Equal(t, int64(1), s.Renewals(), "renewed first")
	assert.Equal(t, int64(2), s.Logins(), "then logged in again")
	assert.NotEqual(t, tok.Value(), next.Value())
	assert.Equal(t, 20*time.Minute, next.LeaseDuration())
}

// A token revoked behind the source's back fails to renew; the source logs
// in again.
func TestTokenSourceLogsInAgainAfterRevocation(t *testing.T) {
	needVault(t)
	s := newSource(t, "app", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	require.NoError(t, srv.RevokeSelf(context.Background(), tok.Value()))

	clk.Advance(pastRefresh)
	next, err := s.next(t)
	require.NoError(t, err)
	assert.NotEqual(t, tok.Value(), next.Value())
	assert.Equal(t, int64(1), s.Renewals())
	assert.Equal(t, int64(2), s.Logins())
	_, err = srv.LookupSelf(context.Background(), next.Value())
	assert.NoError(t, err)
}

// When neither renewal nor login works, the still-valid token keeps being
// served; once its lease is over, Token fails with Vault's message, and
// recovers as soon as Vault accepts logins again.
func TestTokenSourceServesValidTokenWhileVaultRefuses(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	role := vault.RoleIAM(env.RoleARN, []string{"app-read"}, map[string]any{"token_ttl": "1h"})
	require.NoError(t, srv.Write(ctx, "role/fragile", role))
	s := newSource(t, "fragile", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	require.NoError(t, srv.Write(ctx, "role/fragile", map[string]any{"bound_iam_principal_arn": "arn:aws:iam::" + env.Account + ":role/someone-else"}))

	clk.Advance(pastRefresh)
	_, err := s.next(t)
	var ve *vaultauth.VaultError
	require.ErrorAs(t, err, &ve)
	assert.Contains(t, err.Error(), `does not belong to the role "fragile"`)
	got, err := s.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok.Value(), got.Value(), "the valid token is still served")

	clk.Advance(15 * time.Minute) // past the end of the lease
	_, err = s.Token(ctx)
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, "login", ve.Op)
	assert.Equal(t, http.StatusBadRequest, ve.StatusCode)
	assert.Contains(t, err.Error(), `does not belong to the role "fragile"`)
	<-s.failed

	require.NoError(t, srv.Write(ctx, "role/fragile", map[string]any{"bound_iam_principal_arn": env.RoleARN}))
	got, err = s.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, tok.Value(), got.Value())
}

// A refresh that failed is retried in the background after a back-off,
// without waiting for a Token call; Stats tells the story.
func TestTokenSourceRetriesFailedRefresh(t *testing.T) {
	needVault(t)
	ctx := context.Background()
	require.NoError(t, srv.Write(ctx, "role/flaky", vault.RoleIAM(env.RoleARN, []string{"app-read"}, map[string]any{"token_ttl": "1h"})))
	s := newSource(t, "flaky", roleConfig(t, 24*time.Hour))
	tok := s.first(t)
	require.NoError(t, srv.Write(ctx, "role/flaky", map[string]any{"bound_iam_principal_arn": "arn:aws:iam::" + env.Account + ":role/someone-else"}))

	clk.Advance(pastRefresh)
	_, err := s.next(t)
	require.Error(t, err)
	got, err := s.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, tok.Value(), got.Value())
	st := s.Stats()
	assert.Equal(t, int64(1), st.Failures)
	assert.Equal(t, int64(1), st.ServedStale)
	assert.Equal(t, "other", st.LastErrorClass)

	require.NoError(t, srv.Write(ctx, "role/flaky", map[string]any{"bound_iam_principal_arn": env.RoleARN}))
	clk.Advance(5 * time.Second) // the retry back-off
	renewed, err := s.next(t)
	require.NoError(t, err)
	assert.Equal(t, tok.Value(), renewed.Value(), "renewed, not replaced")
	assert.Equal(t, int64(2), s.Renewals())
	assert.Equal(t, int64(2), s.Logins(), "the first login and the refused one")
	st = s.Stats()
	assert.Equal(t, int64(3), st.Fetches)
	assert.Equal(t, "", st.LastErrorClass)
	assert.Equal(t, renewed.Expires().Add(-30*time.Second), st.Expires)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// blockedLogins holds every login request until release is closed.
func blockedLogins() (*http.Client, <-chan struct{}, chan struct{}) {
	started := make(chan struct{}, 64)
	release := make(chan struct{})
	return &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if strings.HasSuffix(r.URL.Path, "/login") {
			started <- struct{}{}
			select {
			case <-release:
			case <-r.Context().Done():
				return nil, r.Context().Err()
			}
		}
		return http.DefaultTransport.RoundTrip(r)
	})}, started, release
}

// Callers arriving while a login is in flight share it: one login, one
// STS call, one token.
func TestTokenSourceSingleFlight(t *testing.T) {
	needVault(t)
	hc, started, release := blockedLogins()
	s := newSource(t, "app", roleConfig(t, 24*time.Hour), func(o *vaultauth.Options) { o.HTTPClient = hc })
	stsCalls := env.STS.Calls("GetCallerIdentity")

	const n = 16
	type result struct {
		tok vaultauth.Token
		err error
	}
	results := make(chan result, n)
	call := func() {
		tok, err := s.Token(context.Background())
		results <- result{tok, err}
	}
	go call()
	<-started // the login is in flight and held
	var ready sync.WaitGroup
	ready.Add(n - 1)
	for range n - 1 {
		go func() {
			ready.Done()
			call()
		}()
	}
	ready.Wait()
	close(release)
	var values []string
	for range n {
		r := <-results
		require.NoError(t, r.err)
		values = append(values, r.tok.Value())
	}
	for _, v := range values {
		assert.Equal(t, values[0], v)
	}
	assert.Equal(t, int64(1), s.Logins())
	assert.Equal(t, stsCalls+1, env.STS.Calls("GetCallerIdentity"))
	assert.Empty(t, started, "no second login started")
}

// A caller gives up when its context ends; the login goes on for others.
func TestTokenSourceCallerContext(t *testing.T) {
	needVault(t)
	hc, started, release := blockedLogins()
	s := newSource(t, "app", roleConfig(t, 24*time.Hour), func(o *vaultauth.Options) { o.HTTPClient = hc })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := s.Token(ctx)
		errc <- err
	}()
	<-started
	cancel()
	err := <-errc
	require.ErrorIs(t, err, context.Canceled)
	assert.EqualError(t, err, "vaultauth: waiting for a Vault login: context canceled")
	close(release)
	tok, err := s.next(t)
	require.NoError(t, err)
	got, err := s.Token(context.Background())
	require.NoError(t, err)
	assert.Equal(t, tok.Value(), got.Value())
	assert.Equal(t, int64(1), s.Logins())
}

// Invalidate drops the current token (say Vault answered permission
// denied), and the next Token logs in again; a stale token is ignored.
func TestTokenSourceInvalidate(t *testing.T) {
	needVault(t)
	s := newSource(t, "app", roleConfig(t, 24*time.Hour))
	ctx := context.Background()
	tok := s.first(t)
	require.NoError(t, srv.RevokeSelf(ctx, tok.Value()))
	_, err := srv.LookupSelf(ctx, tok.Value())
	require.Error(t, err)

	s.Invalidate(tok)
	next, err := s.Token(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, tok.Value(), next.Value())
	assert.Equal(t, int64(2), s.Logins())
	assert.Equal(t, int64(0), s.Renewals(), "a dropped token is not renewed")

	s.Invalidate(tok) // no longer current
	again, err := s.Token(ctx)
	require.NoError(t, err)
	assert.Equal(t, next.Value(), again.Value())
	assert.Equal(t, int64(2), s.Logins())
	s.Invalidate(vaultauth.Token{})
}

// After Close, Token fails with ErrClosed and nothing is refreshed.
func TestTokenSourceClose(t *testing.T) {
	needVault(t)
	s := newSource(t, "app", roleConfig(t, 24*time.Hour))
	s.first(t)
	require.NoError(t, s.Close())
	require.NoError(t, s.Close(), "idempotent")
	_, err := s.Token(context.Background())
	assert.ErrorIs(t, err, vaultauth.ErrClosed)
	fetches := s.Stats().Fetches
	clk.Advance(pastRefresh)
	assert.Equal(t, fetches, s.Stats().Fetches, "no refresh after Close")
	assert.Equal(t, int64(0), s.Renewals())
}

// IsPermissionDenied sees a 403 VaultError through wrapping, and nothing
// else.
func TestIsPermissionDenied(t *testing.T) {
	denied := &vaultauth.VaultError{Op: "renew-self", Path: "auth/token/renew-self", StatusCode: http.StatusForbidden, Messages: []string{"permission denied"}}
	refused := &vaultauth.VaultError{Op: "login", Path: "auth/aws/login", StatusCode: http.StatusBadRequest, Messages: []string{"entry for role x not found"}}
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"403", denied, true},
		{"wrapped 403", fmt.Errorf("calling Vault: %w", denied), true},
		{"joined 403", errors.Join(errors.New("other"), denied), true},
		{"400", refused, false},
		{"other error", errors.New("permission denied"), false},
		{"nil", nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, vaultauth.IsPermissionDenied(tc.err))
		})
	}
	assert.Equal(t, "vaultauth: Vault refused renew-self at auth/token/renew-self (HTTP 403 Forbidden): permission denied", denied.Error())
	assert.Equal(t, "vaultauth: Vault refused login at auth/aws/login (HTTP 599)", (&vaultauth.VaultError{Op: "login", Path: "auth/aws/login", StatusCode: 599}).Error())
}
