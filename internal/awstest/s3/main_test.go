package s3_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/s3store"
)

const (
	region     = "eu-west-1"
	account    = sigv4.DefaultAccount
	bucketName = "irsakit-standin"
	otherName  = "irsakit-other"
	trust      = `{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Federated":"arn:aws:iam::111122223333:oidc-provider/example"},"Action":"sts:AssumeRoleWithWebIdentity"}]}`
)

var (
	reg      *sigv4.Registry
	policies *iam.IAM
	// plain serves HTTP, secure HTTPS: the SDK sends bodies differently
	// over each (signed SHA-256 + checksum header vs aws-chunked with a
	// trailing checksum), so the round-trip tests run against both.
	plain, secure *standin.Server
)

func TestMain(m *testing.M) {
	reg = sigv4.NewRegistry(nil)
	policies = iam.New(account)
	plain = standin.New(reg, policies, func(o *standin.Options) { o.Region = region })
	secure = standin.New(reg, policies, func(o *standin.Options) { o.Region = region; o.TLS = true })
	for _, srv := range []*standin.Server{plain, secure} {
		if _, err := srv.Start(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, b := range []string{bucketName, otherName} {
			if err := srv.CreateBucket(b); err != nil {
				fmt.Fprintln(os.Stderr, err)
				os.Exit(1)
			}
		}
	}
	code := m.Run()
	_ = plain.Close()
	_ = secure.Close()
	os.Exit(code)
}

// servers lists the two transports for table tests.
var servers = []struct {
	name string
	srv  func() *standin.Server
}{
	{"http", func() *standin.Server { return plain }},
	{"https", func() *standin.Server { return secure }},
}

var roleSeq atomic.Int64

// roleWith creates a role with the given identity policies and returns
// session credentials for it.
func roleWith(t testing.TB, docs ...[]byte) sigv4.Credentials {
	t.Helper()
	arn := fmt.Sprintf("arn:aws:iam::%s:role/s3-standin-%d", account, roleSeq.Add(1))
	if err := policies.PutRole(arn, []byte(trust), docs...); err != nil {
		t.Fatal(err)
	}
	c, err := reg.IssueSession(arn, "test", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// storePolicy is s3store.Policy for bucket/prefix, plus
// s3:AbortMultipartUpload so failed multipart uploads clean up.
func storePolicy(t testing.TB, bucket, prefix string) []byte {
	t.Helper()
	p, err := s3store.Policy(bucket, func(o *s3store.PolicyOptions) {
		o.Prefix = prefix
		o.Actions = append(append(o.Actions, s3store.DefaultActions...), s3store.ActionAbortMultipartUpload)
	})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// recorder records the requests an SDK client sends.
type recorder struct {
	next http.RoundTripper
	mu   sync.Mutex
	reqs []recorded
}

type recorded struct {
	method, path, query string
	header              http.Header
}

func (r *recorder) RoundTrip(req *http.Request) (*http.Response, error) {
	r.mu.Lock()
	r.reqs = append(r.reqs, recorded{req.Method, req.URL.Path, req.URL.RawQuery, req.Header.Clone()})
	r.mu.Unlock()
	return r.next.RoundTrip(req)
}

// find returns the recorded requests with method whose path ends in
// suffix.
func (r *recorder) find(method, suffix string) []recorded {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []recorded
	for _, q := range r.reqs {
		if q.method == method && strings.HasSuffix(q.path, suffix) {
			out = append(out, q)
		}
	}
	return out
}

// configFor returns an aws.Config signing with c against srv, recording
// requests in the returned recorder. The SDK retries nothing, so every
// refusal reaches the test as it was answered.
func configFor(srv *standin.Server, c sigv4.Credentials) (aws.Config, *recorder) {
	hc := srv.Client()
	rec := &recorder{next: hc.Transport}
	if rec.next == nil {
		rec.next = http.DefaultTransport
	}
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
		BaseEndpoint: aws.String(srv.URL()),
		HTTPClient:   &http.Client{Transport: rec},
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
		// What config.LoadDefaultConfig sets: checksums on every upload
		// that supports them, and validated on every download.
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}, rec
}

func clientFor(srv *standin.Server, c sigv4.Credentials) (*s3.Client, *recorder) {
	cfg, rec := configFor(srv, c)
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true }), rec
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

var keySeq atomic.Int64

// uniq returns a key prefix no other test uses.
func uniq(t testing.TB) string {
	return strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()) + fmt.Sprintf("-%d/", keySeq.Add(1))
}

var ctx = context.Background()
