package elasticacheauth_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"

	"github.com/irsakit/irsakit/internal/awstest"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
)

const (
	userID   = "app-user"
	pwUser   = "pw-user"
	pwSecret = "correct-horse-battery-staple"
	// cutLife is the "12 hours" of the front used by the re-auth tests.
	cutLife = 2 * time.Second
)

// Shared by every test of the package: one IRSA environment (OIDC issuer,
// STS, IAM, registry) and real redis-servers behind verifying fronts.
var (
	env        *awstest.Env
	cfg        aws.Config // web-identity credentials through the STS stand-in
	standalone *redisfront.Server
	cutFront   *redisfront.Front // same redis-server as standalone, life cutLife
	cluster    *redisfront.Cluster
	serverless *redisfront.Cluster
)

type quietLogger struct{}

func (quietLogger) Printf(context.Context, string, ...interface{}) {}

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	redis.SetLogger(quietLogger{})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fail := func(err error) int {
		fmt.Fprintln(os.Stderr, "elasticacheauth tests:", err)
		return 1
	}
	var err error
	env, err = awstest.New(func(o *awstest.Options) {
		o.RolePolicies = [][]byte{connectPolicy("us-east-1", "orders", "orders-cluster", "sessions")}
	})
	if err != nil {
		return fail(err)
	}
	defer env.Close()
	if cfg, err = env.Config(ctx); err != nil {
		return fail(err)
	}
	base := redisfront.Options{
		Registry: env.Registry, IAM: env.IAM, Region: env.Region,
		Users: []string{userID}, PasswordUsers: map[string]string{pwUser: pwSecret},
	}
	o := base
	o.CacheName = "orders"
	if standalone, err = redisfront.StartServer(ctx, o); err != nil {
		return fail(err)
	}
	defer standalone.Close()
	o.ConnLife = cutLife
	o.CA = standalone.CA()
	if cutFront, err = redisfront.Start(standalone.Redis.Addr, o); err != nil {
		return fail(err)
	}
	defer cutFront.Close()
	o = base
	o.CacheName = "orders-cluster"
	o.CA = standalone.CA()
	if cluster, err = redisfront.StartCluster(ctx, 3, o); err != nil {
		return fail(err)
	}
	defer cluster.Close()
	o = base
	o.CacheName = "sessions"
	o.Serverless = true
	o.CA = standalone.CA()
	if serverless, err = redisfront.StartCluster(ctx, 1, o); err != nil {
		return fail(err)
	}
	defer serverless.Close()
	return m.Run()
}

// connectPolicy allows elasticache:Connect on the named replication groups
// and serverless caches and on the user, as the ElastiCache guide's IAM
// policy example does.
func connectPolicy(region string, caches ...string) []byte {
	var res []string
	for _, c := range caches {
		kind := "replicationgroup"
		if c == "sessions" {
			kind = "serverlesscache"
		}
		res = append(res, strconv.Quote("arn:aws:elasticache:"+region+":111122223333:"+kind+":"+c))
	}
	res = append(res, strconv.Quote("arn:aws:elasticache:"+region+":111122223333:user:"+userID))
	return []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"elasticache:Connect","Resource":[` + strings.Join(res, ",") + `]}]}`)
}
