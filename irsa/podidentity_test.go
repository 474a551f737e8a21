package irsa_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

// podIdentityPod is a pod with EKS Pod Identity: the stand-ins on a fake
// clock that starts at the real time, and the Pod Identity variables set.
func podIdentityPod(t *testing.T, ttl time.Duration) (*awstest.Env, *clock.Fake) {
	t.Helper()
	clk := clock.NewFake(time.Now())
	env := awstest.Start(t, func(o *awstest.Options) { o.Clock = clk; o.CredentialTTL = ttl })
	env.SetenvPodIdentity(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	return env, clk
}

func loadPodIdentity(t *testing.T, clk clock.Clock) (*irsa.Session, fmt.Stringer) {
	t.Helper()
	l, logs := logger()
	sess, err := irsa.Load(context.Background(), func(o *irsa.Options) {
		o.Logger = l
		// One attempt per refresh keeps each failed refresh short.
		o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(1))
	}, irsa.WithClock(clk))
	require.NoError(t, err)
	return sess, logs
}

// Load with EKS Pod Identity: its own log line, an RDS token the front
// accepts, and, with the endpoint down during a refresh, the cached
// credentials until they expire, then ErrCredentialsExpired naming the
// source and the fix.
func TestPodIdentityEndToEnd(t *testing.T) {
	ctx := context.Background()
	env, clk := podIdentityPod(t, 10*time.Minute)
	pg := postgres(t)
	front, err := pgfront.Start(pgfront.Config{Backend: pg.SocketPath(), Registry: env.Registry, IAM: env.IAM, Region: env.Region})
	require.NoError(t, err)
	t.Cleanup(func() { front.Close() })
	policy, err := rdsauth.Policy(front.Region(), front.Account(), front.ResourceID(), []string{"app"})
	require.NoError(t, err)
	require.NoError(t, env.AttachPolicy(policy))
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, front.CAPEM(), 0o600))

	sess, logs := loadPodIdentity(t, clk)
	assert.Equal(t, irsa.PodIdentity, sess.Mode())
	assert.Equal(t, []aws.CredentialSource{aws.CredentialSourceHTTP}, sess.CredentialSources())
	assert.Contains(t, logs.String(), `"msg":"Using EKS Pod Identity for AWS services"`)
	assert.Contains(t, logs.String(), `"service_account":"mcp/mcp-server"`)
	assert.Contains(t, logs.String(), `"endpoint":"`+env.PodIdentity.URL()+`"`)
	assert.NotContains(t, logs.String(), "Using IRSA authentication")
	assert.EqualValues(t, 0, env.PodIdentity.Calls(), "Load fetched credentials")

	connect := func() error {
		dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", front.Port(), caFile)
		pool, err := rdsauth.NewPool(ctx, dsn, sess.Config(), func(o *rdsauth.Options) { o.Clock = clk })
		if err != nil {
			return err
		}
		defer pool.Close()
		var user string
		if err := pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
			return err
		}
		if user != "app" {
			return fmt.Errorf("connected as %q", user)
		}
		return nil
	}
	accepted := front.Accepted()
	require.NoError(t, connect())
	assert.Greater(t, front.Accepted(), accepted, "the front accepted no IAM login")
	assert.EqualValues(t, 1, env.PodIdentity.Calls())
	assert.EqualValues(t, 0, env.STS.Calls(assumeOp), "Pod Identity went through STS")

	first, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	issued, ok := env.Registry.Lookup(first.AccessKeyID)
	require.True(t, ok)
	assert.Equal(t, env.RoleARN, issued.RoleARN)
	cache, ok := sess.Credentials().(*aws.CredentialsCache)
	require.True(t, ok, "credentials are %T", sess.Credentials())

	// The endpoint goes down. Seven minutes on, the cache's refresh window
	// (5 minutes before expiry) has begun; the cache reads the wall clock,
	// so Invalidate stands for its window ending.
	env.PodIdentity.SetDown(true)
	clk.Advance(7 * time.Minute)
	cache.Invalidate()
	during, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err, "cached credentials must be served while they are valid")
	assert.Equal(t, first.AccessKeyID, during.AccessKeyID)
	assert.Contains(t, logs.String(), "serving cached credentials until they expire")
	require.NoError(t, connect(), "a new connection with the cached credentials")

	// Past their expiry: a clear error, naming the source and the fix.
	clk.Set(issued.Expires.Add(time.Second))
	cache.Invalidate()
	_, err = sess.Credentials().Retrieve(ctx)
	require.Error(t, err)
	assert.True(t, errors.Is(err, irsa.ErrCredentialsExpired), "got %v", err)
	var ce *irsa.CredentialError
	require.True(t, errors.As(err, &ce), "got %T", err)
	assert.Equal(t, irsa.PodIdentity, ce.Mode)
	assert.Contains(t, err.Error(), env.PodIdentity.URL())
	assert.Contains(t, err.Error(), "eks-pod-identity-agent")
	assert.Contains(t, err.Error(), "pod-identity credentials")

	// Back up: fresh credentials.
	env.PodIdentity.SetDown(false)
	require.NoError(t, env.RotatePodIdentityToken())
	cache.Invalidate()
	next, err := sess.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.NotEqual(t, first.AccessKeyID, next.AccessKeyID)
}

// The Pod Identity token file is checked by Load like the IRSA one.
func TestPodIdentityTokenFileProblems(t *testing.T) {
	cases := []struct {
		name  string
		setup func(t *testing.T, env *awstest.Env)
		want  error
		says  string
	}{
		{"missing", func(t *testing.T, env *awstest.Env) { require.NoError(t, os.Remove(env.PodIdentityTokenFile)) }, irsa.ErrTokenMissing, "pod identity association"},
		{"expired", func(t *testing.T, env *awstest.Env) {
			_, err := env.Issuer.WriteTokenFile(env.PodIdentityTokenFile, env.Subject, oidc.WithAudience(irsa.PodIdentityAudience), oidc.Expired())
			require.NoError(t, err)
		}, irsa.ErrTokenExpired, "expired at"},
		{"IRSA token instead", func(t *testing.T, env *awstest.Env) {
			_, err := env.Issuer.WriteTokenFile(env.PodIdentityTokenFile, env.Subject)
			require.NoError(t, err)
		}, irsa.ErrTokenAudience, irsa.PodIdentityAudience},
		{"not a jwt", func(t *testing.T, env *awstest.Env) {
			require.NoError(t, os.WriteFile(env.PodIdentityTokenFile, []byte("garbage"), 0o600))
		}, irsa.ErrTokenMalformed, "eks-pod-identity-token"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env, clk := podIdentityPod(t, time.Hour)
			c.setup(t, env)
			_, err := irsa.Load(context.Background(), func(o *irsa.Options) { o.Logger = slog.New(slog.DiscardHandler) }, irsa.WithClock(clk))
			require.Error(t, err)
			assert.True(t, errors.Is(err, c.want), "got %v", err)
			var tfe *irsa.TokenFileError
			require.True(t, errors.As(err, &tfe))
			assert.Equal(t, irsa.PodIdentity, tfe.Mode)
			assert.Contains(t, err.Error(), env.PodIdentityTokenFile)
			assert.Contains(t, err.Error(), "EKS Pod Identity token file")
			assert.Contains(t, err.Error(), c.says)
			assert.EqualValues(t, 0, env.PodIdentity.Calls())
		})
	}
}

// Refusals of the endpoint come back explained.
func TestPodIdentityRefusalsExplained(t *testing.T) {
	t.Run("no association", func(t *testing.T) {
		env, clk := podIdentityPod(t, time.Hour)
		env.PodIdentity.Disassociate("mcp", "mcp-server")
		sess, _ := loadPodIdentity(t, clk)
		_, err := sess.Credentials().Retrieve(context.Background())
		assert.True(t, errors.Is(err, irsa.ErrCredentialsRefused), "got %v", err)
		assert.Contains(t, err.Error(), "create-pod-identity-association")
		assert.Contains(t, err.Error(), "--namespace mcp --service-account mcp-server")
	})
	t.Run("endpoint down at start", func(t *testing.T) {
		env, clk := podIdentityPod(t, time.Hour)
		env.PodIdentity.SetDown(true)
		sess, _ := loadPodIdentity(t, clk)
		_, err := sess.Credentials().Retrieve(context.Background())
		assert.True(t, errors.Is(err, irsa.ErrCredentialsEndpoint), "got %v", err)
		assert.Contains(t, err.Error(), "eks-pod-identity-agent")
	})
}
