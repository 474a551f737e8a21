// Package s3 is the in-process Amazon S3 stand-in of irsakit's tests and
// irsactl sandbox: an HTTP(S) server on a loopback port speaking the S3
// REST API with path-style addressing (http://127.0.0.1:PORT/BUCKET/KEY),
// so the unmodified SDK client, the transfer manager and presigned URLs
// talk to it. It exists because the real S3-compatible server available
// here (versitygw) federates only OIDC issuers on port 443 at a public
// address, so it cannot trust the STS stand-in's credentials.
//
// Every request is verified the way S3 verifies it, in S3's order:
//
//   - the SigV4 signature, in the Authorization header or a presigned
//     query, against the credentials registry ([sigv4.Registry]): unknown
//     key (InvalidAccessKeyId), wrong session token (InvalidToken), expired
//     credentials (ExpiredToken), tampered request (SignatureDoesNotMatch),
//     clock skew (RequestTimeTooSkewed), wrong region or service
//     (AuthorizationHeaderMalformed), expired presigned URL (AccessDenied),
//     x-amz-* headers left unsigned (AccessDenied), no signature at all
//     (AccessDenied);
//   - the payload: a signed hex SHA-256 is recomputed
//     (XAmzContentSHA256Mismatch); UNSIGNED-PAYLOAD is accepted;
//     STREAMING-UNSIGNED-PAYLOAD-TRAILER bodies (Content-Encoding
//     aws-chunked, what the SDK sends over HTTPS) are decoded and their
//     length checked against x-amz-decoded-content-length; the additional
//     checksum (x-amz-checksum-crc32, -crc32c, -crc64nvme, -sha1, -sha256,
//     as header or trailer) and Content-MD5 are recomputed (BadDigest).
//     Signed streaming (STREAMING-AWS4-HMAC-SHA256-PAYLOAD), which the
//     AWS SDK for Go v2 never sends, is refused with NotImplemented;
//   - the caller's role policies in the mini-IAM ([iam.IAM]):
//     s3:GetObject, s3:PutObject (also every multipart call but Abort),
//     s3:DeleteObject (per key for DeleteObjects), s3:AbortMultipartUpload
//     on arn:aws:s3:::BUCKET/KEY; s3:ListBucket on arn:aws:s3:::BUCKET with
//     the condition keys s3:prefix, s3:delimiter and s3:max-keys when the
//     request carries them; CopyObject needs s3:GetObject on the source and
//     s3:PutObject on the destination. A missing key is NoSuchKey only for
//     a caller allowed s3:ListBucket on the bucket (without an s3:prefix
//     condition, since the request has no prefix), else AccessDenied, as
//     S3 documents;
//   - then the operation's own rules, with S3's XML shapes and error codes
//     (NoSuchBucket, NoSuchKey, NoSuchUpload, InvalidRange,
//     PreconditionFailed, InvalidPart, InvalidPartOrder, EntityTooSmall,
//     MalformedXML, InvalidArgument, ...).
//
// Operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
// GetBucketLocation, ListObjectsV2 (prefix, delimiter, max-keys,
// continuation-token, start-after, fetch-owner, encoding-type),
// PutObject, GetObject and HeadObject (Range, If-Match, If-None-Match,
// If-(Un)Modified-Since, response-* overrides, x-amz-checksum-mode),
// DeleteObject, DeleteObjects, CopyObject (COPY or REPLACE metadata,
// x-amz-copy-source-if-match), CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload (COMPOSITE and FULL_OBJECT checksums) and
// AbortMultipartUpload. Anything else answers NotImplemented. Buckets are
// unversioned; objects are kept in memory; server-side encryption headers
// are validated and echoed (no KMS permissions are checked).
//
// # Usage
//
//	reg := sigv4.NewRegistry(nil)
//	policies := iam.New(sigv4.DefaultAccount)
//	srv := s3.New(reg, policies, func(o *s3.Options) { o.Region = "us-east-1" })
//	endpoint, err := srv.Start() // http://127.0.0.1:PORT
//	defer srv.Close()
//	_ = srv.CreateBucket("my-bucket")
//	// SDK: BaseEndpoint (or AWS_ENDPOINT_URL_S3) = endpoint, UsePathStyle = true.
//
// With Options.TLS the server speaks HTTPS with a self-signed certificate;
// [Server.Client] trusts it and [Server.CAPEM] is its PEM for
// AWS_CA_BUNDLE. Over HTTPS the SDK uploads with aws-chunked bodies and
// trailing checksums, over HTTP with a checksum header and a signed
// SHA-256; tests should cover both.
//
// # Errors
//
// The administrative methods ([Server.CreateBucket], [Server.Keys])
// return errors prefixed "s3 stand-in: ". Requests are answered with S3's
// XML error document (Code, Message, Resource, RequestId, HostId and the
// code's own members); where S3's message is generic the stand-in adds
// what exactly was wrong in parentheses. [Server.FailNext] injects
// failures.
//
// # IAM permissions
//
// The stand-in enforces the permissions listed above with the role policies
// of the registry's session credentials; s3store.Policy documents are
// loaded as they are. Long-term user keys of the registry have no
// policies and are refused everything.
package s3
