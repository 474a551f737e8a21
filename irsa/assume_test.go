package irsa_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/pgfront"
	"github.com/irsakit/irsakit/internal/awstest/sts"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

const (
	ledgerAccount = "444455556666"
	ledgerRole    = "arn:aws:iam::" + ledgerAccount + ":role/ledger-reader"
	ledgerID      = "ledger-7f3a"
)

// ledger is a second AWS account holding a role the pod's role may assume
// (trust policy written by irsa.RoleTrustPolicy) and an Aurora instance
// that admits that role's tokens for user "app".
type ledger struct {
	iam    *iam.IAM
	front  *pgfront.Front
	caFile string
}

func newLedger(t *testing.T, env *awstest.Env, trustFns ...func(*irsa.RoleTrustPolicyOptions)) *ledger {
	t.Helper()
	im2, err := env.AddAccount(ledgerAccount)
	require.NoError(t, err)
	front, err := pgfront.Start(pgfront.Config{Backend: postgres(t).SocketPath(), Registry: env.Registry, IAM: im2, Region: env.Region})
	require.NoError(t, err)
	t.Cleanup(func() { front.Close() })
	require.Equal(t, ledgerAccount, front.Account())
	trust, err := irsa.RoleTrustPolicy(env.RoleARN, trustFns...)
	require.NoError(t, err)
	connect, err := rdsauth.Policy(front.Region(), front.Account(), front.ResourceID(), []string{"app"})
	require.NoError(t, err)
	require.NoError(t, im2.PutRole(ledgerRole, trust, connect), "the stand-in IAM refuses the generated trust policy:\n%s", trust)
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, front.CAPEM(), 0o600))
	return &ledger{iam: im2, front: front, caFile: caFile}
}

// allowAssume gives the pod's role the identity policy it needs to assume
// the ledger role with the given extra actions.
func allowAssume(t *testing.T, env *awstest.Env, actions ...string) {
	t.Helper()
	list := `"sts:AssumeRole"`
	for _, a := range actions {
		list += `,"` + a + `"`
	}
	require.NoError(t, env.AttachPolicy([]byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":[`+list+`],"Resource":"`+ledgerRole+`"}]}`)))
}

// connect opens a pool on the ledger's database with cfg's credentials and
// checks the session user.
func (l *ledger) connect(ctx context.Context, cfg aws.Config) error {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s", l.front.Port(), l.caFile)
	pool, err := rdsauth.NewPool(ctx, dsn, cfg)
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

// The IRSA role of the pod assumes a role of a second account; the
// database of that account accepts the RDS token signed with the chained
// credentials, and refuses one signed with the pod's own. One AssumeRole
// call serves every retrieval.
func TestAssumeRoleCrossAccountRDS(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")
	l := newLedger(t, env, func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = ledgerID })
	allowAssume(t, env)

	base, logs := load(t, func(o *irsa.Options) { o.RoleSessionName = "orders-7d9f" })
	chained, err := base.AssumeRole(ledgerRole, func(o *irsa.AssumeRoleOptions) { o.ExternalID = ledgerID })
	require.NoError(t, err)
	assert.Equal(t, irsa.AssumedRole, chained.Mode())
	assert.Equal(t, "assumed-role", chained.Mode().String())
	assert.Equal(t, ledgerRole, chained.RoleARN())
	assert.Equal(t, env.Region, chained.Region())
	assert.Same(t, base, chained.Base())
	assert.Nil(t, base.Base())
	assert.Equal(t, []aws.CredentialSource{aws.CredentialSourceEnvVarsSTSWebIDToken, aws.CredentialSourceSTSAssumeRole}, chained.CredentialSources())
	assert.Zero(t, env.STS.Calls(sts.ActionAssumeRole), "AssumeRole called STS")
	assert.Contains(t, logs.String(), `"msg":"Using an assumed role for AWS services"`)
	assert.Contains(t, logs.String(), `"role_arn":"`+ledgerRole+`"`)
	assert.Contains(t, logs.String(), `"base_role_arn":"`+env.RoleARN+`"`)

	// Many clients at once: one AssumeRole, one AssumeRoleWithWebIdentity.
	var wg sync.WaitGroup
	errs := make(chan error, 100)
	for range 100 {
		wg.Go(func() {
			if _, err := chained.Config().Credentials.Retrieve(ctx); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.EqualValues(t, 1, env.STS.Calls(sts.ActionAssumeRole))
	assert.EqualValues(t, 1, env.STS.Calls(assumeOp))

	id, err := chained.Identity(ctx)
	require.NoError(t, err)
	assert.Equal(t, ledgerAccount, id.Account)
	assert.Equal(t, "arn:aws:sts::"+ledgerAccount+":assumed-role/ledger-reader/orders-7d9f", id.Arn, "the session name is the base's")
	for _, c := range env.STS.CallLog() {
		if c.Action == sts.ActionAssumeRole {
			assert.Equal(t, ledgerID, c.ExternalID)
			assert.Equal(t, 3600, c.DurationSeconds, "the default is the one-hour limit of role chaining")
			assert.True(t, strings.HasPrefix(c.Caller, "arn:aws:sts::"+env.Account+":assumed-role/mcp-server-role/"), "caller %s", c.Caller)
		}
	}

	accepted := l.front.Accepted()
	require.NoError(t, l.connect(ctx, chained.Config()), "the ledger database refused the chained credentials")
	assert.Greater(t, l.front.Accepted(), accepted)
	rejected := l.front.Rejected()
	assert.Error(t, l.connect(ctx, base.Config()), "the ledger database accepted the pod's own role")
	assert.Greater(t, l.front.Rejected(), rejected)

	st := chained.Stats()
	assert.EqualValues(t, 1, st.Fetches)
	assert.Zero(t, st.Failures)
	assert.False(t, st.LastRefresh.IsZero())
	assert.Empty(t, st.LastErrorClass)
	assert.WithinDuration(t, time.Now().Add(time.Hour), st.Expires, 2*time.Minute)

	creds, err := chained.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	for _, secret := range []string{creds.SecretAccessKey, creds.SessionToken} {
		assert.NotContains(t, logs.String(), secret, "a secret reached the log")
	}
}

// Session tags, transitive keys, a source identity and the session name
// reach STS; the trust policy irsa.RoleTrustPolicy writes admits exactly
// them.
func TestAssumeRoleSessionTagsAndSourceIdentity(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	newLedger(t, env, func(o *irsa.RoleTrustPolicyOptions) {
		o.ExternalID = ledgerID
		o.SessionTags = map[string]string{"team": "payments", "env": "prod"}
		o.SourceIdentity = "svc-*"
	})
	allowAssume(t, env, "sts:TagSession", "sts:SetSourceIdentity")
	base, _ := load(t)
	opts := func(o *irsa.AssumeRoleOptions) {
		o.ExternalID = ledgerID
		o.RoleSessionName = "orders-tagged"
		o.Duration = 30 * time.Minute
		o.SourceIdentity = "svc-orders"
		o.Tags = map[string]string{"team": "payments", "env": "prod"}
		o.TransitiveTagKeys = []string{"team"}
	}
	chained, err := base.AssumeRole(ledgerRole, opts)
	require.NoError(t, err)
	c, err := chained.Credentials().Retrieve(ctx)
	require.NoError(t, err)
	assert.Equal(t, ledgerAccount, c.AccountID)
	var call sts.Call
	for _, c := range env.STS.CallLog() {
		if c.Action == sts.ActionAssumeRole {
			call = c
		}
	}
	assert.Equal(t, "orders-tagged", call.RoleSessionName)
	assert.Equal(t, 1800, call.DurationSeconds)
	assert.Equal(t, "svc-orders", call.SourceIdentity)
	assert.Equal(t, map[string]string{"team": "payments", "env": "prod"}, call.Tags)
	assert.Equal(t, []string{"team"}, call.TransitiveTagKeys)

	// A tag the trust policy does not name is refused, and the error says
	// what the policies must allow.
	other, err := base.AssumeRole(ledgerRole, opts, func(o *irsa.AssumeRoleOptions) { o.Tags = map[string]string{"team": "ads"}; o.TransitiveTagKeys = nil })
	require.NoError(t, err)
	_, err = other.Credentials().Retrieve(ctx)
	require.ErrorIs(t, err, irsa.ErrAssumeRoleDenied)
	assert.Contains(t, err.Error(), "sts:TagSession")
}

// Each STS refusal comes back as an irsa error naming the cause and the
// fix; the one-hour limit of role chaining is refused before any call.
func TestAssumeRoleRefusalsExplained(t *testing.T) {
	ctx := context.Background()
	oneAttempt := func(o *irsa.Options) {
		o.ConfigOptions = append(o.ConfigOptions, config.WithRetryMaxAttempts(1))
	}
	cases := []struct {
		name   string
		setup  func(t *testing.T, env *awstest.Env)
		opts   func(*irsa.AssumeRoleOptions)
		reason error
		says   []string
	}{
		{"no external id", func(t *testing.T, env *awstest.Env) { allowAssume(t, env) },
			func(o *irsa.AssumeRoleOptions) {}, irsa.ErrAssumeRoleDenied,
			[]string{"AccessDenied", "trust policy of " + ledgerRole, "AssumeRoleOptions.ExternalID", "irsa.RoleTrustPolicy"}},
		{"wrong external id", func(t *testing.T, env *awstest.Env) { allowAssume(t, env) },
			func(o *irsa.AssumeRoleOptions) { o.ExternalID = "ledger-0000" }, irsa.ErrAssumeRoleDenied,
			[]string{"with the sts:ExternalId this session sends"}},
		{"no identity policy", func(t *testing.T, env *awstest.Env) {},
			func(o *irsa.AssumeRoleOptions) { o.ExternalID = ledgerID }, irsa.ErrAssumeRoleDenied,
			[]string{"identity policy of " + "arn:aws:iam::111122223333:role/mcp-server-role", "must allow sts:AssumeRole on " + ledgerRole}},
		{"base role refused by STS", func(t *testing.T, env *awstest.Env) {
			allowAssume(t, env)
			write(t, env, oidc.ServiceAccountSubject("mcp", "intruder"))
		}, func(o *irsa.AssumeRoleOptions) { o.ExternalID = ledgerID }, irsa.ErrBaseCredentials,
			[]string{"base session (web-identity)", "trust policy"}},
		{"sts down from the start", func(t *testing.T, env *awstest.Env) { allowAssume(t, env); env.STS.SetDown(true) },
			func(o *irsa.AssumeRoleOptions) { o.ExternalID = ledgerID }, irsa.ErrBaseCredentials, []string{"STS unavailable"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := awstest.Start(t)
			env.Setenv(t)
			newLedger(t, env, func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = ledgerID })
			c.setup(t, env)
			base, _ := load(t, oneAttempt)
			chained, err := base.AssumeRole(ledgerRole, c.opts)
			require.NoError(t, err)
			_, err = chained.Identity(ctx)
			require.ErrorIs(t, err, c.reason)
			var ce *irsa.CredentialError
			require.ErrorAs(t, err, &ce)
			for _, s := range c.says {
				assert.Contains(t, err.Error(), s)
			}
		})
	}
	t.Run("sts down after the base got credentials", func(t *testing.T) {
		env := awstest.Start(t)
		env.Setenv(t)
		newLedger(t, env, func(o *irsa.RoleTrustPolicyOptions) { o.ExternalID = ledgerID })
		allowAssume(t, env)
		base, _ := load(t, oneAttempt)
		_, err := base.Credentials().Retrieve(ctx)
		require.NoError(t, err)
		env.STS.SetDown(true)
		chained, err := base.AssumeRole(ledgerRole, func(o *irsa.AssumeRoleOptions) { o.ExternalID = ledgerID })
		require.NoError(t, err)
		_, err = chained.Credentials().Retrieve(ctx)
		require.ErrorIs(t, err, irsa.ErrSTSUnavailable)
		assert.NotErrorIs(t, err, irsa.ErrBaseCredentials)
		assert.Contains(t, err.Error(), "cannot reach STS")
	})
	t.Run("base role refused: the base's reason stays reachable", func(t *testing.T) {
		env := awstest.Start(t)
		env.Setenv(t)
		newLedger(t, env)
		write(t, env, oidc.ServiceAccountSubject("mcp", "intruder"))
		base, _ := load(t, oneAttempt)
		chained, err := base.AssumeRole(ledgerRole)
		require.NoError(t, err)
		_, err = chained.Credentials().Retrieve(ctx)
		assert.ErrorIs(t, err, irsa.ErrBaseCredentials)
		assert.ErrorIs(t, err, irsa.ErrTrustPolicy)
	})
}

// AWS's one-hour limit on role chaining: refused up front for a base whose
// credentials are a role's; for environment keys (which may be a user's)
// STS decides, and its answer is explained the same way.
func TestAssumeRoleChainLimit(t *testing.T) {
	ctx := context.Background()
	env := awstest.Start(t)
	env.Setenv(t)
	newLedger(t, env)
	allowAssume(t, env)
	base, _ := load(t)
	_, err := base.AssumeRole(ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Duration = 2 * time.Hour })
	require.ErrorIs(t, err, irsa.ErrRoleChainLimit)
	assert.Contains(t, err.Error(), "AssumeRoleOptions.Duration is 2h0m0s")
	assert.Contains(t, err.Error(), "1 hour")
	assert.Zero(t, env.STS.Calls(sts.ActionAssumeRole))

	// Role credentials in the environment keys: irsa cannot know they are a
	// role's; STS refuses and the error names the limit.
	roleCreds, err := env.Registry.IssueSession(env.RoleARN, "keys", time.Hour)
	require.NoError(t, err)
	t.Setenv("AWS_ROLE_ARN", "")
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "")
	t.Setenv("AWS_ACCESS_KEY_ID", roleCreds.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", roleCreds.SecretAccessKey)
	t.Setenv("AWS_SESSION_TOKEN", roleCreds.SessionToken)
	keys, _ := load(t)
	require.Equal(t, irsa.EnvKeys, keys.Mode())
	chained, err := keys.AssumeRole(ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Duration = 2 * time.Hour })
	require.NoError(t, err)
	_, err = chained.Credentials().Retrieve(ctx)
	require.ErrorIs(t, err, irsa.ErrRoleChainLimit)
	assert.Contains(t, err.Error(), "ValidationError")
	assert.Contains(t, err.Error(), "AssumeRoleOptions.Duration to 1h or less")
}

// Bad input to AssumeRole is refused before any AWS call, naming the
// option and the fix; a role ARN of any partition is accepted.
func TestAssumeRoleInputErrors(t *testing.T) {
	env := awstest.Start(t)
	env.Setenv(t)
	base, _ := load(t)
	for _, arn := range []string{"arn:aws-cn:iam::111122223333:role/x", "arn:aws-us-gov:iam::111122223333:role/path/x", "arn:aws-iso-b:iam::111122223333:role/x"} {
		_, err := base.AssumeRole(arn)
		assert.NoError(t, err, arn)
	}
	cases := []struct {
		name string
		arn  string
		opts func(*irsa.AssumeRoleOptions)
		says string
	}{
		{"not an ARN", "ledger-reader", nil, "not an ARN"},
		{"a user", "arn:aws:iam::444455556666:user/ledger", nil, "not an IAM role ARN"},
		{"unknown partition", "arn:aws-mars:iam::444455556666:role/x", nil, "unknown partition"},
		{"short duration", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Duration = 10 * time.Minute }, "between 15m and 1h"},
		{"external id charset", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.ExternalID = "not allowed!" }, "AssumeRoleOptions.ExternalID"},
		{"source identity aws:", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.SourceIdentity = "aws:me" }, "AssumeRoleOptions.SourceIdentity"},
		{"tag key aws:", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Tags = map[string]string{"aws:team": "x"} }, `tag key "aws:team"`},
		{"tag value charset", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Tags = map[string]string{"team": "a&b"} }, `the value of tag "team"`},
		{"tag keys differing in case", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.Tags = map[string]string{"team": "a", "Team": "b"} }, "differ only in case"},
		{"transitive key not a tag", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.TransitiveTagKeys = []string{"team"} }, `transitive tag key "team"`},
		{"session name", ledgerRole, func(o *irsa.AssumeRoleOptions) { o.RoleSessionName = "bad name!" }, "AssumeRoleOptions.RoleSessionName"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fns []func(*irsa.AssumeRoleOptions)
			if c.opts != nil {
				fns = append(fns, c.opts)
			}
			_, err := base.AssumeRole(c.arn, fns...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.says)
			assert.True(t, strings.HasPrefix(err.Error(), "irsa: "), "error %q lacks the package prefix", err)
		})
	}
	assert.Zero(t, env.STS.Calls(sts.ActionAssumeRole)+env.STS.Calls(assumeOp), "input errors called STS")
}
