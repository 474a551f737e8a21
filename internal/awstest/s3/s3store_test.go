package s3_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/s3store"
)

func newStore(t testing.TB, srv *standin.Server, c sigv4.Credentials, bucket string) (*s3store.Store, *recorder) {
	t.Helper()
	cfg, rec := configFor(srv, c)
	st, err := s3store.New(cfg, bucket, func(o *s3store.Options) { o.UsePathStyle = true; o.PartSize = manager.MinUploadPartSize })
	if err != nil {
		t.Fatal(err)
	}
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
			if err != nil {
				t.Fatal(err)
			}
			if res.UploadID != "" || res.Checksum != standin.Checksum("CRC32", small) {
				t.Errorf("small Put: %+v", res)
			}

			// Unknown size (a reader that is neither a Seeker nor a
			// ReaderAt): the transfer manager goes multipart.
			big := randomBytes(t, 2*standin.MinPartSize+100)
			res, err = st.Put(ctx, p+"blobs/big.bin", struct{ io.Reader }{bytes.NewReader(big)})
			if err != nil {
				t.Fatal(err)
			}
			if res.UploadID == "" || !strings.HasSuffix(res.Checksum, "-3") {
				t.Errorf("multipart Put: %+v", res)
			}
			if n := len(rec.find("PUT", "blobs/big.bin")); n != 3 {
				t.Errorf("%d UploadPart requests, want 3", n)
			}
			if stored, _ := srv.Object(bucketName, p+"blobs/big.bin"); !bytes.Equal(stored, big) {
				t.Error("multipart object differs from what was put")
			}

			r, err := st.Get(ctx, p+"blobs/big.bin", func(o *s3store.GetOptions) { o.Offset, o.Length = standin.MinPartSize-2, 4 })
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			r.Close()
			if !bytes.Equal(got, big[standin.MinPartSize-2:standin.MinPartSize+2]) || r.Object().Size != int64(len(big)) || r.Len() != 4 {
				t.Errorf("range Get: %x size %d len %d", got, r.Object().Size, r.Len())
			}
			var buf manager.WriteAtBuffer
			if n, err := st.Download(ctx, p+"blobs/big.bin", &buf); err != nil || n != int64(len(big)) || !bytes.Equal(buf.Bytes(), big) {
				t.Errorf("Download: %d bytes, %v", n, err)
			}

			obj, err := st.Stat(ctx, p+"notes/1.json")
			if err != nil {
				t.Fatal(err)
			}
			if obj.Size != int64(len(small)) || obj.ContentType != "application/json" || obj.ChecksumAlgorithm != types.ChecksumAlgorithmCrc32 ||
				obj.ChecksumType != types.ChecksumTypeFullObject || obj.ServerSideEncryption != types.ServerSideEncryptionAes256 {
				t.Errorf("Stat: %+v", obj)
			}

			if _, err := st.Copy(ctx, p+"notes/1.json", p+"notes/2.json"); err != nil {
				t.Fatal(err)
			}
			for _, k := range []string{"notes/3.json", "notes/archive/0.json", "top.txt"} {
				if _, err := st.Put(ctx, p+k, strings.NewReader(k)); err != nil {
					t.Fatal(err)
				}
			}
			var listed []string
			for o, err := range st.List(ctx, p, func(o *s3store.ListOptions) { o.Delimiter = "/"; o.PageSize = 1 }) {
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, strings.TrimPrefix(o.Key, p))
			}
			if want := "blobs/ notes/ top.txt"; strings.Join(listed, " ") != want {
				t.Errorf("List with delimiter: %q, want %q", strings.Join(listed, " "), want)
			}
			listed = nil
			for o, err := range st.List(ctx, p+"notes/", func(o *s3store.ListOptions) { o.PageSize = 2 }) {
				if err != nil {
					t.Fatal(err)
				}
				listed = append(listed, strings.TrimPrefix(o.Key, p))
			}
			if want := "notes/1.json notes/2.json notes/3.json notes/archive/0.json"; strings.Join(listed, " ") != want {
				t.Errorf("List: %q, want %q", strings.Join(listed, " "), want)
			}
			if n := len(rec.find("GET", "/"+bucketName)); n != 3+2 {
				t.Errorf("%d ListObjectsV2 requests, want 5 (3 pages of 1, 2 of 2)", n)
			}

			if err := st.Delete(ctx, p+"top.txt"); err != nil {
				t.Fatal(err)
			}
			if ok, err := st.Exists(ctx, p+"top.txt"); err == nil || ok || !errors.Is(err, s3store.ErrAccessDenied) {
				// Under a prefix policy ListBucket carries an s3:prefix
				// condition, which a HEAD request cannot satisfy: S3 answers
				// a missing key with 403, not 404.
				t.Errorf("Exists on a deleted key under a prefix policy: %v %v, want access denied", ok, err)
			}
			if ok, err := st.Exists(ctx, p+"notes/1.json"); !ok || err != nil {
				t.Errorf("Exists: %v %v", ok, err)
			}

			err = st.DeleteMany(ctx, []string{p + "notes/2.json", p + "notes/3.json", "elsewhere/x.json"})
			var de *s3store.DeleteError
			if !errors.As(err, &de) || len(de.Keys) != 1 || de.Keys[0].Key != "elsewhere/x.json" || de.Keys[0].Code != "AccessDenied" {
				t.Errorf("DeleteMany with a key outside the policy: %v", err)
			}
			for _, k := range []string{"notes/2.json", "notes/3.json"} {
				if _, ok := srv.Object(bucketName, p+k); ok {
					t.Errorf("%s not deleted", k)
				}
			}

			_, err = st.Put(ctx, "outside/"+p+"x", strings.NewReader("x"))
			if !errors.Is(err, s3store.ErrAccessDenied) {
				t.Errorf("Put outside the prefix: %v, want ErrAccessDenied", err)
			}
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
			if err != nil {
				t.Fatal(err)
			}
			req, err := put.NewRequest(ctx, strings.NewReader("uploaded by URL"))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("presigned PUT: %d %s", resp.StatusCode, b)
			}
			if got, _ := srv.Object(bucketName, p+"upload.txt"); string(got) != "uploaded by URL" {
				t.Errorf("stored %q", got)
			}

			get, err := st.PresignGet(ctx, p+"upload.txt", 0, func(o *s3store.PresignOptions) { o.ResponseContentDisposition = `attachment; filename="u.txt"` })
			if err != nil {
				t.Fatal(err)
			}
			resp, err = hc.Get(get.URL())
			if err != nil {
				t.Fatal(err)
			}
			b, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || string(b) != "uploaded by URL" || resp.Header.Get("Content-Disposition") != `attachment; filename="u.txt"` {
				t.Errorf("presigned GET: %d %q %q", resp.StatusCode, b, resp.Header.Get("Content-Disposition"))
			}

			// The URL is bound to its method and key.
			req, _ = http.NewRequest(http.MethodDelete, get.URL(), nil)
			if code, s3code := do(t, hc, req); code != http.StatusForbidden || s3code != "SignatureDoesNotMatch" {
				t.Errorf("presigned GET URL used for DELETE: %d %s", code, s3code)
			}
			other, _ := http.NewRequest(http.MethodGet, strings.Replace(get.URL(), "upload.txt", "other.txt", 1), nil)
			if code, s3code := do(t, hc, other); code != http.StatusForbidden || s3code != "SignatureDoesNotMatch" {
				t.Errorf("presigned URL with another key: %d %s", code, s3code)
			}
		})
	}
}

// do sends req and returns the status and S3 error code.
func do(t testing.TB, hc *http.Client, req *http.Request) (int, string) {
	t.Helper()
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
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
