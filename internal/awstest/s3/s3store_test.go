package s3_test

import (
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"

	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/s3store"
)

func newStore(t testing.TB, srv *standin.Server, c sigv4.Credentials, bucket string) (*s3store.Store, *recorder) {
	t.Helper()
	cfg, rec := configFor(srv, c)
	st, err := s3store.New(cfg, bucket, func(o *s3store.Options) { o.UsePathStyle = true; o.PartSize = s3store.MinPartSize })
	require.NoError(t, err)
	return st, rec
}

// TestThroughS3Store runs the s3store calls an application makes against
// the stand-in, with the role policy s3store.Policy generates for a key
// prefix.
func TestThroughS3Store(t *testing.T) {
	for _, tr := range servers {
		t.Run(tr.name, func(t *testing.T) {
			srv := tr.srv()
			p := uniq(t)
			st, rec := newStore(t, srv, roleWith(t, storePolicy(t, bucketName, p)), bucketName)

			small := []byte(`{"note":"hello"}`)
			res, err := st.Put(ctx, p+"notes/1.json", bytes.NewReader(small), func(o *s3store.PutOptions) { o.ContentType = "application/json" })
			require.NoError(t, err)
			assert.Empty(t, res.UploadID, "small Put went up in parts")
			assert.Equal(t, standin.Checksum("CRC32", small), res.Checksum)

			// Unknown size (a reader that is neither a Seeker nor a
			// ReaderAt): the transfer manager goes multipart.
			big := randomBytes(t, 2*standin.MinPartSize+100)
			res, err = st.Put(ctx, p+"blobs/big.bin", struct{ io.Reader }{bytes.NewReader(big)})
			require.NoError(t, err)
			assert.NotEmpty(t, res.UploadID)
			assert.True(t, strings.HasSuffix(res.Checksum, "-3"), "composite checksum of 3 parts: %q", res.Checksum)
			assert.Len(t, rec.find("PUT", "blobs/big.bin"), 3, "UploadPart requests")
			stored, _ := srv.Object(bucketName, p+"blobs/big.bin")
			assert.True(t, bytes.Equal(stored, big), "multipart object differs from what was put")

			r, err := st.Get(ctx, p+"blobs/big.bin", func(o *s3store.GetOptions) { o.Offset, o.Length = standin.MinPartSize-2, 4 })
			require.NoError(t, err)
			got, err := io.ReadAll(r)
			require.NoError(t, err)
			r.Close()
			assert.Equal(t, big[standin.MinPartSize-2:standin.MinPartSize+2], got)
			assert.Equal(t, int64(len(big)), r.Object().Size)
			assert.Equal(t, int64(4), r.Len())
			buf := tmtypes.NewWriteAtBuffer(nil)
			n, err := st.Download(ctx, p+"blobs/big.bin", buf)
			require.NoError(t, err)
			assert.Equal(t, int64(len(big)), n)
			assert.True(t, bytes.Equal(buf.Bytes(), big), "downloaded content differs")

			obj, err := st.Stat(ctx, p+"notes/1.json")
			require.NoError(t, err)
			assert.Equal(t, int64(len(small)), obj.Size)
			assert.Equal(t, "application/json", obj.ContentType)
			assert.Equal(t, types.ChecksumAlgorithmCrc32, obj.ChecksumAlgorithm)
			assert.Equal(t, types.ChecksumTypeFullObject, obj.ChecksumType)
			assert.Equal(t, types.ServerSideEncryptionAes256, obj.ServerSideEncryption)

			_, err = st.Copy(ctx, p+"notes/1.json", p+"notes/2.json")
			require.NoError(t, err)
			for _, k := range []string{"notes/3.json", "notes/archive/0.json", "top.txt"} {
				_, err := st.Put(ctx, p+k, strings.NewReader(k))
				require.NoError(t, err)
			}
			var listed []string
			for o, err := range st.List(ctx, p, func(o *s3store.ListOptions) { o.Delimiter = "/"; o.PageSize = 1 }) {
				require.NoError(t, err)
				listed = append(listed, strings.TrimPrefix(o.Key, p))
			}
			assert.Equal(t, []string{"blobs/", "notes/", "top.txt"}, listed, "List with delimiter")
			listed = nil
			for o, err := range st.List(ctx, p+"notes/", func(o *s3store.ListOptions) { o.PageSize = 2 }) {
				require.NoError(t, err)
				listed = append(listed, strings.TrimPrefix(o.Key, p))
			}
			assert.Equal(t, []string{"notes/1.json", "notes/2.json", "notes/3.json", "notes/archive/0.json"}, listed)
			assert.Len(t, rec.find("GET", "/"+bucketName), 3+2, "ListObjectsV2 requests: 3 pages of 1, 2 of 2")

			require.NoError(t, st.Delete(ctx, p+"top.txt"))
			// Under a prefix policy ListBucket carries an s3:prefix
			// condition, which a HEAD request cannot satisfy: S3 answers a
			// missing key with 403, not 404.
			ok, err := st.Exists(ctx, p+"top.txt")
			assert.ErrorIs(t, err, s3store.ErrAccessDenied, "Exists on a deleted key under a prefix policy")
			assert.False(t, ok)
			ok, err = st.Exists(ctx, p+"notes/1.json")
			require.NoError(t, err)
			assert.True(t, ok)

			err = st.DeleteMany(ctx, []string{p + "notes/2.json", p + "notes/3.json", "elsewhere/x.json"})
			var de *s3store.DeleteError
			if assert.ErrorAs(t, err, &de, "DeleteMany with a key outside the policy") && assert.Len(t, de.Keys, 1) {
				assert.Equal(t, "elsewhere/x.json", de.Keys[0].Key)
				assert.Equal(t, "AccessDenied", de.Keys[0].Code)
			}
			for _, k := range []string{"notes/2.json", "notes/3.json"} {
				_, ok := srv.Object(bucketName, p+k)
				assert.False(t, ok, "%s not deleted", k)
			}

			_, err = st.Put(ctx, "outside/"+p+"x", strings.NewReader("x"))
			assert.ErrorIs(t, err, s3store.ErrAccessDenied, "Put outside the prefix")
		})
	}
}

// TestPresignedWithNetHTTP sends s3store's presigned GET and PUT with
// plain net/http, as a browser or curl would.
func TestPresignedWithNetHTTP(t *testing.T) {
	for _, tr := range servers {
		t.Run(tr.name, func(t *testing.T) {
			srv := tr.srv()
			p := uniq(t)
			st, _ := newStore(t, srv, roleWith(t, storePolicy(t, bucketName, p)), bucketName)
			hc := srv.Client()

			put, err := st.PresignPut(ctx, p+"upload.txt", 0)
			require.NoError(t, err)
			req, err := put.NewRequest(ctx, strings.NewReader("uploaded by URL"))
			require.NoError(t, err)
			resp, err := hc.Do(req)
			require.NoError(t, err)
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			require.Equal(t, http.StatusOK, resp.StatusCode, "presigned PUT: %s", b)
			got, _ := srv.Object(bucketName, p+"upload.txt")
			assert.Equal(t, "uploaded by URL", string(got))

			get, err := st.PresignGet(ctx, p+"upload.txt", 0, func(o *s3store.PresignOptions) { o.ResponseContentDisposition = `attachment; filename="u.txt"` })
			require.NoError(t, err)
			resp, err = hc.Get(get.URL())
			require.NoError(t, err)
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			assert.Equal(t, http.StatusOK, resp.StatusCode)
			assert.Equal(t, "uploaded by URL", string(b))
			assert.Equal(t, `attachment; filename="u.txt"`, resp.Header.Get("Content-Disposition"))

			// The URL is bound to its method and key.
			req, _ = http.NewRequest(http.MethodDelete, get.URL(), nil)
			code, s3code := do(t, hc, req)
			assert.Equal(t, http.StatusForbidden, code, "presigned GET URL used for DELETE")
			assert.Equal(t, "SignatureDoesNotMatch", s3code, "presigned GET URL used for DELETE")
			other, _ := http.NewRequest(http.MethodGet, strings.Replace(get.URL(), "upload.txt", "other.txt", 1), nil)
			code, s3code = do(t, hc, other)
			assert.Equal(t, http.StatusForbidden, code, "presigned URL with another key")
			assert.Equal(t, "SignatureDoesNotMatch", s3code, "presigned URL with another key")
		})
	}
}

// do sends req and returns the status and S3 error code.
func do(t testing.TB, hc *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := hc.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	code := ""
	if i := bytes.Index(b, []byte("<Code>")); i >= 0 {
		rest := b[i+len("<Code>"):]
		if j := bytes.Index(rest, []byte("</Code>")); j >= 0 {
			code = string(rest[:j])
		}
	}
	return resp.StatusCode, code
}
