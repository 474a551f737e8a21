package s3_test

import (
	"bytes"
	b64std "encoding/base64"
	"fmt"
	"strings"
	"testing"

	standin "github.com/irsakit/irsakit/internal/awstest/s3"
)

func TestChecksumVectors(t *testing.T) {
	// Check values of the catalogue of parametrised CRC algorithms for
	// "123456789", and the SHA digests of the same input.
	for _, tc := range []struct{ alg, hexWant string }{
		{"CRC32", "cbf43926"},
		{"CRC32C", "e3069283"},
		{"CRC64NVME", "ae8b14860a799888"},
		{"SHA1", "f7c3bc1d808e04732adf679965ccc34ca7ae3441"},
		{"SHA256", "15e2b0d3c33891ebb0f1ef609ec419420c20e320ce94c65fbc8c3312448eb225"},
	} {
		sum := standin.Checksum(tc.alg, []byte("123456789"))
		if got := fmt.Sprintf("%x", mustB64(t, sum)); got != tc.hexWant {
			t.Errorf("%s = %s, want %s", tc.alg, got, tc.hexWant)
		}
	}
	if standin.Checksum("MD5", nil) != "" {
		t.Error("unknown algorithm accepted")
	}
}

func TestDecodeAWSChunked(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     string
		trailers map[string]string
		ok       bool
	}{
		{"one chunk", "5\r\nhello\r\n0\r\nx-amz-checksum-crc32:abc=\r\n\r\n", "hello", map[string]string{"x-amz-checksum-crc32": "abc="}, true},
		{"two chunks", "3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n", "hello", map[string]string{}, true},
		{"empty", "0\r\n\r\n", "", map[string]string{}, true},
		{"upper-case hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", map[string]string{}, true},
		{"chunk signature in unsigned body", "5;chunk-signature=00\r\nhello\r\n0\r\n\r\n", "", nil, false},
		{"short chunk", "6\r\nhello\r\n0\r\n\r\n", "", nil, false},
		{"no final CRLF", "5\r\nhello\r\n0\r\n", "", nil, false},
		{"bare LF", "5\nhello\n0\n\n", "", nil, false},
		{"bad size", "zz\r\nhello\r\n0\r\n\r\n", "", nil, false},
		{"negative size", "-5\r\nhello\r\n0\r\n\r\n", "", nil, false},
		{"trailing garbage", "0\r\n\r\nextra", "", nil, false},
		{"trailer without colon", "0\r\nnocolon\r\n\r\n", "", nil, false},
		{"duplicate trailer", "0\r\na:1\r\na:2\r\n\r\n", "", nil, false},
		{"over the limit", "11\r\n" + strings.Repeat("x", 17) + "\r\n0\r\n\r\n", "", nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, tr, err := standin.DecodeAWSChunked(strings.NewReader(tc.in), 16)
			if (err == nil) != tc.ok {
				t.Fatalf("err %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (string(got) != tc.want || fmt.Sprint(tr) != fmt.Sprint(tc.trailers)) {
				t.Errorf("got %q %v, want %q %v", got, tr, tc.want, tc.trailers)
			}
		})
	}
}

func FuzzDecodeAWSChunked(f *testing.F) {
	f.Add([]byte("5\r\nhello\r\n0\r\nx-amz-checksum-crc32:abc=\r\n\r\n"))
	f.Add([]byte("0\r\n\r\n"))
	f.Add([]byte("3\r\nhel\r\n2\r\nlo\r\n0\r\n\r\n"))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, tr, err := standin.DecodeAWSChunked(bytes.NewReader(in), 1<<16)
		if err != nil {
			return
		}
		if len(got) > len(in) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(in))
		}
		// Re-encoding what was decoded decodes to the same payload.
		var b bytes.Buffer
		if len(got) > 0 {
			fmt.Fprintf(&b, "%x\r\n%s\r\n", len(got), got)
		}
		b.WriteString("0\r\n")
		for k, v := range tr {
			b.WriteString(k + ":" + v + "\r\n")
		}
		b.WriteString("\r\n")
		again, _, err := standin.DecodeAWSChunked(&b, 1<<16)
		if err != nil || !bytes.Equal(again, got) {
			t.Fatalf("re-encoded body: %v", err)
		}
	})
}

func TestParseRange(t *testing.T) {
	for _, tc := range []struct {
		v                 string
		size              int64
		start, end        int64
		ok, unsatisfiable bool
	}{
		{"bytes=0-4", 10, 0, 4, true, false},
		{"bytes=5-", 10, 5, 9, true, false},
		{"bytes=-3", 10, 7, 9, true, false},
		{"bytes=-30", 10, 0, 9, true, false},
		{"bytes=8-100", 10, 8, 9, true, false},
		{"bytes=10-", 10, 0, 0, false, true},
		{"bytes=0-", 0, 0, 0, false, true},
		{"bytes=-0", 10, 0, 0, false, true},
		{"bytes=5-2", 10, 0, 0, false, false},
		{"bytes=0-1,3-4", 10, 0, 0, false, false},
		{"items=0-1", 10, 0, 0, false, false},
		{"bytes=+1-2", 10, 0, 0, false, false},
	} {
		start, end, ok, unsat := standin.ParseRange(tc.v, tc.size)
		if ok != tc.ok || unsat != tc.unsatisfiable || (ok && (start != tc.start || end != tc.end)) {
			t.Errorf("%q of %d: %d-%d ok=%v unsat=%v", tc.v, tc.size, start, end, ok, unsat)
		}
	}
}

func FuzzParseRange(f *testing.F) {
	f.Add("bytes=0-4", int64(10))
	f.Add("bytes=-3", int64(10))
	f.Add("bytes=5-", int64(0))
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			return
		}
		start, end, ok, unsat := standin.ParseRange(v, size)
		if ok && unsat {
			t.Fatal("both satisfiable and not")
		}
		if ok && (start < 0 || end < start || end >= size) {
			t.Fatalf("%q of %d: range %d-%d outside the object", v, size, start, end)
		}
	})
}

func FuzzParseCopySource(f *testing.F) {
	f.Add("bucket/key")
	f.Add("/bucket/dir/key%20with%20space?versionId=null")
	f.Add("bucket")
	f.Fuzz(func(t *testing.T, v string) {
		b, k, _, err := standin.ParseCopySource(v)
		if err == nil && (b == "" || k == "") {
			t.Fatalf("%q: bucket %q key %q accepted", v, b, k)
		}
	})
}

func FuzzContinuationToken(f *testing.F) {
	f.Add(standin.EncodeToken('k', "a/b"))
	f.Add("garbage")
	f.Fuzz(func(t *testing.T, tok string) {
		kind, v, ok := standin.DecodeToken(tok)
		if !ok {
			return
		}
		if kind != 'k' && kind != 'p' {
			t.Fatalf("kind %q", kind)
		}
		if k2, v2, ok := standin.DecodeToken(standin.EncodeToken(kind, v)); !ok || k2 != kind || v2 != v {
			t.Fatal("token does not round-trip")
		}
	})
}

func mustB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := b64std.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
