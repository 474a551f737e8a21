// Package s3store is an S3 object store on an IRSA session: put, get
// (streamed, ranged), stat, exists, delete (one or many), list (a lazily
// paginated iterator), server-side copy, parallel download, and presigned
// URLs, with multipart transfers through the SDK's transfer manager
// (feature/s3/transfermanager), typed errors, and a generator for the
// least-privilege IAM policy it needs.
//
// # Usage
//
// Build a [Store] from the session's aws.Config and a bucket:
//
//	sess, err := irsa.Load(ctx)
//	...
//	store, err := s3store.New(sess.Config(), "my-bucket")
//	...
//	_, err = store.Put(ctx, "reports/2024.csv", file, func(o *s3store.PutOptions) {
//		o.ContentType = "text/csv"
//	})
//	r, err := store.Get(ctx, "reports/2024.csv")
//	defer r.Close()
//	for obj, err := range store.List(ctx, "reports/") {
//		...
//	}
//
// [Store.Put] accepts any io.Reader. Content of unknown size or larger than
// [Options.PartSize] goes up in parts, [Options.Concurrency] at a time,
// with at most Concurrency+2 part buffers, so memory stays bounded however
// large the object (56 MiB of part buffers with the defaults, whether 1 GiB
// or 50 GiB comes from a stream or a file). [Store.Get] streams
// (optionally a byte range); [Store.Download] fetches ranges of PartSize
// in parallel into an io.WriterAt, writing them where they belong, so it
// holds no buffers of its own.
//
// Every write takes the Store's server-side encryption (AES256 or aws:kms
// with a key id) and checksum algorithm unless the call sets its own. S3
// verifies the checksum of every request and part and stores the
// object's; [Store.Stat] returns it. Per-call SDK options go through the
// ClientOptions fields (or the trailing optFns of Stat, Exists, Delete,
// DeleteMany), and [Store.Client] returns the *s3.Client for anything else.
// A Store is safe for concurrent use.
//
// A [Presigned] URL lets a client without AWS credentials GET or PUT one
// object with plain HTTP. It is a bearer secret (it embeds the signature
// and the session token), so it prints redacted; [Presigned.URL] returns
// it. It stops working when the credentials that signed it expire, which
// for IRSA sessions is at most the session's lifetime; Presigned.Expires
// says when.
//
// For S3-compatible servers, set [Options.UsePathStyle] and point the SDK
// at the server with AWS_ENDPOINT_URL_S3.
//
// # Partitions
//
// Every partition the AWS SDK knows is accepted wherever a policy ARN appears:
// aws, aws-cn, aws-us-gov, aws-iso, aws-iso-b, aws-iso-e, aws-iso-f and
// aws-eusc. [Policy] writes arn:PARTITION:s3::: ARNs for PolicyOptions.Partition
// (default aws).
//
// # Errors
//
// Failed calls return an [*Error] naming the operation, bucket and key.
// errors.Is(err, [ErrNotFound]) holds for a missing key, version or bucket,
// and errors.Is(err, [ErrAccessDenied]) when IAM or a bucket policy refused
// the request; errors.As still reaches the SDK's error (smithy.APIError for
// the code, *awshttp.ResponseError for the status and request id, the
// typed exceptions of service/s3/types). [Store.Exists] turns ErrNotFound
// into false. [Store.DeleteMany] returns a [*DeleteError] listing each key
// S3 refused, with its code. Invalid input (empty or over-long key, bad
// bucket name, part size under 5 MiB, unknown encryption or checksum
// algorithm) fails before any request is sent.
//
// # IAM permissions
//
// A role using a Store needs, on the bucket:
//
//	s3:ListBucket      List (on arn:aws:s3:::BUCKET)
//	s3:GetObject       Get, Download, Stat, Exists, PresignGet, Copy source
//	s3:PutObject       Put (multipart included), PresignPut, Copy destination
//	s3:DeleteObject    Delete, DeleteMany
//	s3:AbortMultipartUpload  optional: cleanup of a failed multipart Put
//	kms:GenerateDataKey, kms:Decrypt  on the key, with aws:kms encryption
//
// [Policy] generates that policy, limited to a key prefix:
//
//	doc, err := s3store.Policy("my-bucket", func(o *s3store.PolicyOptions) { o.Prefix = "tenant-42/" })
//
// grants s3:ListBucket on the bucket only for listings under tenant-42/
// (an s3:prefix condition) and Get/Put/DeleteObject on
// arn:aws:s3:::my-bucket/tenant-42/*.
package s3store
