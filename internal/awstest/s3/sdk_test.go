package s3_test

import (
	"bytes"
	"crypto/rand"
	"io"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"

	standin "github.com/irsakit/irsakit/internal/awstest/s3"
)

func randomBytes(t testing.TB, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSDKRoundTrip drives every operation through the unmodified SDK
// client, over HTTP and HTTPS, and checks both what the client sees and
// what the server stored.
func TestSDKRoundTrip(t *testing.T) {
	for _, tr := range servers {
		t.Run(tr.name, func(t *testing.T) {
			srv := tr.srv()
			creds := roleWith(t, storePolicy(t, bucketName, ""))
			client, rec := clientFor(srv, creds)
			p := uniq(t)
			body := []byte("hello, stand-in\n")

			put, err := client.PutObject(ctx, &s3.PutObjectInput{
				Bucket: aws.String(bucketName), Key: aws.String(p + "a.txt"), Body: bytes.NewReader(body),
				ContentType: aws.String("text/plain"), Metadata: map[string]string{"Owner": "tests"},
			})
			if err != nil {
				t.Fatal(err)
			}
			// The SDK's default: a CRC32 the server verified and returns.
			if got, want := aws.ToString(put.ChecksumCRC32), standin.Checksum("CRC32", body); got != want {
				t.Errorf("PutObject checksum %q, want %q", got, want)
			}
			if stored, _ := srv.Object(bucketName, p+"a.txt"); !bytes.Equal(stored, body) {
				t.Errorf("stored %q, want %q", stored, body)
			}
			sent := rec.find("PUT", p+"a.txt")[0].header
			if tr.name == "https" {
				// Over TLS the SDK streams aws-chunked with a trailing checksum.
				if sent.Get("X-Amz-Content-Sha256") != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" || sent.Get("Content-Encoding") != "aws-chunked" ||
					sent.Get("X-Amz-Trailer") != "x-amz-checksum-crc32" {
					t.Errorf("https PutObject sent %v", sent)
				}
			} else if len(sent.Get("X-Amz-Content-Sha256")) != 64 || sent.Get("X-Amz-Checksum-Crc32") == "" {
				t.Errorf("http PutObject sent %v", sent)
			}

			get, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "a.txt")})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(get.Body) // the SDK validates the CRC32 here
			get.Body.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("GetObject %q %v", got, err)
			}
			if aws.ToString(get.ContentType) != "text/plain" || get.Metadata["owner"] != "tests" || aws.ToString(get.ChecksumCRC32) == "" ||
				get.ServerSideEncryption != types.ServerSideEncryptionAes256 {
				t.Errorf("GetObject headers: type %q meta %v crc %q sse %q", aws.ToString(get.ContentType), get.Metadata, aws.ToString(get.ChecksumCRC32), get.ServerSideEncryption)
			}

			rng, err := client.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "a.txt"), Range: aws.String("bytes=7-14")})
			if err != nil {
				t.Fatal(err)
			}
			part, _ := io.ReadAll(rng.Body)
			rng.Body.Close()
			if string(part) != "stand-in" || aws.ToString(rng.ContentRange) != "bytes 7-14/16" || aws.ToInt64(rng.ContentLength) != 8 {
				t.Errorf("ranged GetObject %q %q %d", part, aws.ToString(rng.ContentRange), aws.ToInt64(rng.ContentLength))
			}

			head, err := client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "a.txt"), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToInt64(head.ContentLength) != 16 || aws.ToString(head.ETag) != aws.ToString(put.ETag) || head.ChecksumType != types.ChecksumTypeFullObject ||
				aws.ToString(head.ChecksumCRC32) != aws.ToString(put.ChecksumCRC32) {
				t.Errorf("HeadObject %+v", head)
			}

			cp, err := client.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "dir/b.txt"),
				CopySource: aws.String(bucketName + "/" + p + "a.txt")})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(cp.CopyObjectResult.ETag) != aws.ToString(put.ETag) {
				t.Errorf("CopyObject ETag %q, want %q", aws.ToString(cp.CopyObjectResult.ETag), aws.ToString(put.ETag))
			}
			if stored, _ := srv.Object(bucketName, p+"dir/b.txt"); !bytes.Equal(stored, body) {
				t.Errorf("copy stored %q", stored)
			}

			for _, k := range []string{"dir/c.txt", "dir/sub/d.txt", "e.txt", "f/g.txt"} {
				if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + k), Body: strings.NewReader(k)}); err != nil {
					t.Fatal(err)
				}
			}
			// Pages of two with a delimiter: keys and common prefixes both
			// count towards max-keys, in key order.
			var listed []string
			pages := s3.NewListObjectsV2Paginator(client, &s3.ListObjectsV2Input{Bucket: aws.String(bucketName), Prefix: aws.String(p), Delimiter: aws.String("/"), MaxKeys: aws.Int32(2)})
			nPages := 0
			for pages.HasMorePages() {
				page, err := pages.NextPage(ctx)
				if err != nil {
					t.Fatal(err)
				}
				nPages++
				if n := len(page.Contents) + len(page.CommonPrefixes); int(aws.ToInt32(page.KeyCount)) != n || n > 2 {
					t.Errorf("page KeyCount %d for %d entries", aws.ToInt32(page.KeyCount), n)
				}
				for _, o := range page.Contents {
					listed = append(listed, strings.TrimPrefix(aws.ToString(o.Key), p))
				}
				for _, c := range page.CommonPrefixes {
					listed = append(listed, strings.TrimPrefix(aws.ToString(c.Prefix), p))
				}
			}
			if want := "a.txt dir/ e.txt f/"; strings.Join(listed, " ") != want || nPages != 2 {
				t.Errorf("listed %q in %d pages, want %q in 2", strings.Join(listed, " "), nPages, want)
			}

			if _, err := client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucketName), Key: aws.String(p + "e.txt")}); err != nil {
				t.Fatal(err)
			}
			del, err := client.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(bucketName), Delete: &types.Delete{Objects: []types.ObjectIdentifier{
				{Key: aws.String(p + "dir/c.txt")}, {Key: aws.String(p + "never-existed")},
			}}})
			if err != nil {
				t.Fatal(err)
			}
			if len(del.Deleted) != 2 || len(del.Errors) != 0 {
				t.Errorf("DeleteObjects deleted %d, errors %d", len(del.Deleted), len(del.Errors))
			}
			keys, _ := srv.Keys(bucketName)
			var left []string
			for _, k := range keys {
				if strings.HasPrefix(k, p) {
					left = append(left, strings.TrimPrefix(k, p))
				}
			}
			if want := "a.txt dir/b.txt dir/sub/d.txt f/g.txt"; strings.Join(left, " ") != want {
				t.Errorf("left %q, want %q", strings.Join(left, " "), want)
			}
		})
	}
}

// TestSDKMultipart uploads parts with explicit checksums and checks the
// composite result, then aborts another upload.
func TestSDKMultipart(t *testing.T) {
	for _, tr := range servers {
		t.Run(tr.name, func(t *testing.T) {
			srv := tr.srv()
			client, _ := clientFor(srv, roleWith(t, storePolicy(t, bucketName, "")))
			key := uniq(t) + "big.bin"
			data := randomBytes(t, standin.MinPartSize+1234)
			cr, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
			if err != nil {
				t.Fatal(err)
			}
			var parts []types.CompletedPart
			for i, chunk := range [][]byte{data[:standin.MinPartSize], data[standin.MinPartSize:]} {
				up, err := client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucketName), Key: aws.String(key), UploadId: cr.UploadId,
					PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(chunk), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c})
				if err != nil {
					t.Fatal(err)
				}
				if aws.ToString(up.ChecksumCRC32C) != standin.Checksum("CRC32C", chunk) {
					t.Errorf("part %d checksum %q", i+1, aws.ToString(up.ChecksumCRC32C))
				}
				parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(int32(i + 1)), ETag: up.ETag, ChecksumCRC32C: up.ChecksumCRC32C})
			}
			done, err := client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key), UploadId: cr.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(aws.ToString(done.ETag), `-2"`) || !strings.HasSuffix(aws.ToString(done.ChecksumCRC32C), "-2") || done.ChecksumType != types.ChecksumTypeComposite {
				t.Errorf("Complete: ETag %q checksum %q type %q", aws.ToString(done.ETag), aws.ToString(done.ChecksumCRC32C), done.ChecksumType)
			}
			if stored, _ := srv.Object(bucketName, key); !bytes.Equal(stored, data) {
				t.Error("assembled object differs")
			}

			cr2, err := client.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key + ".aborted")})
			if err != nil {
				t.Fatal(err)
			}
			before := srv.Uploads()
			if _, err := client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(bucketName), Key: aws.String(key + ".aborted"), UploadId: cr2.UploadId}); err != nil {
				t.Fatal(err)
			}
			if srv.Uploads() != before-1 {
				t.Errorf("uploads %d after abort, want %d", srv.Uploads(), before-1)
			}
			_, err = client.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(bucketName), Key: aws.String(key + ".aborted"), UploadId: cr2.UploadId,
				PartNumber: aws.Int32(1), Body: strings.NewReader("late")})
			if apiCode(err) != "NoSuchUpload" {
				t.Errorf("UploadPart after abort: %v, want NoSuchUpload", err)
			}
		})
	}
}
