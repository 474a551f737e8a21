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
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/internal/awstest/versitygw"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/s3store"
)

func readAll(t testing.TB, r io.ReadCloser) []byte {
	t.Helper()
	defer r.Close()
	b, err := io.ReadAll(r)
	require.NoError(t, err)
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
	require.NoError(t, err)
	assert.NotEmpty(t, res.ETag)
	assert.NotEmpty(t, res.Checksum)
	assert.Empty(t, res.UploadID, "a small object went up in parts")

	obj, err := st.Stat(ctx, "rt/a.txt")
	require.NoError(t, err)
	assert.Equal(t, int64(len(body)), obj.Size)
	assert.Equal(t, "text/plain", obj.ContentType)
	assert.Equal(t, "team-a", obj.Metadata["owner"])
	assert.Equal(t, res.ETag, obj.ETag)
	assert.Equal(t, types.ChecksumAlgorithmCrc32, obj.ChecksumAlgorithm, "the SDK default")
	assert.Equal(t, res.Checksum, obj.Checksum)
	ok, err := st.Exists(ctx, "rt/a.txt")
	require.NoError(t, err)
	assert.True(t, ok)

	r, err := st.Get(ctx, "rt/a.txt")
	require.NoError(t, err)
	assert.Equal(t, body, readAll(t, r))
	assert.Equal(t, "text/plain", r.Object().ContentType)
	assert.Equal(t, int64(len(body)), r.Object().Size)

	r, err = st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.Offset, o.Length = 7, 4 })
	require.NoError(t, err)
	assert.Equal(t, "irsa", string(readAll(t, r)))
	assert.Equal(t, int64(4), r.Len())
	assert.Equal(t, int64(len(body)), r.Object().Size)
	r, err = st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.Offset = 7; o.IfMatch = res.ETag })
	require.NoError(t, err)
	assert.Equal(t, "irsa\n", string(readAll(t, r)))
	_, err = st.Get(ctx, "rt/a.txt", func(o *s3store.GetOptions) { o.IfMatch = `"0123"` })
	assert.Error(t, err, "Get with a stale ETag")
	_, err = st.Put(ctx, "rt/a.txt", strings.NewReader("other"), func(o *s3store.PutOptions) { o.IfNoneMatch = "*" })
	var re *awshttp.ResponseError
	if assert.ErrorAs(t, err, &re, "conditional Put over an existing key") {
		assert.Equal(t, http.StatusPreconditionFailed, re.HTTPStatusCode())
	}

	_, err = st.Copy(ctx, "rt/a.txt", "rt/b.txt")
	require.NoError(t, err)
	r, err = st.Get(ctx, "rt/b.txt")
	require.NoError(t, err)
	assert.Equal(t, body, readAll(t, r))
	assert.Equal(t, "team-a", r.Object().Metadata["owner"])
	_, err = st.Copy(ctx, "rt/a.txt", "rt/c.txt", func(o *s3store.CopyOptions) { o.ContentType = "text/csv" })
	require.NoError(t, err)
	o, err := st.Stat(ctx, "rt/c.txt")
	require.NoError(t, err)
	assert.Equal(t, "text/csv", o.ContentType)
	assert.Empty(t, o.Metadata["owner"], "metadata replaced with the content type")

	var keys []string
	for o, err := range st.List(ctx, "rt/") {
		require.NoError(t, err)
		keys = append(keys, o.Key)
	}
	assert.Equal(t, []string{"rt/a.txt", "rt/b.txt", "rt/c.txt"}, keys)

	for _, k := range keys {
		require.NoError(t, st.Delete(ctx, k))
	}
	assert.NoError(t, st.Delete(ctx, "rt/a.txt"), "deleting a deleted key")
	ok, err = st.Exists(ctx, "rt/a.txt")
	require.NoError(t, err)
	assert.False(t, ok)

	// Not found, typed, with the SDK error reachable.
	_, err = st.Stat(ctx, "rt/a.txt")
	assert.ErrorIs(t, err, s3store.ErrNotFound)
	_, err = st.Get(ctx, "rt/a.txt")
	assert.ErrorIs(t, err, s3store.ErrNotFound)
	var nsk *types.NoSuchKey
	assert.ErrorAs(t, err, &nsk)
	var se *s3store.Error
	if assert.ErrorAs(t, err, &se) {
		assert.Equal(t, "get", se.Op)
		assert.Equal(t, testBucket, se.Bucket)
		assert.Equal(t, "rt/a.txt", se.Key)
	}
	_, err = st.Copy(ctx, "rt/missing", "rt/d.txt")
	assert.ErrorIs(t, err, s3store.ErrNotFound)
	assert.ErrorContains(t, err, "s3://"+testBucket+"/rt/missing to")
}

// TestAccessDenied: keys and buckets outside the role's policy fail with
// ErrAccessDenied while the SDK's error stays reachable.
func TestAccessDenied(t *testing.T) {
	roleARN, sub := role(t, mustPolicy(t, testBucket, "mine/"))
	cfg := podConfig(t, roleARN, sub)
	st, err := s3store.New(cfg, testBucket, func(o *s3store.Options) { o.UsePathStyle = true })
	require.NoError(t, err)
	ctx := context.Background()
	_, err = st.Put(ctx, "mine/ok", strings.NewReader("x"))
	require.NoError(t, err)
	calls := []struct {
		name string
		call func() error
	}{
		{"Put", func() error { _, err := st.Put(ctx, "theirs/x", strings.NewReader("x")); return err }},
		{"Get", func() error { _, err := st.Get(ctx, "theirs/x"); return err }},
		{"Stat", func() error { _, err := st.Stat(ctx, "theirs/x"); return err }},
		{"Exists", func() error { _, err := st.Exists(ctx, "theirs/x"); return err }},
		{"Delete", func() error { return st.Delete(ctx, "theirs/x") }},
		{"Download", func() error { _, err := st.Download(ctx, "theirs/x", tmtypes.NewWriteAtBuffer(nil)); return err }},
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
			require.ErrorIs(t, err, s3store.ErrAccessDenied)
			assert.NotErrorIs(t, err, s3store.ErrNotFound)
			assert.Contains(t, []string{"AccessDenied", "Forbidden"}, apiCode(err), "SDK error code (Forbidden for HEAD)")
			assert.ErrorContains(t, err, "s3store.Policy", "the message gives the fix")
		})
	}
	other, err := s3store.New(cfg, otherBucket, func(o *s3store.Options) { o.UsePathStyle = true })
	require.NoError(t, err)
	_, err = other.Put(ctx, "mine/x", strings.NewReader("x"))
	assert.ErrorIs(t, err, s3store.ErrAccessDenied, "Put to another bucket")
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
	require.NoError(t, err)
	_, err = st.Put(context.Background(), "sub/x", strings.NewReader("x"))
	require.Error(t, err, "a token with an untrusted subject got credentials")
	var ce *irsa.CredentialError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, roleARN, ce.RoleARN)
	assert.Equal(t, wrongSub, ce.Subject)
	// AWS reports a trust-policy condition mismatch as AccessDenied
	// (irsa.ErrTrustPolicy); versitygw v1.8.0 as InvalidIdentityToken, the
	// code it also uses for bad signatures (irsa.ErrInvalidToken). Either
	// way the message must send the reader to the trust policy.
	assert.True(t, errors.Is(err, irsa.ErrTrustPolicy) || errors.Is(err, irsa.ErrInvalidToken),
		"errors.Is(ErrTrustPolicy or ErrInvalidToken) = false: %v", err)
	assert.Contains(t, []string{"InvalidIdentityToken", "AccessDenied"}, apiCode(err),
		"STS error code: InvalidIdentityToken (versitygw) or AccessDenied (AWS)")
	assert.ErrorContains(t, err, "trust policy")
	assert.NotErrorIs(t, err, s3store.ErrAccessDenied, "a trust-policy refusal reads as an S3 ErrAccessDenied")
	assert.ErrorContains(t, err, "getting credentials failed")
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
	_, err := st.Put(ctx, "sse/small", strings.NewReader("x"))
	require.NoError(t, err)
	big := bytes.Repeat([]byte("0123456789abcdef"), 6<<20/16)
	_, err = st.Put(ctx, "sse/big", io.MultiReader(bytes.NewReader(big)), func(o *s3store.PutOptions) {
		o.ServerSideEncryption = types.ServerSideEncryptionAes256
		o.PartSize = s3store.MinPartSize
	})
	require.NoError(t, err)
	_, err = st.Copy(ctx, "sse/small", "sse/copy")
	require.NoError(t, err)
	check := func(op string, i int, alg, key string) {
		t.Helper()
		hs := cc.headers(op)
		require.Greater(t, len(hs), i, "%s call %d not seen", op, i)
		assert.Equal(t, alg, hs[i]["X-Amz-Server-Side-Encryption"], op)
		assert.Equal(t, key, hs[i]["X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"], op)
	}
	check("PutObject", 0, "aws:kms", kmsKey)
	check("CreateMultipartUpload", 0, "AES256", "")
	check("CopyObject", 0, "aws:kms", kmsKey)
	assert.Equal(t, 2, cc.count("UploadPart"), "6 MiB in 5 MiB parts")

	p, err := st.PresignPut(ctx, "sse/presigned", 0)
	require.NoError(t, err)
	assert.Equal(t, "aws:kms", p.Header.Get("X-Amz-Server-Side-Encryption"))
	assert.Equal(t, kmsKey, p.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id"))

	_, err = st.Put(ctx, "sse/x", strings.NewReader("x"), func(o *s3store.PutOptions) {
		o.ServerSideEncryption = types.ServerSideEncryptionAes256
		o.SSEKMSKeyID = kmsKey
	})
	assert.ErrorContains(t, err, "KMS key", "AES256 with a KMS key id")
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
		assert.NoError(t, err)
	}
	n := 0
	for _, err := range st.List(ctx, "conc/") {
		require.NoError(t, err)
		n++
	}
	assert.Equal(t, 16, n)
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
	require.Error(t, err, "a body with a wrong SHA-256 was stored")
	assert.Contains(t, []string{"BadDigest", "XAmzContentChecksumMismatch", "InvalidRequest"}, apiCode(err), "a checksum mismatch: %v", err)
}
