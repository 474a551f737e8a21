package s3

import (
	"crypto/md5"  //nolint:gosec // S3's ETag and Content-MD5 are MD5 by definition
	"crypto/sha1" //nolint:gosec // S3's SHA1 checksum algorithm
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"hash"
	"hash/crc32"
	"hash/crc64"
	"strconv"
	"strings"
)

// Checksum algorithms S3 computes and verifies, as they appear in
// x-amz-checksum-algorithm and x-amz-sdk-checksum-algorithm.
const (
	CRC32     = "CRC32"
	CRC32C    = "CRC32C"
	CRC64NVME = "CRC64NVME"
	SHA1      = "SHA1"
	SHA256    = "SHA256"
)

// Checksum types of a stored object's checksum.
const (
	FullObject = "FULL_OBJECT"
	Composite  = "COMPOSITE"
)

// algorithms in the order S3 documents them.
var algorithms = []string{CRC32, CRC32C, CRC64NVME, SHA1, SHA256}

// crc64NVME is CRC-64/NVME: polynomial 0xad93d23594c93659, reflected
// (0x9a6c9329ac4bc9b5), initial value and final XOR all ones — which is
// exactly how hash/crc64 computes with that table.
var crc64NVME = crc64.MakeTable(0x9a6c9329ac4bc9b5)

var crc32C = crc32.MakeTable(crc32.Castagnoli)

// newHash returns the hash of an algorithm name (upper case), or nil.
func newHash(alg string) hash.Hash {
	switch alg {
	case CRC32:
		return crc32.NewIEEE()
	case CRC32C:
		return crc32.New(crc32C)
	case CRC64NVME:
		return crc64.New(crc64NVME)
	case SHA1:
		return sha1.New() //nolint:gosec // see import
	case SHA256:
		return sha256.New()
	}
	return nil
}

// checksumOf returns the base64 checksum of data with alg.
func checksumOf(alg string, data []byte) string {
	h := newHash(alg)
	h.Write(data)
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}

// Checksum returns the base64 checksum S3 reports for data with alg (CRC32,
// CRC32C, CRC64NVME, SHA1 or SHA256), or "" for an unknown algorithm.
func Checksum(alg string, data []byte) string {
	if newHash(strings.ToUpper(alg)) == nil {
		return ""
	}
	return checksumOf(strings.ToUpper(alg), data)
}

// checksumHeader is the header carrying alg's value: x-amz-checksum-crc32...
func checksumHeader(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

// algorithmOfHeader maps x-amz-checksum-ALG to ALG (upper case) when ALG is
// known.
func algorithmOfHeader(h string) (string, bool) {
	rest, ok := strings.CutPrefix(strings.ToLower(h), "x-amz-checksum-")
	if !ok {
		return "", false
	}
	alg := strings.ToUpper(rest)
	return alg, newHash(alg) != nil
}

// validAlgorithm reports whether alg (any case) is one S3 supports.
func validAlgorithm(alg string) bool { return newHash(strings.ToUpper(alg)) != nil }

// compositeChecksum is S3's checksum of a multipart object built from its
// parts' checksums: the algorithm over the concatenated binary part
// checksums, with a "-N" suffix.
func compositeChecksum(alg string, partSums []string) string {
	h := newHash(alg)
	for _, s := range partSums {
		b, _ := base64.StdEncoding.DecodeString(s)
		h.Write(b)
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(partSums))
}

// etagOf is the ETag of a single-part object: the hex MD5 of its content,
// quoted.
func etagOf(data []byte) string {
	s := md5.Sum(data) //nolint:gosec // see import
	return `"` + hex.EncodeToString(s[:]) + `"`
}

// multipartETag is the ETag of a completed multipart upload: the MD5 of the
// concatenated binary part MD5s, "-N".
func multipartETag(partETags []string) string {
	h := md5.New() //nolint:gosec // see import
	for _, e := range partETags {
		b, _ := hex.DecodeString(strings.Trim(e, `"`))
		h.Write(b)
	}
	return `"` + hex.EncodeToString(h.Sum(nil)) + "-" + strconv.Itoa(len(partETags)) + `"`
}

func md5Base64(data []byte) string {
	s := md5.Sum(data) //nolint:gosec // see import
	return base64.StdEncoding.EncodeToString(s[:])
}
