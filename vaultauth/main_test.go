package vaultauth_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awssts "github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/vault"
	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/vaultauth"
)

// serverID is the iam_server_id_header_value of the Vault servers.
const serverID = "vault.irsakit.test"

// nsMount and namespace place the second server's mount like a mount
// inside a Vault Enterprise namespace, enabled at a custom path.
const (
	nsMount   = "k8s/aws"
	namespace = "platform"
)

// Shared by every test of the package: the AWS stand-ins and two servers of
// Vault's real aws auth method whose sts_endpoint is the STS stand-in, all
// judging time by one fake clock that starts at the real time. Vault's
// token leases run on the real clock; the tests move the fake one to drive
// TokenSource's refreshes.
var (
	clk      *clock.Fake
	env      *awstest.Env
	srv      *vault.Server // mount "aws", root namespace
	nsSrv    *vault.Server // mount nsMount in namespace
	vaultErr error         // why the servers are unavailable, if they are
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "vaultauth tests:", err)
		return 1
	}
	clk = clock.NewFake(time.Now())
	for _, a := range os.Args[1:] {
		// Fuzzing workers run only the fuzz targets, which need no servers.
		if strings.HasPrefix(a, "-test.fuzzworker") {
			vaultErr = errors.New("vaultauth tests: no servers in a fuzzing worker")
			return m.Run()
		}
	}
	var err error
	env, err = awstest.New(func(o *awstest.Options) { o.Clock = clk })
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	start := func(mount, ns string) (*vault.Server, error) {
		return vault.Start(ctx, func(o *vault.Options) {
			o.Mount = mount
			o.Namespace = ns
			o.STSEndpoint = env.STS.URL()
			o.STSRegion = env.Region
			o.ServerID = serverID
		})
	}
	if srv, vaultErr = start("aws", ""); vaultErr == nil {
		defer srv.Close()
		if nsSrv, vaultErr = start(nsMount, namespace); vaultErr == nil {
			defer nsSrv.Close()
		}
	}
	if vaultErr != nil {
		if vault.Required() {
			return fail(fmt.Errorf("CI or %s is set: %w", vault.EnvRequire, vaultErr))
		}
		fmt.Fprintln(os.Stderr, "vaultauth tests: Vault tests skip:", vaultErr)
		return m.Run()
	}
	roles := map[*vault.Server]map[string]map[string]any{
		srv: {
			"app":   vault.RoleIAM(env.RoleARN, []string{"app-read"}, map[string]any{"token_ttl": "1h", "token_max_ttl": "4h"}),
			"other": vault.RoleIAM("arn:aws:iam::"+env.Account+":role/another-service", []string{"other"}, nil),
			"batch": vault.RoleIAM(env.RoleARN, []string{"app-read"}, map[string]any{"token_type": "batch", "token_ttl": "20m"}),
			// The role named like the IAM role, for logins without a role.
			"mcp-server-role": vault.RoleIAM(env.RoleARN, []string{"by-name"}, nil),
		},
		nsSrv: {
			"app": vault.RoleIAM(env.RoleARN, []string{"team"}, nil),
		},
	}
	for s, rs := range roles {
		for name, data := range rs {
			if err := s.Write(ctx, "role/"+name, data); err != nil {
				return fail(err)
			}
		}
	}
	return m.Run()
}

// needVault skips (or, in CI, fails) a test that needs the Vault servers.
func needVault(t testing.TB) { t.Helper(); vault.Need(t, vaultErr) }

// opts are the options every test uses: the fake clock (the STS stand-in
// judges signatures by it) and the servers' server id.
func opts(extra ...func(*vaultauth.Options)) []func(*vaultauth.Options) {
	return append([]func(*vaultauth.Options){
		vaultauth.WithClock(clk),
		func(o *vaultauth.Options) { o.ServerID = serverID },
	}, extra...)
}

// irsaConfig is the pod's aws.Config: web-identity credentials from the STS
// stand-in for a freshly projected token, STS clients pointed at the
// stand-in.
func irsaConfig(t testing.TB) aws.Config {
	t.Helper()
	require.NoError(t, env.RotateToken())
	cfg, err := env.Config(context.Background())
	require.NoError(t, err)
	return cfg
}

// roleConfig is an aws.Config with role credentials valid for ttl (by the
// fake clock) straight from the registry, for tests that move the clock
// further than web-identity credentials live.
func roleConfig(t testing.TB, ttl time.Duration) aws.Config {
	t.Helper()
	creds, err := env.SessionCredentials(ttl)
	require.NoError(t, err)
	return withSTS(aws.Config{Region: env.Region, Credentials: creds})
}

// withSTS points STS clients built from cfg at the stand-in, as
// AWS_ENDPOINT_URL_STS would.
func withSTS(cfg aws.Config) aws.Config {
	u := env.STS.URL()
	cfg.ServiceOptions = append(cfg.ServiceOptions, func(id string, o any) {
		if so, ok := o.(*awssts.Options); ok && id == awssts.ServiceID {
			so.BaseEndpoint = aws.String(u)
		}
	})
	return cfg
}
