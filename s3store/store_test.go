package s3store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/awstest/versitygw"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// TestRoundTrip exercises every call on one object with credentials from
// the IRSA web-identity path.
func TestRoundTrip(t *testing.T) {
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "rt/"))
	ctx := context.Background()
	body := []byte("hello, irsa\n")

	res, err := st.Put(ctx, "rt/a.txt", bytes.NewReader(body), func(o *s3store.PutOptions) {
		o.ContentType = "text/plain"
		o.Metadata = map[string]string{"owner": "team-a"}
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.ETag == "" || res.Checksum == "" || res.UploadID != "" {
		t.Errorf("Put result = %+v, want an ETag, a checksum, no upload id", res)
	}

	obj, err := st.Stat(ctx, "rt/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != int64(len(body)) || obj.ContentType != "text/plain" || obj.Metadata["owner"] != "team-a" || obj.ETag != res.ETag {
		t.Errorf("Stat = %+v", obj)
	}
	if obj.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32 || obj.Checksum != res.Checksum {
		t.Errorf("Stat checksum = %s %q, want CRC32 %q (the SDK default)", obj.ChecksumAlgorithm, obj.Checksum, res.Checksum)
	}
	if ok, err := st.Exists(ctx, "rt/a.txt"); !ok || err != nil {
		t.Errorf("Exists = %v, %v", ok, err)
	}

	r, err := st.Get(ctx, "rt/a.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); !bytes.Equal(got, body) {
		t.Errorf("Get = %q", got)
	}
	if r.Object().ContentType != "text/plain" || r.Object().Size != int64(len(body)) {
		t.Errorf("Get object = %+v", r.Object())
	}

	r, err = st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.Offset, o.Length = 7, 4 })
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); string(got) != "irsa" || r.Len() != 4 || r.Object().Size != int64(len(body)) {
		t.Errorf("ranged Get = %q (len %d, size %d)", got, r.Len(), r.Object().Size)
	}
	r, err = st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.Offset = 7; o.IfMatch = res.ETag })
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); string(got) != "irsa\n" {
		t.Errorf("Get from offset = %q", got)
	}
	if _, err := st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.IfMatch = `"0123"` }); err == nil {
		t.Error("Get with a stale ETag succeeded")
	}
	_, err = st.Put(ctx, "rt/a.txt", strings.NewReader("other"), func(o *s3store.PutOptions) { o.IfNoneMatch = "*" })
	var re *awshttp.ResponseError
	if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
		t.Errorf("conditional Put over an existing key: %v, want HTTP 412", err)
	}

	if _, err := st.Copy(ctx, "rt/a.txt", "rt/b.txt"); err != nil {
		t.Fatal(err)
	}
	r, err = st.Get(ctx, "rt/b.txt")
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, r); !bytes.Equal(got, body) || r.Object().Metadata["owner"] != "team-a" {
		t.Errorf("copy = %q %+v", got, r.Object())
	}
	if _, err := st.Copy(ctx, "rt/a.txt", "rt/c.txt", func(o *s3store.CopyOptions) { o.ContentType = "text/csv" }); err != nil {
		t.Fatal(err)
	}
	if o, err := st.Stat(ctx, "rt/c.txt"); err != nil || o.ContentType != "text/csv" || o.Metadata["owner"] != "" {
		t.Errorf("copy with new content type: %+v, %v", o, err)
	}

	var keys []string
	for o, err := range st.List(ctx, "rt/") {
		if err != nil {
			t.Fatal(err)
		}
		keys = append(keys, o.Key)
	}
	if got := strings.Join(keys, ","); got != "rt/a.txt,rt/b.txt,rt/c.txt" {
		t.Errorf("List = %s", got)
	}

	for _, k := range []string{"rt/a.txt", "rt/b.txt", "rt/c.txt"} {
		if err := st.Delete(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(ctx, "rt/a.txt"); err != nil {
		t.Errorf("deleting a deleted key: %v", err)
	}
	if ok, err := st.Exists(ctx, "rt/a.txt"); ok || err != nil {
		t.Errorf("Exists after Delete = %v, %v", ok, err)
	}

	// Not found, typed, with the SDK error reachable.
	_, err = st.Stat(ctx, "rt/a.txt")
	if !errors.Is(err, s3store.ErrNotFound) {
		t.Errorf("Stat of a missing key: %v, want ErrNotFound", err)
	}
	_, err = st.Get(ctx, "rt/a.txt")
	var nsk *types.NoSuchKey
	if !errors.Is(err, s3store.ErrNotFound) || !errors.As(err, &nsk) {
		t.Errorf("Get of a missing key: %v, want ErrNotFound and *types.NoSuchKey", err)
	}
	var se *s3store.Error
	if !errors.As(err, &se) || se.Op != "get" || se.Bucket != testBucket || se.Key != "rt/a.txt" {
		t.Errorf("error = %#v", se)
	}
	if _, err := st.Copy(ctx, "rt/missing", "rt/d.txt"); !errors.Is(err, s3store.ErrNotFound) || !strings.Contains(err.Error(), "s3://"+testBucket+"/rt/missing to") {
		t.Errorf("Copy of a missing key: %v", err)
	}
}

// TestAccessDenied: keys and buckets outside the role's policy fail with
// ErrAccessDenied while the SDK's error stays reachable.
func TestAccessDenied(t *testing.T) {
	roleARN, sub := role(t, mustPolicy(t, testBucket, "mine/"))
	cfg := podConfig(t, roleARN, sub)
	st, err := s3store.New(cfg, testBucket, func(o *s3store.Options) { o.UsePathStyle = true })
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := st.Put(ctx, "mine/ok", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { _, err := st.Put(ctx, "theirs/x", strings.NewReader("x")); return err }},
		{"Get", func() error { _, err := st.Get(ctx, "theirs/x"); return err }},
		{"Stat", func() error { _, err := st.Stat(ctx, "theirs/x"); return err }},
		{"Exists", func() error { _, err := st.Exists(ctx, "theirs/x"); return err }},
		{"Delete", func() error { return st.Delete(ctx, "theirs/x") }},
		{"Copy out of the prefix", func() error { _, err := st.Copy(ctx, "mine/ok", "theirs/x"); return err }},
		{"List other prefix", func() error {
			for _, err := range st.List(ctx, "theirs/") {
				return err
			}
			return nil
		}},
		{"List whole bucket", func() error {
			for _, err := range st.List(ctx, "") {
				return err
			}
			return nil
		}},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.call()
			if !errors.Is(err, s3store.ErrAccessDenied) {
				t.Fatalf("err = %v, want ErrAccessDenied", err)
			}
			if errors.Is(err, s3store.ErrNotFound) {
				t.Error("access denied also reads as not found")
			}
			if code := apiCode(err); code != "AccessDenied" && code != "Forbidden" {
				t.Errorf("SDK error code = %q, want AccessDenied (Forbidden for HEAD)", code)
			}
			if !strings.Contains(err.Error(), "s3store.Policy") {
				t.Errorf("message gives no hint: %v", err)
			}
		})
	}
	other, err := s3store.New(cfg, otherBucket, func(o *s3store.Options) { o.UsePathStyle = true })
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Put(ctx, "mine/x", strings.NewReader("x")); !errors.Is(err, s3store.ErrAccessDenied) {
		t.Errorf("Put to another bucket: %v, want ErrAccessDenied", err)
	}
}

// TestUntrustedSubject: a pod whose token subject the role's trust policy
// does not name gets no credentials; the error comes from irsa, names the
// role and the subject, points at the trust policy, and is not mistaken
// for an S3 access denial.
func TestUntrustedSubject(t *testing.T) {
	roleARN, _ := role(t, mustPolicy(t, testBucket, "sub/"))
	wrongSub := versitygw.Subject("apps", "somebody-else")
	cfg := podConfig(t, roleARN, wrongSub)
	st, err := s3store.New(cfg, testBucket, func(o *s3store.Options) { o.UsePathStyle = true })
	if err != nil {
		t.Fatal(err)
	}
	_, err = st.Put(context.Background(), "sub/x", strings.NewReader("x"))
	if err == nil {
		t.Fatal("a token with an untrusted subject got credentials")
	}
	var ce *irsa.CredentialError
	if !errors.As(err, &ce) {
		t.Fatalf("not an *irsa.CredentialError: %v", err)
	}
	if ce.RoleARN != roleARN || ce.Subject != wrongSub {
		t.Errorf("CredentialError role %q subject %q, want %q %q", ce.RoleARN, ce.Subject, roleARN, wrongSub)
	}
	// AWS reports a trust-policy condition mismatch as AccessDenied
	// (irsa.ErrTrustPolicy); versitygw v1.8.0 as InvalidIdentityToken, the
	// code it also uses for bad signatures (irsa.ErrInvalidToken). Either
	// way the message must send the reader to the trust policy.
	if !errors.Is(err, irsa.ErrTrustPolicy) && !errors.Is(err, irsa.ErrInvalidToken) {
		t.Errorf("errors.Is(ErrTrustPolicy or ErrInvalidToken) = false: %v", err)
	}
	if code := apiCode(err); code != "InvalidIdentityToken" && code != "AccessDenied" {
		t.Errorf("STS error code = %q, want InvalidIdentityToken (versitygw) or AccessDenied (AWS)", code)
	}
	if !strings.Contains(err.Error(), "trust policy") {
		t.Errorf("the error does not point at the role's trust policy: %v", err)
	}
	if errors.Is(err, s3store.ErrAccessDenied) {
		t.Error("a trust-policy refusal reads as an S3 ErrAccessDenied")
	}
	if !strings.Contains(err.Error(), "getting credentials failed") {
		t.Errorf("s3store's message does not say the credentials failed: %v", err)
	}
}

// TestServerSideEncryptionHeaders: the Store's encryption settings reach
// every write (single, multipart, copy, presigned PUT) and a call can
// override them. versitygw accepts but does not implement SSE, so the
// headers are checked on the wire.
func TestServerSideEncryptionHeaders(t *testing.T) {
	const kmsKey = "arn:aws:kms:us-east-1:000000000000:key/1234abcd-12ab-34cd-56ef-1234567890ab"
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "sse/"), func(o *s3store.Options) {
		o.ServerSideEncryption = types.ServerSideEncryptionAwsKms
		o.SSEKMSKeyID = kmsKey
		o.ClientOptions = append(o.ClientOptions, cc.option)
	})
	ctx := context.Background()
	if _, err := st.Put(ctx, "sse/small", strings.NewReader("x")); err != nil {
		t.Fatal(err)
	}
	big := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	if _, err := st.Put(ctx, "sse/big", io.MultiReader(bytes.NewReader(big)), func(o *s3store.PutOptions) {
		o.ServerSideEncryption = types.ServerSideEncryptionAes256
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Copy(ctx, "sse/small", "sse/copy"); err != nil {
		t.Fatal(err)
	}
	check := func(op string, i int, alg, key string) {
		t.Helper()
		hs := cc.headers(op)
		if len(hs) <= i {
			t.Fatalf("%s call %d not seen (calls: %d)", op, i, len(hs))
		}
		h := hs[i]
		if h["X-Amz-Server-Side-Encryption"] != alg || h["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"] != key {
			t.Errorf("%s headers = %v, want SSE %q key %q", op, h, alg, key)
		}
	}
	check("PutObject", 0, "aws:kms", kmsKey)
	check("CreateMultipartUpload", 0, "AES256", "")
	check("CopyObject", 0, "aws:kms", kmsKey)
	if n := cc.count("UploadPart"); n != 2 {
		t.Errorf("UploadPart calls = %d, want 2 (6 MiB in 5 MiB parts)", n)
	}

	p, err := st.PresignPut(ctx, "sse/presigned", 0)
	if err != nil {
		t.Fatal(err)
	}
	if p.Header.Get("X-Amz-Server-Side-Encryption") != "aws:kms" || p.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id") != kmsKey {
		t.Errorf("presigned PUT headers = %v", p.Header)
	}

	if _, err := st.Put(ctx, "sse/x", strings.NewReader("x"), func(o *s3store.PutOptions) {
		o.ServerSideEncryption = types.ServerSideEncryptionAes256
		o.SSEKMSKeyID = kmsKey
	}); err == nil || !strings.Contains(err.Error(), "KMS key") {
		t.Errorf("AES256 with a KMS key id: %v, want a validation error", err)
	}
}

// TestConcurrentUse shares one Store between goroutines (run with -race).
func TestConcurrentUse(t *testing.T) {
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "conc/"))
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("conc/%02d", i)
			want := strings.Repeat(key, 100)
			if _, err := st.Put(ctx, key, strings.NewReader(want)); err != nil {
				errs <- err
				return
			}
			r, err := st.Get(ctx, key)
			if err != nil {
				errs <- err
				return
			}
			got, err := io.ReadAll(r)
			r.Close()
			if err != nil || string(got) != want {
				errs <- fmt.Errorf("%s: read %d bytes, %v", key, len(got), err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	n := 0
	for _, err := range st.List(ctx, "conc/") {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 16 {
		t.Errorf("listed %d objects, want 16", n)
	}
}

// TestChecksumVerifiedByServer: a body that does not match its declared
// checksum is refused, so the checksums the Store sends are really checked.
func TestChecksumVerifiedByServer(t *testing.T) {
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "ck/"))
	_, err := st.Client().PutObject(context.Background(), &s3.PutObjectInput{
		Bucket:         aws.String(testBucket),
		Key:            aws.String("ck/bad"),
		Body:           strings.NewReader("hello"),
		ChecksumSHA256: aws.String("n4bQgYhMfWWaL+qgxVrQFaO/TxsrC4Is0V1sFbDwCgg="), // SHA-256 of "test"
	})
	if err == nil {
		t.Fatal("a body with a wrong SHA-256 was stored")
	}
	if code := apiCode(err); code != "BadDigest" && code != "XAmzContentChecksumMismatch" && code != "InvalidRequest" {
		t.Errorf("code = %q (%v), want a checksum mismatch", code, err)
	}
}
