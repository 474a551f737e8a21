package s3store_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/s3store"
)

// offlineStore returns a Store on endpoint with static credentials and no
// retries (errors are the point here).
func offlineStore(t *testing.T, endpoint string, optFns ...func(*s3store.Options)) *s3store.Store {
	t.Helper()
	cfg := aws.Config{
		Region:       "us-east-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", ""),
		BaseEndpoint: aws.String(endpoint),
		Retryer:      func() aws.Retryer { return aws.NopRetryer{} },
	}
	st, err := s3store.New(cfg, "bucket", append([]func(*s3store.Options){func(o *s3store.Options) { o.UsePathStyle = true }}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// TestErrorMapping feeds the SDK the error responses S3 sends and checks
// the sentinels, the SDK error behind them and the message.
func TestErrorMapping(t *testing.T) {
	var status int
	var code string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("x-amz-request-id", "REQ123")
		w.WriteHeader(status)
		if r.Method != http.MethodHead {
			fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>msg</Message><RequestId>REQ123</RequestId></Error>`, code)
		}
	}))
	defer srv.Close()
	st := offlineStore(t, srv.URL)
	ctx := context.Background()

	get := func() error { _, err := st.Get(ctx, "k"); return err }
	stat := func() error { _, err := st.Stat(ctx, "k"); return err }
	copyObj := func() error { _, err := st.Copy(ctx, "src", "dst"); return err }
	for _, tc := range []struct {
		name     string
		status   int
		code     string
		call     func() error
		want     error
		wantType any
	}{
		{"get no such key", 404, "NoSuchKey", get, s3store.ErrNotFound, new(*types.NoSuchKey)},
		{"get no such bucket", 404, "NoSuchBucket", get, s3store.ErrNotFound, nil},
		{"get access denied", 403, "AccessDenied", get, s3store.ErrAccessDenied, nil},
		{"get server error", 500, "InternalError", get, nil, nil},
		{"get expired token", 400, "ExpiredToken", get, nil, nil},
		{"head 404", 404, "", stat, s3store.ErrNotFound, new(*types.NotFound)},
		{"head 403", 403, "", stat, s3store.ErrAccessDenied, nil},
		{"copy no such key", 404, "NoSuchKey", copyObj, s3store.ErrNotFound, nil},
		{"copy access denied", 403, "AccessDenied", copyObj, s3store.ErrAccessDenied, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, code = tc.status, tc.code
			err := tc.call()
			if err == nil {
				t.Fatal("no error")
			}
			for _, s := range []error{s3store.ErrNotFound, s3store.ErrAccessDenied} {
				if got := errors.Is(err, s); got != (s == tc.want) {
					t.Errorf("errors.Is(err, %v) = %v: %v", s, got, err)
				}
			}
			var se *s3store.Error
			if !errors.As(err, &se) {
				t.Fatalf("not an *s3store.Error: %T", err)
			}
			var re *awshttp.ResponseError
			if !errors.As(err, &re) || re.HTTPStatusCode() != tc.status || re.ServiceRequestID() != "REQ123" {
				t.Errorf("SDK response error not reachable: %v", err)
			}
			var ae smithy.APIError
			if tc.code != "" && (!errors.As(err, &ae) || ae.ErrorCode() != tc.code) {
				t.Errorf("API error code not reachable: %v", err)
			}
			if tc.wantType != nil && !errors.As(err, tc.wantType) {
				t.Errorf("errors.As(%T) failed: %v", tc.wantType, err)
			}
			if !strings.HasPrefix(err.Error(), "s3store: ") || !strings.Contains(err.Error(), "s3://bucket/") {
				t.Errorf("message = %q", err)
			}
		})
	}

	status = 404
	if ok, err := st.Exists(ctx, "k"); ok || err != nil {
		t.Errorf("Exists on 404 = %v, %v", ok, err)
	}
	status = 403
	if ok, err := st.Exists(ctx, "k"); ok || !errors.Is(err, s3store.ErrAccessDenied) {
		t.Errorf("Exists on 403 = %v, %v", ok, err)
	}
}

// TestInvalidInput: bad arguments fail before any request, with a message
// naming the input.
func TestInvalidInput(t *testing.T) {
	var requests int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { requests++ }))
	defer srv.Close()
	good := aws.Config{Region: "us-east-1", BaseEndpoint: aws.String(srv.URL)}

	for _, tc := range []struct {
		name   string
		cfg    aws.Config
		bucket string
		opt    func(*s3store.Options)
		want   string
	}{
		{"no region", aws.Config{}, "bucket", nil, "no region"},
		{"bad bucket", good, "s3://bucket", nil, "bucket name"},
		{"short bucket", good, "ab", nil, "bucket name"},
		{"small parts", good, "bucket", func(o *s3store.Options) { o.PartSize = 1 << 20 }, "5 MiB"},
		{"negative concurrency", good, "bucket", func(o *s3store.Options) { o.Concurrency = -1 }, "Concurrency"},
		{"kms key without kms", good, "bucket", func(o *s3store.Options) { o.SSEKMSKeyID = "k" }, "KMS key"},
		{"unknown sse", good, "bucket", func(o *s3store.Options) { o.ServerSideEncryption = "DES" }, "ServerSideEncryption"},
		{"unknown checksum", good, "bucket", func(o *s3store.Options) { o.ChecksumAlgorithm = "MD5" }, "ChecksumAlgorithm"},
		{"presign too long", good, "bucket", func(o *s3store.Options) { o.PresignExpires = 8 * 24 * 3600e9 }, "7 days"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fns []func(*s3store.Options)
			if tc.opt != nil {
				fns = append(fns, tc.opt)
			}
			_, err := s3store.New(tc.cfg, tc.bucket, fns...)
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "s3store: ") {
				t.Fatalf("New: %v, want an error mentioning %q", err, tc.want)
			}
		})
	}

	st := offlineStore(t, srv.URL)
	ctx := context.Background()
	long := strings.Repeat("k", 1025)
	for _, tc := range []struct {
		name string
		call func() error
	}{
		{"put empty key", func() error { _, err := st.Put(ctx, "", strings.NewReader("")); return err }},
		{"put long key", func() error { _, err := st.Put(ctx, long, strings.NewReader("")); return err }},
		{"put bad utf8", func() error { _, err := st.Put(ctx, "\xff", strings.NewReader("")); return err }},
		{"put small part", func() error {
			_, err := st.Put(ctx, "k", strings.NewReader(""), func(o *s3store.PutOptions) { o.PartSize = 1024 })
			return err
		}},
		{"put bad checksum", func() error {
			_, err := st.Put(ctx, "k", strings.NewReader(""), func(o *s3store.PutOptions) { o.ChecksumAlgorithm = "XOR" })
			return err
		}},
		{"get empty key", func() error { _, err := st.Get(ctx, ""); return err }},
		{"get negative offset", func() error {
			_, err := st.Get(ctx, "k", func(o *s3store.GetOptions) { o.Offset = -1 })
			return err
		}},
		{"download negative length", func() error {
			_, err := st.Download(ctx, "k", nil, func(o *s3store.GetOptions) { o.Length = -5 })
			return err
		}},
		{"stat empty key", func() error { _, err := st.Stat(ctx, ""); return err }},
		{"delete empty key", func() error { return st.Delete(ctx, "") }},
		{"copy bad source bucket", func() error {
			_, err := st.Copy(ctx, "a", "b", func(o *s3store.CopyOptions) { o.SourceBucket = "x/y" })
			return err
		}},
		{"presign empty key", func() error { _, err := st.PresignGet(ctx, "", 0); return err }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.call(); err == nil || !strings.HasPrefix(err.Error(), "s3store: ") {
				t.Fatalf("err = %v, want a validation error", err)
			}
		})
	}
	if requests != 0 {
		t.Errorf("%d requests reached the server", requests)
	}
}

// TestPresignOffline: presigning needs no network, honours the lifetime,
// and the Store's settings become signed headers.
func TestPresignOffline(t *testing.T) {
	st := offlineStore(t, "https://s3.example.test", func(o *s3store.Options) {
		o.ServerSideEncryption = types.ServerSideEncryptionAes256
		o.PresignExpires = 90e9
	})
	p, err := st.PresignPut(context.Background(), "dir/file name.txt", 0, func(o *s3store.PresignOptions) { o.ContentType = "text/plain" })
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(p.URL(), "X-Amz-Expires=90") || !strings.Contains(p.URL(), "/bucket/dir/file%20name.txt?") {
		t.Errorf("URL = %s", p.URL())
	}
	if p.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" || p.Header.Get("Content-Type") != "text/plain" || p.Header.Get("Host") != "" {
		t.Errorf("Header = %v", p.Header)
	}
	if s := p.String(); strings.Contains(s, "X-Amz-") || !strings.HasPrefix(s, "PUT https://s3.example.test/bucket/dir/file%20name.txt?REDACTED") {
		t.Errorf("String = %s", s)
	}
}
