package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/s3store"
)

// randomData returns n deterministic pseudo-random bytes.
func randomData(n int, seed byte) []byte {
	var s [32]byte
	s[0] = seed
	b := make([]byte, n)
	_, _ = rand.NewChaCha8(s).Read(b)
	return b
}

// compositeSHA256 is S3's checksum of a multipart object: the SHA-256 of
// the concatenated SHA-256 digests of its parts, base64, with "-N".
func compositeSHA256(data []byte, partSize int) string {
	var cat []byte
	n := 0
	for off := 0; off < len(data); off += partSize {
		d := sha256.Sum256(data[off:min(off+partSize, len(data))])
		cat = append(cat, d[:]...)
		n++
	}
	sum := sha256.Sum256(cat)
	return fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(sum[:]), n)
}

// minPart is S3's minimum part size, for sizing test data.
const minPart = int(s3store.MinPartSize)

// stream hides every method of r but Read: content of unknown size, as
// from a network connection.
func stream(r io.Reader) io.Reader { return struct{ io.Reader }{r} }

// TestMultipart64MiB uploads 64 MiB of unknown size in parts with SHA-256
// checksums that the server verifies per part, checks the object's
// composite checksum, and reads it back whole, in ranges, and in parallel.
func TestMultipart64MiB(t *testing.T) {
	const size, partSize = 64 << 20, 8 << 20
	data := randomData(size, 1)
	want := sha256.Sum256(data)
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "mp/"), func(o *s3store.Options) {
		o.PartSize = partSize
		o.Concurrency = 4
		o.ChecksumAlgorithm = types.ChecksumAlgorithmSha256
		o.ClientOptions = append(o.ClientOptions, cc.option)
	})
	ctx := context.Background()

	res, err := st.Put(ctx, "mp/big.bin", stream(bytes.NewReader(data)), func(o *s3store.PutOptions) {
		o.ContentType = "application/octet-stream"
	})
	require.NoError(t, err)
	assert.NotEmpty(t, res.UploadID, "64 MiB went up in one request")
	assert.Equal(t, size/partSize, cc.count("UploadPart"))
	for i, h := range cc.headers("UploadPart") {
		assert.Equal(t, "SHA256", h["X-Amz-Sdk-Checksum-Algorithm"], "part %d", i)
	}
	wantComposite := compositeSHA256(data, partSize)
	assert.Equal(t, wantComposite, res.Checksum)

	obj, err := st.Stat(ctx, "mp/big.bin")
	require.NoError(t, err)
	assert.Equal(t, int64(size), obj.Size)
	assert.Equal(t, types.ChecksumAlgorithmSha256, obj.ChecksumAlgorithm)
	assert.Equal(t, wantComposite, obj.Checksum)
	if obj.ChecksumType != "" {
		assert.Equal(t, types.ChecksumTypeComposite, obj.ChecksumType)
	}

	t.Run("stream", func(t *testing.T) {
		r, err := st.Get(ctx, "mp/big.bin")
		require.NoError(t, err)
		defer r.Close()
		h := sha256.New()
		n, err := io.Copy(h, r)
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
		assert.Equal(t, want[:], h.Sum(nil))
	})

	t.Run("ranges", func(t *testing.T) {
		for _, rg := range []struct{ off, n int64 }{
			{0, 1},
			{0, 1 << 20},
			{partSize - 10, 20}, // across a part boundary
			{3*partSize + 12345, 5 << 20},
			{size - 1, 1},
			{size - 300, 0}, // to the end
		} {
			r, err := st.Get(ctx, "mp/big.bin", func(o *s3store.GetOptions) {
				o.Offset, o.Length = rg.off, rg.n
				o.IfMatch = res.ETag
			})
			require.NoError(t, err, "range %d+%d", rg.off, rg.n)
			got := readAll(t, r)
			end := rg.off + rg.n
			if rg.n == 0 {
				end = size
			}
			assert.True(t, bytes.Equal(got, data[rg.off:end]), "range %d+%d: %d bytes, content differs", rg.off, rg.n, len(got))
			assert.Equal(t, end-rg.off, r.Len(), "range %d+%d", rg.off, rg.n)
			assert.Equal(t, int64(size), r.Object().Size, "range %d+%d", rg.off, rg.n)
		}
	})

	t.Run("parallel download", func(t *testing.T) {
		before := cc.count("GetObject")
		buf := tmtypes.NewWriteAtBuffer(make([]byte, 0, size))
		n, err := st.Download(ctx, "mp/big.bin", buf)
		require.NoError(t, err)
		assert.Equal(t, int64(size), n)
		assert.Equal(t, want, sha256.Sum256(buf.Bytes()))
		assert.Equal(t, size/partSize, cc.count("GetObject")-before, "one ranged GET per part")
	})

	t.Run("file upload", func(t *testing.T) {
		// An *os.File is an io.Seeker: its size is known up front.
		path := filepath.Join(t.TempDir(), "big.bin")
		require.NoError(t, os.WriteFile(path, data[:20<<20], 0o600))
		f, err := os.Open(path)
		require.NoError(t, err)
		defer f.Close()
		_, err = st.Put(ctx, "mp/file.bin", f)
		require.NoError(t, err)
		obj, err := st.Stat(ctx, "mp/file.bin")
		require.NoError(t, err)
		assert.Equal(t, int64(20<<20), obj.Size)
		assert.Equal(t, compositeSHA256(data[:20<<20], partSize), obj.Checksum)
	})
}

// brokenReader yields n bytes of data and then fails, as a stream whose
// connection drops.
type brokenReader struct {
	r   io.Reader
	err error
}

func (b *brokenReader) Read(p []byte) (int, error) {
	n, err := b.r.Read(p)
	if err == io.EOF {
		return n, b.err
	}
	return n, err
}

// TestPutAbortsFailedUpload: a multipart Put whose reader fails leaves no
// upload behind on the server (its parts would be billed until a
// lifecycle rule removed them), and the abort carries the call's SDK
// options like every other request of the upload.
func TestPutAbortsFailedUpload(t *testing.T) {
	e := needEnv(t)
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "abort/",
		s3store.ActionGetObject, s3store.ActionPutObject, s3store.ActionAbortMultipartUpload))
	ctx := context.Background()
	errDropped := errors.New("connection dropped")
	cc := newCallCounter()

	_, err := st.Put(ctx, "abort/partial.bin", &brokenReader{r: bytes.NewReader(randomData(3*minPart, 2)), err: errDropped},
		func(o *s3store.PutOptions) {
			o.PartSize = s3store.MinPartSize
			o.ClientOptions = append(o.ClientOptions, cc.option)
		})
	require.Error(t, err)
	assert.ErrorIs(t, err, errDropped)
	var se *s3store.Error
	require.ErrorAs(t, err, &se)
	assert.Equal(t, "put", se.Op)
	assert.Equal(t, "abort/partial.bin", se.Key)

	assert.Equal(t, 1, cc.count("CreateMultipartUpload"))
	assert.Equal(t, 1, cc.count("AbortMultipartUpload"), "the abort went out with the call's options")
	assert.Zero(t, cc.count("CompleteMultipartUpload"))

	uploads, err := e.S3(e.Root()).ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{
		Bucket: aws.String(testBucket), Prefix: aws.String("abort/"),
	})
	require.NoError(t, err)
	assert.Empty(t, uploads.Uploads, "a failed upload was left on the server")
	ok, err := st.Exists(ctx, "abort/partial.bin")
	require.NoError(t, err)
	assert.False(t, ok)
}

// TestPutKeepsClientChecksumSetting: the transfer manager sets the request
// checksum calculation on every request it sends; a Store whose client is
// configured to send checksums only when required must still send none.
func TestPutKeepsClientChecksumSetting(t *testing.T) {
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "ckreq/"), func(o *s3store.Options) {
		o.PartSize = s3store.MinPartSize
		o.ClientOptions = append(o.ClientOptions, cc.option, func(so *s3.Options) {
			so.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		})
	})
	ctx := context.Background()
	data := randomData(2*minPart+100, 3)
	res, err := st.Put(ctx, "ckreq/a.bin", stream(bytes.NewReader(data)))
	require.NoError(t, err)
	require.NotEmpty(t, res.UploadID)
	require.Equal(t, 3, cc.count("UploadPart"))
	for _, op := range []string{"CreateMultipartUpload", "UploadPart"} {
		for i, h := range cc.headers(op) {
			for _, k := range []string{"X-Amz-Sdk-Checksum-Algorithm", "X-Amz-Checksum-Algorithm", "X-Amz-Checksum-Crc32", "X-Amz-Trailer"} {
				assert.Empty(t, h[k], "%s %d sent %s", op, i, k)
			}
		}
	}

	// The setting still yields to a checksum the Store asks for.
	_, err = st.Put(ctx, "ckreq/b.bin", stream(bytes.NewReader(data)), func(o *s3store.PutOptions) {
		o.ChecksumAlgorithm = types.ChecksumAlgorithmCrc32c
	})
	require.NoError(t, err)
	hs := cc.headers("UploadPart")
	require.Len(t, hs, 6)
	for _, h := range hs[3:] {
		assert.Equal(t, "CRC32C", h["X-Amz-Sdk-Checksum-Algorithm"])
	}
}

// TestDownload covers the shapes of Download besides the large object of
// TestMultipart64MiB.
func TestDownload(t *testing.T) {
	cc := newCallCounter()
	st := newStore(t, testBucket, mustPolicy(t, testBucket, "dl/"), func(o *s3store.Options) {
		o.PartSize = s3store.MinPartSize
		o.ClientOptions = append(o.ClientOptions, cc.option)
	})
	ctx := context.Background()
	data := randomData(2*minPart+12345, 4)
	_, err := st.Put(ctx, "dl/obj.bin", bytes.NewReader(data))
	require.NoError(t, err)
	_, err = st.Put(ctx, "dl/empty", bytes.NewReader(nil))
	require.NoError(t, err)

	download := func(t *testing.T, key string, optFns ...func(*s3store.GetOptions)) ([]byte, int64, error) {
		t.Helper()
		buf := tmtypes.NewWriteAtBuffer(nil)
		n, err := st.Download(ctx, key, buf, optFns...)
		return buf.Bytes(), n, err
	}

	t.Run("whole object in parts", func(t *testing.T) {
		before := cc.count("GetObject")
		got, n, err := download(t, "dl/obj.bin")
		require.NoError(t, err)
		assert.Equal(t, int64(len(data)), n)
		assert.True(t, bytes.Equal(data, got), "content differs")
		assert.Equal(t, 3, cc.count("GetObject")-before)
	})
	t.Run("empty object", func(t *testing.T) {
		got, n, err := download(t, "dl/empty")
		require.NoError(t, err)
		assert.Zero(t, n)
		assert.Empty(t, got)
	})
	t.Run("ranges in one request", func(t *testing.T) {
		for _, rg := range []struct {
			off, n int64
			want   []byte
		}{
			{10, 100, data[10:110]},
			{s3store.MinPartSize - 5, s3store.MinPartSize + 10, data[minPart-5 : 2*minPart+5]},
			{int64(len(data)) - 7, 0, data[len(data)-7:]},    // to the end
			{int64(len(data)) - 7, 1000, data[len(data)-7:]}, // past the end: what there is
		} {
			before := cc.count("GetObject")
			got, n, err := download(t, "dl/obj.bin", func(o *s3store.GetOptions) { o.Offset, o.Length = rg.off, rg.n })
			require.NoError(t, err, "range %d+%d", rg.off, rg.n)
			assert.Equal(t, int64(len(rg.want)), n, "range %d+%d", rg.off, rg.n)
			assert.True(t, bytes.Equal(rg.want, got), "range %d+%d: content differs", rg.off, rg.n)
			assert.Equal(t, 1, cc.count("GetObject")-before, "range %d+%d", rg.off, rg.n)
		}
	})
	t.Run("changed ETag", func(t *testing.T) {
		_, n, err := download(t, "dl/obj.bin", func(o *s3store.GetOptions) { o.IfMatch = `"0123456789abcdef0123456789abcdef"` })
		require.Error(t, err)
		assert.Zero(t, n)
		var se *s3store.Error
		require.ErrorAs(t, err, &se)
		assert.Equal(t, "download", se.Op)
	})
	t.Run("missing key", func(t *testing.T) {
		_, n, err := download(t, "dl/missing")
		assert.ErrorIs(t, err, s3store.ErrNotFound)
		assert.Zero(t, n)
	})
	t.Run("no writer", func(t *testing.T) {
		_, err := st.Download(ctx, "dl/obj.bin", nil)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "io.WriterAt")
	})
}
