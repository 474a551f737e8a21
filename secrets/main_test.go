package secrets_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/irsakit/irsakit/internal/awstest"
	standin "github.com/irsakit/irsakit/internal/awstest/secretsmanager"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/secrets"
)

// One IRSA environment (OIDC issuer, STS, IAM, registry) and one Secrets
// Manager stand-in serve every test and benchmark of the package.
var (
	env *awstest.Env
	srv *standin.Server
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	var err error
	env, err = awstest.New(func(o *awstest.Options) { o.Region = "eu-west-1" })
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer env.Close()
	policy, err := secrets.Policy(env.Region, env.Account, []string{"app/*", "rds/*", "bin/*"})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := env.AttachPolicy([]byte(policy)); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv = standin.New(env.Registry, env.IAM, func(o *standin.Options) { o.Region = env.Region })
	if _, err := srv.Start(); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer srv.Close()
	return m.Run()
}

// awsConfig is the role's configuration, credentials from the STS stand-in
// through the SDK's web-identity provider, Secrets Manager at the stand-in,
// and no SDK retries (so fault tests do not sleep through back-offs).
func awsConfig(t testing.TB) aws.Config {
	t.Helper()
	cfg, err := env.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	cfg.BaseEndpoint = aws.String(srv.URL())
	cfg.Retryer = func() aws.Retryer { return aws.NopRetryer{} }
	return cfg
}

// configFor signs as another role's session, issued straight from the
// registry.
func configFor(t testing.TB, roleARN string) aws.Config {
	t.Helper()
	c, err := env.Registry.IssueSession(roleARN, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return aws.Config{
		Region:       env.Region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		BaseEndpoint: aws.String(srv.URL()),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
}

func newCache(t testing.TB, optFns ...func(*secrets.Options)) *secrets.Cache {
	t.Helper()
	c, err := secrets.New(awsConfig(t), optFns...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func fakeClock() *clock.Fake { return clock.NewFake(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)) }

// secretName returns a name unique to the test under prefix (which the
// role's policy grants).
func secretName(t testing.TB, prefix string) string {
	return prefix + strings.NewReplacer("/", "_", " ", "_", "#", "_").Replace(t.Name()) + "." + strconv.FormatInt(nameSeq.Add(1), 10)
}

var nameSeq atomic.Int64

func create(t testing.TB, name, value string) (arn, version string) {
	t.Helper()
	arn, version, err := srv.CreateString(name, value)
	if err != nil {
		t.Fatal(err)
	}
	return arn, version
}

func rotate(t testing.TB, name, value string) string {
	t.Helper()
	v, err := srv.Rotate(name, value)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// errRecorder collects errors passed to Options.OnError.
type errRecorder struct {
	mu   sync.Mutex
	errs []error
}

func (r *errRecorder) add(err error) {
	r.mu.Lock()
	r.errs = append(r.errs, err)
	r.mu.Unlock()
}

func (r *errRecorder) all() []error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]error(nil), r.errs...)
}
