//lint:file-ignore SA1019 feature/s3/manager is deprecated in favour of feature/s3/transfermanager, which is still v0 (unstable API); manager is the stable, supported transfer manager this module pins.

package s3store_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

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

	// A plain io.Reader: size unknown, parts buffered.
	res, err := st.Put(ctx, "mp/big.bin", struct{ io.Reader }{bytes.NewReader(data)}, func(o *s3store.PutOptions) {
		o.ContentType = "application/octet-stream"
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.UploadID == "" {
		t.Error("64 MiB went up in one request")
	}
	if got := cc.count("UploadPart"); got != size/partSize {
		t.Errorf("UploadPart calls = %d, want %d", got, size/partSize)
	}
	for i, h := range cc.headers("UploadPart") {
		if h["X-Amz-Sdk-Checksum-Algorithm"] != "SHA256" {
			t.Errorf("part %d sent without a SHA-256 checksum: %v", i, h)
		}
	}
	wantComposite := compositeSHA256(data, partSize)
	if res.Checksum != wantComposite {
		t.Errorf("Put checksum = %q, want %q", res.Checksum, wantComposite)
	}

	obj, err := st.Stat(ctx, "mp/big.bin")
	if err != nil {
		t.Fatal(err)
	}
	if obj.Size != size || obj.ChecksumAlgorithm != types.ChecksumAlgorithmSha256 || obj.Checksum != wantComposite {
		t.Errorf("Stat = size %d, %s %q, want %d, SHA256 %q", obj.Size, obj.ChecksumAlgorithm, obj.Checksum, size, wantComposite)
	}
	if obj.ChecksumType != "" && obj.ChecksumType != types.ChecksumTypeComposite {
		t.Errorf("checksum type = %q, want COMPOSITE", obj.ChecksumType)
	}

	t.Run("stream", func(t *testing.T) {
		r, err := st.Get(ctx, "mp/big.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		h := sha256.New()
		n, err := io.Copy(h, r)
		if err != nil || n != size || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("streamed %d bytes, err %v, SHA-256 match %v", n, err, bytes.Equal(h.Sum(nil), want[:]))
		}
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
			if err != nil {
				t.Fatalf("range %d+%d: %v", rg.off, rg.n, err)
			}
			got := readAll(t, r)
			end := rg.off + rg.n
			if rg.n == 0 {
				end = size
			}
			if !bytes.Equal(got, data[rg.off:end]) {
				t.Errorf("range %d+%d: %d bytes, content differs", rg.off, rg.n, len(got))
			}
			if r.Len() != end-rg.off || r.Object().Size != size {
				t.Errorf("range %d+%d: Len %d, Size %d", rg.off, rg.n, r.Len(), r.Object().Size)
			}
		}
	})

	t.Run("parallel download", func(t *testing.T) {
		before := cc.count("GetObject")
		buf := manager.NewWriteAtBuffer(make([]byte, 0, size))
		n, err := st.Download(ctx, "mp/big.bin", buf)
		if err != nil {
			t.Fatal(err)
		}
		got := sha256.Sum256(buf.Bytes())
		if n != size || got != want {
			t.Fatalf("downloaded %d bytes, SHA-256 match %v", n, got == want)
		}
		if calls := cc.count("GetObject") - before; calls != size/partSize {
			t.Errorf("download made %d GETs, want %d ranged parts", calls, size/partSize)
		}
	})

	t.Run("file upload", func(t *testing.T) {
		// An *os.File is an io.ReaderAt: parts are read in place.
		path := filepath.Join(t.TempDir(), "big.bin")
		if err := os.WriteFile(path, data[:20<<20], 0o600); err != nil {
			t.Fatal(err)
		}
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := st.Put(ctx, "mp/file.bin", f); err != nil {
			t.Fatal(err)
		}
		obj, err := st.Stat(ctx, "mp/file.bin")
		if err != nil {
			t.Fatal(err)
		}
		if want := compositeSHA256(data[:20<<20], partSize); obj.Size != 20<<20 || obj.Checksum != want {
			t.Errorf("Stat = %d %q, want %d %q", obj.Size, obj.Checksum, 20<<20, want)
		}
	})
}
