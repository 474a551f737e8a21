package s3store_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/versitygw"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

// The tests run against versitygw inside a private network namespace (see
// internal/awstest/versitygw): every Store gets its credentials through the
// real IRSA web-identity path, from a projected token file via STS
// AssumeRoleWithWebIdentity, and every S3 call is SigV4-verified and
// authorized by the role's IAM policy.
var (
	env    *versitygw.Env
	envErr error
)

func TestMain(m *testing.M) {
	var closeExamplePod func()
	code := versitygw.Main(m, func(e *versitygw.Env, err error) {
		env, envErr = e, err
		closeExamplePod, err = examplePod(e)
		if err != nil {
			fmt.Fprintf(os.Stderr, "s3store: the examples' pod environment: %v\n", err)
			os.Exit(1)
		}
	})
	if closeExamplePod != nil {
		closeExamplePod()
	}
	os.Exit(code)
}

// testBucket is where the tests' roles are scoped; otherBucket is outside
// every role's policy.
const (
	testBucket  = "irsakit-store"
	otherBucket = "irsakit-other"
)

var (
	bucketsOnce sync.Once
	bucketsErr  error
	roleSeq     atomic.Int64
)

// needEnv returns the running versitygw, creating the buckets once.
func needEnv(t testing.TB) *versitygw.Env {
	t.Helper()
	versitygw.Need(t, envErr)
	bucketsOnce.Do(func() {
		for _, b := range []string{testBucket, otherBucket} {
			if bucketsErr = env.CreateBucket(context.Background(), b); bucketsErr != nil {
				return
			}
		}
	})
	require.NoError(t, bucketsErr)
	return env
}

// role creates a role trusted for a fresh service account with policy as
// its only inline policy and returns its ARN and token subject.
func role(t testing.TB, policy []byte) (roleARN, subject string) {
	t.Helper()
	e := needEnv(t)
	n := roleSeq.Add(1)
	name := "s3store-" + strings.ReplaceAll(strings.ToLower(t.Name()), "/", "-")
	if len(name) > 50 {
		name = name[:50]
	}
	name += "-" + itoa(n)
	subject = versitygw.Subject("apps", name)
	arn, err := e.CreateRole(context.Background(), name, subject, map[string]string{"s3store": string(policy)})
	require.NoError(t, err)
	return arn, subject
}

func itoa(n int64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

// podConfig sets the environment of a pod running as roleARN with a token
// for subject, and loads the session the way an application does, with
// irsa.Load: web identity from AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE,
// STS AssumeRoleWithWebIdentity at AWS_ENDPOINT_URL_STS, S3 at
// AWS_ENDPOINT_URL_S3.
func podConfig(t testing.TB, roleARN, subject string) aws.Config {
	t.Helper()
	e := needEnv(t)
	e.Setenv(t, roleARN, subject)
	sess, err := irsa.Load(context.Background(), func(o *irsa.Options) {
		o.Logger = slog.New(slog.DiscardHandler)
	})
	require.NoError(t, err)
	require.Equal(t, irsa.WebIdentity, sess.Mode())
	require.Equal(t, roleARN, sess.RoleARN())
	return sess.Config()
}

// newStore returns a Store on bucket for a pod whose role has policy.
func newStore(t testing.TB, bucket string, policy []byte, optFns ...func(*s3store.Options)) *s3store.Store {
	t.Helper()
	st, _ := newStoreCfg(t, bucket, policy, optFns...)
	return st
}

// newStoreCfg is newStore that also returns the pod's aws.Config.
func newStoreCfg(t testing.TB, bucket string, policy []byte, optFns ...func(*s3store.Options)) (*s3store.Store, aws.Config) {
	t.Helper()
	roleARN, sub := role(t, policy)
	cfg := podConfig(t, roleARN, sub)
	st, err := s3store.New(cfg, bucket, append([]func(*s3store.Options){func(o *s3store.Options) { o.UsePathStyle = true }}, optFns...)...)
	require.NoError(t, err)
	return st, cfg
}

func mustPolicy(t testing.TB, bucket, prefix string, actions ...s3store.Action) []byte {
	t.Helper()
	p, err := s3store.Policy(bucket, func(o *s3store.PolicyOptions) { o.Prefix, o.Actions = prefix, actions })
	require.NoError(t, err)
	return p
}

// callCounter counts SDK operations by name through a middleware.
type callCounter struct {
	mu sync.Mutex
	n  map[string]int
	h  map[string][]map[string]string // selected request headers per call
}

func newCallCounter() *callCounter {
	return &callCounter{n: map[string]int{}, h: map[string][]map[string]string{}}
}

func (c *callCounter) count(op string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n[op]
}

func (c *callCounter) headers(op string) []map[string]string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.h[op]
}

// option returns the per-call SDK option that installs the counter.
func (c *callCounter) option(o *s3.Options) {
	o.APIOptions = append(o.APIOptions, func(stack *middleware.Stack) error {
		return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("callCounter",
			func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
				op := middleware.GetOperationName(ctx)
				hdr := map[string]string{}
				if req, ok := in.Request.(*smithyhttp.Request); ok {
					for _, k := range []string{"X-Amz-Server-Side-Encryption", "X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "Content-Type", "X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Algorithm", "X-Amz-Checksum-Crc32", "X-Amz-Trailer", "X-Amz-Meta-Owner"} {
						if v := req.Header.Get(k); v != "" {
							hdr[k] = v
						}
					}
				}
				c.mu.Lock()
				c.n[op]++
				c.h[op] = append(c.h[op], hdr)
				c.mu.Unlock()
				return next.HandleFinalize(ctx, in)
			}), middleware.After)
	})
}
