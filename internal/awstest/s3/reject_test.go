package s3_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	standin "github.com/irsakit/irsakit/internal/awstest/s3"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
)

func hexSHA256(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// raw describes a hand-signed request: what the SDK would never send.
type raw struct {
	method, path string
	body         []byte
	mode         string // x-amz-content-sha256; default: the body's SHA-256
	header       http.Header
	region       string    // signing region; default region
	at           time.Time // signing time; default now
	// after edits the request once it is signed.
	after func(*http.Request)
}

func (r raw) send(t testing.TB, srv *standin.Server, c sigv4.Credentials) (int, string) {
	t.Helper()
	req, err := http.NewRequest(r.method, srv.URL()+r.path, bytes.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range r.header {
		req.Header[k] = vs
	}
	mode := r.mode
	if mode == "" {
		mode = hexSHA256(r.body)
	}
	req.Header.Set("X-Amz-Content-Sha256", mode)
	at, reg := r.at, r.region
	if at.IsZero() {
		at = time.Now()
	}
	if reg == "" {
		reg = region
	}
	creds := aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken}
	if err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).
		SignHTTP(ctx, creds, req, mode, "s3", reg, at); err != nil {
		t.Fatal(err)
	}
	if r.after != nil {
		r.after(req)
	}
	return do(t, srv.Client(), req)
}

// chunked frames payload as aws-chunked with one data chunk and the given
// trailers ("name:value").
func chunked(payload []byte, trailers ...string) []byte {
	var b bytes.Buffer
	if len(payload) > 0 {
		fmt.Fprintf(&b, "%x\r\n%s\r\n", len(payload), payload)
	}
	b.WriteString("0\r\n")
	for _, tr := range trailers {
		b.WriteString(tr + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func chunkedHeader(decodedLen int, trailer string) http.Header {
	h := http.Header{}
	h.Set("Content-Encoding", "aws-chunked")
	h.Set("X-Amz-Decoded-Content-Length", strconv.Itoa(decodedLen))
	if trailer != "" {
		h.Set("X-Amz-Trailer", trailer)
	}
	return h
}

// TestRejections proves the stand-in refuses what S3 refuses, with S3's
// status and code.
func TestRejections(t *testing.T) {
	p := uniq(t)
	full := roleWith(t, storePolicy(t, bucketName, ""))
	prefixed := roleWith(t, storePolicy(t, bucketName, p+"mine/"))
	getOnly := roleWith(t, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"arn:aws:s3:::`+bucketName+`/*"}]}`))
	expired, err := reg.IssueSession(full.RoleARN, "expired", -time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	revoked := roleWith(t, storePolicy(t, bucketName, ""))
	reg.Revoke(revoked.AccessKeyID)
	user := reg.AddUser(account, "alice")
	unknown := sigv4.Credentials{AccessKeyID: "AKIAIOSFODNN7EXAMPLE", SecretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"}
	wrongToken := full
	wrongToken.SessionToken = "IQoJb3JpZ2luX2VjNOTTHEONE"
	wrongSecret := full
	wrongSecret.SecretAccessKey = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"

	key := "/" + bucketName + "/" + p + "mine/obj.txt"
	content := []byte("twelve bytes")
	if code, s3code := (raw{method: "PUT", path: key, body: content}).send(t, plain, full); code != 200 {
		t.Fatalf("setup PUT: %d %s", code, s3code)
	}
	goodCRC := "x-amz-checksum-crc32:" + standin.Checksum("CRC32", content)

	cases := []struct {
		name     string
		req      raw
		creds    sigv4.Credentials
		status   int
		code     string
		anon     bool
		postSend func(t *testing.T)
	}{
		{name: "anonymous", req: raw{method: "GET", path: key}, anon: true, status: 403, code: "AccessDenied"},
		{name: "unknown access key", req: raw{method: "GET", path: key}, creds: unknown, status: 403, code: "InvalidAccessKeyId"},
		{name: "revoked access key", req: raw{method: "GET", path: key}, creds: revoked, status: 403, code: "InvalidAccessKeyId"},
		{name: "wrong secret key", req: raw{method: "GET", path: key}, creds: wrongSecret, status: 403, code: "SignatureDoesNotMatch"},
		{name: "tampered signature", req: raw{method: "GET", path: key, after: func(r *http.Request) {
			a := r.Header.Get("Authorization")
			last := a[len(a)-1]
			flip := byte('0')
			if last == '0' {
				flip = '1'
			}
			r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
		}}, creds: full, status: 403, code: "SignatureDoesNotMatch"},
		{name: "path changed after signing", req: raw{method: "GET", path: key, after: func(r *http.Request) { r.URL.Path += "x" }}, creds: full, status: 403, code: "SignatureDoesNotMatch"},
		{name: "wrong session token", req: raw{method: "GET", path: key}, creds: wrongToken, status: 400, code: "InvalidToken"},
		{name: "session key without its token", req: raw{method: "GET", path: key}, creds: sigv4.Credentials{AccessKeyID: full.AccessKeyID, SecretAccessKey: full.SecretAccessKey}, status: 403, code: "InvalidAccessKeyId"},
		{name: "expired credentials", req: raw{method: "GET", path: key}, creds: expired, status: 400, code: "ExpiredToken"},
		{name: "wrong region", req: raw{method: "GET", path: key, region: "us-west-2"}, creds: full, status: 400, code: "AuthorizationHeaderMalformed"},
		{name: "clock skew", req: raw{method: "GET", path: key, at: time.Now().Add(-20 * time.Minute)}, creds: full, status: 403, code: "RequestTimeTooSkewed"},
		{name: "payload hash mismatch", req: raw{method: "PUT", path: key, body: content, mode: hexSHA256([]byte("other"))}, creds: full, status: 400, code: "XAmzContentSHA256Mismatch"},
		{name: "unsigned x-amz header", req: raw{method: "PUT", path: key, body: content, after: func(r *http.Request) { r.Header.Set("X-Amz-Meta-Evil", "1") }}, creds: full, status: 403, code: "AccessDenied"},
		{name: "no x-amz-content-sha256", req: raw{method: "GET", path: key, after: func(r *http.Request) { r.Header.Del("X-Amz-Content-Sha256") }}, creds: full, status: 400, code: "InvalidRequest"},
		{name: "signed streaming", req: raw{method: "PUT", path: key, body: content, mode: "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", header: chunkedHeader(len(content), "")}, creds: full, status: 501, code: "NotImplemented"},
		{name: "IAM user without policies", req: raw{method: "GET", path: key}, creds: user, status: 403, code: "AccessDenied"},
		{name: "key outside the policy", req: raw{method: "GET", path: "/" + bucketName + "/" + p + "theirs/obj.txt"}, creds: prefixed, status: 403, code: "AccessDenied"},
		{name: "bucket outside the policy", req: raw{method: "PUT", path: "/" + otherName + "/" + p + "mine/x", body: content}, creds: prefixed, status: 403, code: "AccessDenied"},
		{name: "list outside the prefix", req: raw{method: "GET", path: "/" + bucketName + "?list-type=2&prefix=" + url.QueryEscape(p)}, creds: prefixed, status: 403, code: "AccessDenied"},
		{name: "list without a prefix", req: raw{method: "GET", path: "/" + bucketName + "?list-type=2"}, creds: prefixed, status: 403, code: "AccessDenied"},
		{name: "list inside the prefix", req: raw{method: "GET", path: "/" + bucketName + "?list-type=2&prefix=" + url.QueryEscape(p+"mine/")}, creds: prefixed, status: 200},
		{name: "bad continuation token", req: raw{method: "GET", path: "/" + bucketName + "?list-type=2&continuation-token=garbage"}, creds: full, status: 400, code: "InvalidArgument"},
		{name: "no such bucket", req: raw{method: "GET", path: "/no-such-bucket-here/x"}, creds: full, status: 404, code: "NoSuchBucket"},
		{name: "missing key with ListBucket", req: raw{method: "GET", path: key + ".missing"}, creds: full, status: 404, code: "NoSuchKey"},
		{name: "missing key without ListBucket", req: raw{method: "GET", path: key + ".missing"}, creds: getOnly, status: 403, code: "AccessDenied"},
		{name: "existing key, GetObject only", req: raw{method: "GET", path: key}, creds: getOnly, status: 200},
		{name: "unsatisfiable range", req: raw{method: "GET", path: key, header: http.Header{"Range": {"bytes=100-200"}}}, creds: full, status: 416, code: "InvalidRange"},
		{name: "If-Match mismatch", req: raw{method: "GET", path: key, header: http.Header{"If-Match": {`"0123"`}}}, creds: full, status: 412, code: "PreconditionFailed"},
		{name: "If-None-Match on an existing key", req: raw{method: "PUT", path: key, body: content, header: http.Header{"If-None-Match": {"*"}}}, creds: full, status: 412, code: "PreconditionFailed"},
		{name: "wrong checksum header", req: raw{method: "PUT", path: key, body: content, header: http.Header{"X-Amz-Checksum-Crc32": {standin.Checksum("CRC32", []byte("other"))}}}, creds: full, status: 400, code: "BadDigest"},
		{name: "wrong Content-MD5", req: raw{method: "PUT", path: key, body: content, header: http.Header{"Content-Md5": {"1B2M2Y8AsgTpgAmY7PhCfg=="}}}, creds: full, status: 400, code: "BadDigest"},
		{name: "chunked upload", req: raw{method: "PUT", path: key + ".chunked", body: chunked(content, goodCRC), mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: chunkedHeader(len(content), "x-amz-checksum-crc32")}, creds: full, status: 200, postSend: func(t *testing.T) {
			if got, _ := plain.Object(bucketName, strings.TrimPrefix(key, "/"+bucketName+"/")+".chunked"); !bytes.Equal(got, content) {
				t.Errorf("chunked upload stored %q", got)
			}
		}},
		{name: "chunked upload, bad trailing checksum", req: raw{method: "PUT", path: key, body: chunked(content, "x-amz-checksum-crc32:"+standin.Checksum("CRC32", []byte("other"))),
			mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", header: chunkedHeader(len(content), "x-amz-checksum-crc32")}, creds: full, status: 400, code: "BadDigest"},
		{name: "chunked upload, bad CRC64NVME", req: raw{method: "PUT", path: key, body: chunked(content, "x-amz-checksum-crc64nvme:"+standin.Checksum("CRC64NVME", []byte("other"))),
			mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER", header: chunkedHeader(len(content), "x-amz-checksum-crc64nvme")}, creds: full, status: 400, code: "BadDigest"},
		{name: "chunked upload, announced trailer missing", req: raw{method: "PUT", path: key, body: chunked(content), mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: chunkedHeader(len(content), "x-amz-checksum-crc32")}, creds: full, status: 400, code: "InvalidRequest"},
		{name: "chunked upload, wrong decoded length", req: raw{method: "PUT", path: key, body: chunked(content, goodCRC), mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: chunkedHeader(len(content)+1, "x-amz-checksum-crc32")}, creds: full, status: 400, code: "IncompleteBody"},
		{name: "chunked upload, truncated", req: raw{method: "PUT", path: key, body: chunked(content, goodCRC)[:10], mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: chunkedHeader(len(content), "x-amz-checksum-crc32")}, creds: full, status: 400, code: "IncompleteBody"},
		{name: "chunked upload without decoded length", req: raw{method: "PUT", path: key, body: chunked(content, goodCRC), mode: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
			header: http.Header{"Content-Encoding": {"aws-chunked"}, "X-Amz-Trailer": {"x-amz-checksum-crc32"}}}, creds: full, status: 411, code: "MissingContentLength"},
		{name: "unsupported subresource", req: raw{method: "GET", path: key + "?acl"}, creds: full, status: 501, code: "NotImplemented"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var code int
			var s3code string
			if tc.anon {
				req, _ := http.NewRequest(tc.req.method, plain.URL()+tc.req.path, nil)
				code, s3code = do(t, plain.Client(), req)
			} else {
				code, s3code = tc.req.send(t, plain, tc.creds)
			}
			if code != tc.status || s3code != tc.code {
				t.Errorf("%d %s, want %d %s", code, s3code, tc.status, tc.code)
			}
			if tc.postSend != nil {
				tc.postSend(t)
			}
		})
	}
	if got, _ := plain.Object(bucketName, strings.TrimPrefix(key, "/"+bucketName+"/")); !bytes.Equal(got, content) {
		t.Errorf("a refused write changed the object: %q", got)
	}
}

// TestPresignedRejections: expired, tampered and wrong-region presigned
// URLs.
func TestPresignedRejections(t *testing.T) {
	p := uniq(t)
	c := roleWith(t, storePolicy(t, bucketName, ""))
	if code, _ := (raw{method: "PUT", path: "/" + bucketName + "/" + p + "k", body: []byte("v")}).send(t, plain, c); code != 200 {
		t.Fatal("setup failed")
	}
	presign := func(at time.Time, expires time.Duration, reg string) string {
		req, _ := http.NewRequest(http.MethodGet, plain.URL()+"/"+bucketName+"/"+p+"k", nil)
		q := req.URL.Query()
		q.Set("X-Amz-Expires", strconv.Itoa(int(expires.Seconds())))
		req.URL.RawQuery = q.Encode()
		u, _, err := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).PresignHTTP(ctx,
			aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken},
			req, "UNSIGNED-PAYLOAD", "s3", reg, at)
		if err != nil {
			t.Fatal(err)
		}
		return u
	}
	get := func(u string) (int, string) {
		req, _ := http.NewRequest(http.MethodGet, u, nil)
		return do(t, plain.Client(), req)
	}
	if code, s3code := get(presign(time.Now(), time.Minute, region)); code != 200 {
		t.Fatalf("valid presigned URL: %d %s", code, s3code)
	}
	for _, tc := range []struct {
		name   string
		url    string
		status int
		code   string
	}{
		{"expired", presign(time.Now().Add(-time.Hour), time.Minute, region), 403, "AccessDenied"},
		{"tampered", strings.Replace(presign(time.Now(), time.Minute, region), "X-Amz-Expires=60", "X-Amz-Expires=600", 1), 403, "SignatureDoesNotMatch"},
		{"wrong region", presign(time.Now(), time.Minute, "us-west-2"), 400, "AuthorizationQueryParametersError"},
		{"over seven days", presign(time.Now(), 8*24*time.Hour, region), 400, "AuthorizationQueryParametersError"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, s3code := get(tc.url); code != tc.status || s3code != tc.code {
				t.Errorf("%d %s, want %d %s", code, s3code, tc.status, tc.code)
			}
		})
	}
}

// TestSDKRejections checks refusals as the SDK reports them.
func TestSDKRejections(t *testing.T) {
	p := uniq(t)
	client, _ := clientFor(plain, roleWith(t, storePolicy(t, bucketName, p)))
	_, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "k"), Body: strings.NewReader("data"),
		ChecksumCRC32: aws.String(standin.Checksum("CRC32", []byte("not the data")))})
	if apiCode(err) != "BadDigest" {
		t.Errorf("PutObject with a wrong CRC32: %v, want BadDigest", err)
	}
	// Over HTTPS a body of unknown length goes aws-chunked without
	// x-amz-decoded-content-length, which S3 refuses (use the transfer
	// manager, as s3store does).
	secureClient, _ := clientFor(secure, roleWith(t, storePolicy(t, bucketName, p)))
	_, err = secureClient.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "k"), Body: struct{ io.Reader }{strings.NewReader("data")}})
	if apiCode(err) != "MissingContentLength" {
		t.Errorf("PutObject of unknown length over HTTPS: %v, want MissingContentLength", err)
	}
	// A refused upload is answered as refused, whether the client waits
	// for "100 Continue" (over 2 MiB) or is still sending.
	for _, size := range []int{1 << 20, 3 << 20} {
		_, err = secureClient.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String("elsewhere/big"), Body: bytes.NewReader(make([]byte, size))})
		if apiCode(err) != "AccessDenied" {
			t.Errorf("PutObject of %d bytes outside the policy: %v, want AccessDenied", size, err)
		}
	}
	// A HEAD answer has no body: the SDK names the error after the status.
	_, err = client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "missing")})
	if apiCode(err) != "Forbidden" {
		t.Errorf("HeadObject on a missing key, prefix policy: %v, want Forbidden", err)
	}
	fullClient, _ := clientFor(plain, roleWith(t, storePolicy(t, bucketName, "")))
	_, err = fullClient.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "missing")})
	var nf *types.NotFound
	if !errors.As(err, &nf) {
		t.Errorf("HeadObject on a missing key, bucket-wide ListBucket: %v, want types.NotFound", err)
	}
	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String("elsewhere")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("GetObject outside the policy: %v", err)
	}
	_, err = client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "copy"), CopySource: aws.String(otherName + "/secret")})
	if apiCode(err) != "AccessDenied" {
		t.Errorf("CopyObject from outside the policy: %v", err)
	}

	// Multipart rules.
	cr, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(p + "mp")})
	if err != nil {
		t.Fatal(err)
	}
	var parts []types.CompletedPart
	for i := 1; i <= 2; i++ {
		up, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucketName), Key: aws.String(p + "mp"), UploadId: cr.UploadId,
			PartNumber: aws.Int32(int32(i)), Body: strings.NewReader("small part")})
		if err != nil {
			t.Fatal(err)
		}
		parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i)), ETag: up.ETag})
	}
	complete := func(ps ...types.CompletedPart) error {
		_, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(p + "mp"),
			UploadId: cr.UploadId, MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
		return err
	}
	if err := complete(parts[1], parts[0]); apiCode(err) != "InvalidPartOrder" {
		t.Errorf("parts out of order: %v", err)
	}
	if err := complete(types.CompletedPart{PartNumber: aws.Int32(1), ETag: aws.String(`"00000000000000000000000000000000"`)}); apiCode(err) != "InvalidPart" {
		t.Errorf("wrong ETag: %v", err)
	}
	if err := complete(parts...); apiCode(err) != "EntityTooSmall" {
		t.Errorf("small first part: %v", err)
	}
	if err := complete(parts[1]); err != nil { // a single (last) part may be small
		t.Errorf("single small part: %v", err)
	}
	if err := complete(parts[1]); apiCode(err) != "NoSuchUpload" {
		t.Errorf("completing twice: %v", err)
	}

	plain.FailNext(standin.OpGetObject, 1, "InternalError")
	_, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "mp")})
	if apiCode(err) != "InternalError" {
		t.Errorf("injected fault: %v", err)
	}
	if _, err = client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "mp")}); err != nil {
		t.Errorf("after the fault: %v", err)
	}
}
