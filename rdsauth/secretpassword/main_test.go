package secretpassword_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	sm "github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/procs"
	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/secrets"
)

// One IRSA environment, one Secrets Manager stand-in and one real
// PostgreSQL that checks passwords (SCRAM) on TCP serve every test.
var (
	env *awstest.Env
	srv *standin.Server
	pg  *procs.Postgres
)

// rotatorRole is what a rotation function runs as: it may stage and
// promote versions of the database secrets.
const rotatorRole = "arn:aws:iam::111122223333:role/rotator"

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "secretpassword tests:", err)
		return 1
	}
	var err error
	if env, err = awstest.New(func(o *awstest.Options) { o.Region = "eu-west-1" }); err != nil {
		return fail(err)
	}
	defer env.Close()
	policy, err := secrets.Policy(env.Region, env.Account, []string{"rds/*"})
	if err != nil {
		return fail(err)
	}
	if err := env.AttachPolicy([]byte(policy)); err != nil {
		return fail(err)
	}
	rotate := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":["secretsmanager:GetSecretValue","secretsmanager:DescribeSecret",` +
		`"secretsmanager:PutSecretValue","secretsmanager:UpdateSecretVersionStage"],"Resource":"arn:aws:secretsmanager:` + env.Region + `:` + env.Account + `:secret:rds/*"}]}`
	trust := `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"lambda.amazonaws.com"},"Action":"sts:AssumeRole"}]}`
	if err := env.IAM.PutRole(rotatorRole, []byte(trust), []byte(rotate)); err != nil {
		return fail(err)
	}
	srv = standin.New(env.Registry, env.IAM, func(o *standin.Options) { o.Region = env.Region })
	if _, err := srv.Start(); err != nil {
		return fail(err)
	}
	defer srv.Close()
	if pg, err = procs.StartPostgres(ctx); err != nil {
		return fail(err)
	}
	defer pg.Close()
	// The server trusts its socket (the superuser's setup path) and checks
	// passwords on TCP, where the pools connect.
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	if err := os.WriteFile(filepath.Join(pg.Dir, "data", "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return fail(err)
	}
	if err := pg.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		return fail(err)
	}
	return m.Run()
}

// appConfig is the pod's configuration: web identity through the STS
// stand-in, Secrets Manager at the stand-in, no SDK retries.
func appConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := env.Config(context.Background())
	require.NoError(t, err)
	cfg.BaseEndpoint = aws.String(srv.URL())
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}

// rotator is a Secrets Manager client signing as the rotation role.
func rotator(t testing.TB) *sm.Client {
	t.Helper()
	c, err := env.Registry.IssueSession(rotatorRole, "rotation", time.Hour)
	require.NoError(t, err)
	return sm.NewFromConfig(aws.Config{
		Region:       env.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	})
}

func newCache(t testing.TB, optFns ...func(*secrets.Options)) *secrets.Cache {
	t.Helper()
	c, err := secrets.New(appConfig(t), optFns...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

var seq atomic.Int64

// newRole creates a login role with its own database and password, and
// the database secret describing it; it returns the role and secret names.
func newRole(t *testing.T, password string) (role, secretName string) {
	t.Helper()
	ctx := context.Background()
	role = "rot" + strconv.FormatInt(seq.Add(1), 10)
	require.NoError(t, pg.CreateRole(ctx, role))
	setPassword(t, role, password)
	secretName = "rds/" + role
	_, _, err := srv.CreateString(secretName, secretFor(role, password))
	require.NoError(t, err)
	return role, secretName
}

func setPassword(t *testing.T, role, password string) {
	t.Helper()
	require.NoError(t, pg.Exec(context.Background(), fmt.Sprintf("ALTER ROLE %s PASSWORD '%s'", role, password)))
}

func secretFor(role, password string) string {
	return fmt.Sprintf(`{"engine":"postgres","host":"127.0.0.1","port":%d,"dbname":%q,"username":%q,"password":%q}`, pg.Port, role, role, password)
}

type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
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
