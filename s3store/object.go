package s3store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Object describes an object. Stat and Get fill every field S3 returns;
// List fills Key, Size, ETag, LastModified, StorageClass (and the checksum
// algorithm and type where the server reports them).
type Object struct {
	Key          string
	Size         int64
	ETag         string // as S3 returns it, quoted
	LastModified time.Time
	ContentType  string
	Metadata     map[string]string // user metadata, keys in lower case
	VersionID    string
	StorageClass types.StorageClass

	ServerSideEncryption types.ServerSideEncryption
	SSEKMSKeyID          string

	// ChecksumAlgorithm and Checksum are the additional checksum S3
	// stored with the object (base64; a "-N" suffix marks a composite
	// checksum over N parts); ChecksumType is FULL_OBJECT or COMPOSITE.
	ChecksumAlgorithm types.ChecksumAlgorithm
	Checksum          string
	ChecksumType      types.ChecksumType

	// IsPrefix marks a common prefix of a List with a delimiter: a
	// "directory", with only Key set.
	IsPrefix bool
}

// PutOptions configure one Put. Zero fields take the Store's defaults.
type PutOptions struct {
	ContentType        string
	CacheControl       string
	ContentDisposition string
	ContentEncoding    string
	// Metadata is stored as x-amz-meta-* headers.
	Metadata map[string]string

	// ServerSideEncryption and SSEKMSKeyID override the Store's.
	ServerSideEncryption types.ServerSideEncryption
	SSEKMSKeyID          string
	// ChecksumAlgorithm overrides the Store's.
	ChecksumAlgorithm types.ChecksumAlgorithm

	// IfNoneMatch "*" makes the Put fail if the key exists (S3 conditional
	// write; the error has HTTP status 412).
	IfNoneMatch string

	// PartSize and Concurrency override the Store's for this upload.
	PartSize    int64
	Concurrency int

	// ClientOptions apply to the SDK calls of this Put.
	ClientOptions []func(*s3.Options)
}

// PutResult is what S3 reports about a stored object.
type PutResult struct {
	ETag      string
	VersionID string
	// Checksum is the object's checksum as S3 computed and verified it
	// (base64; composite checksums of multipart uploads end in "-N").
	Checksum string
	// UploadID is set when the object went up in parts.
	UploadID string
}

// Put stores r's content under key. Content up to one part goes up in one
// PutObject; larger content, of known or unknown size, goes up in parts
// through the SDK's transfer manager (feature/s3/transfermanager).
// Memory is bounded whatever the object's size: at most Concurrency+2
// part buffers (56 MiB with the defaults). A failed multipart upload is
// aborted (which needs s3:AbortMultipartUpload).
func (s *Store) Put(ctx context.Context, key string, r io.Reader, optFns ...func(*PutOptions)) (PutResult, error) {
	if err := validateKey(key); err != nil {
		return PutResult{}, err
	}
	if r == nil {
		return PutResult{}, errors.New("s3store: Put needs a reader (use strings.NewReader(\"\") for an empty object)")
	}
	var po PutOptions
	for _, fn := range optFns {
		fn(&po)
	}
	alg, keyID, err := s.sse(po.ServerSideEncryption, po.SSEKMSKeyID)
	if err != nil {
		return PutResult{}, err
	}
	ck := po.ChecksumAlgorithm
	if ck == "" {
		ck = s.opts.ChecksumAlgorithm
	}
	if err := validateChecksum(ck); err != nil {
		return PutResult{}, err
	}
	if po.PartSize != 0 && po.PartSize < MinPartSize {
		return PutResult{}, fmt.Errorf("s3store: PartSize %d is below S3's minimum part size of 5 MiB", po.PartSize)
	}
	in := &transfermanager.UploadObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		Body:                 r,
		ContentType:          nonEmpty(po.ContentType),
		CacheControl:         nonEmpty(po.CacheControl),
		ContentDisposition:   nonEmpty(po.ContentDisposition),
		ContentEncoding:      nonEmpty(po.ContentEncoding),
		Metadata:             po.Metadata,
		ServerSideEncryption: tmtypes.ServerSideEncryption(alg),
		SSEKMSKeyID:          keyID,
		ChecksumAlgorithm:    tmtypes.ChecksumAlgorithm(ck),
		IfNoneMatch:          nonEmpty(po.IfNoneMatch),
	}
	out, err := s.transfer.UploadObject(ctx, in, func(o *transfermanager.Options) {
		if po.PartSize != 0 {
			o.PartSizeBytes = po.PartSize
			o.MultipartUploadThreshold = po.PartSize
		}
		if po.Concurrency > 0 {
			o.Concurrency = po.Concurrency
		}
		if len(po.ClientOptions) > 0 {
			o.S3 = withClientOptions{Client: s.client, opts: po.ClientOptions}
		}
	})
	if err != nil {
		return PutResult{}, wrapErr("put", s.bucket, key, err)
	}
	return PutResult{
		ETag:      aws.ToString(out.ETag),
		VersionID: aws.ToString(out.VersionID),
		Checksum:  firstNonEmpty(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256),
		UploadID:  aws.ToString(out.UploadID),
	}, nil
}

// withClientOptions is the S3 client of one transfer: every request the
// transfer manager sends through it, an abort after a failure included,
// carries the call's SDK options after the transfer manager's own.
type withClientOptions struct {
	*s3.Client
	opts []func(*s3.Options)
}

var _ transfermanager.S3APIClient = withClientOptions{}

// with appends the call's options to the transfer manager's. The
// transfer manager passes one slice to concurrent requests, so it is
// clipped to keep append from writing into it.
func (c withClientOptions) with(fns []func(*s3.Options)) []func(*s3.Options) {
	return append(slices.Clip(fns), c.opts...)
}

func (c withClientOptions) PutObject(ctx context.Context, in *s3.PutObjectInput, fns ...func(*s3.Options)) (*s3.PutObjectOutput, error) {
	return c.Client.PutObject(ctx, in, c.with(fns)...)
}

func (c withClientOptions) UploadPart(ctx context.Context, in *s3.UploadPartInput, fns ...func(*s3.Options)) (*s3.UploadPartOutput, error) {
	return c.Client.UploadPart(ctx, in, c.with(fns)...)
}

func (c withClientOptions) CreateMultipartUpload(ctx context.Context, in *s3.CreateMultipartUploadInput, fns ...func(*s3.Options)) (*s3.CreateMultipartUploadOutput, error) {
	return c.Client.CreateMultipartUpload(ctx, in, c.with(fns)...)
}

func (c withClientOptions) CompleteMultipartUpload(ctx context.Context, in *s3.CompleteMultipartUploadInput, fns ...func(*s3.Options)) (*s3.CompleteMultipartUploadOutput, error) {
	return c.Client.CompleteMultipartUpload(ctx, in, c.with(fns)...)
}

func (c withClientOptions) AbortMultipartUpload(ctx context.Context, in *s3.AbortMultipartUploadInput, fns ...func(*s3.Options)) (*s3.AbortMultipartUploadOutput, error) {
	return c.Client.AbortMultipartUpload(ctx, in, c.with(fns)...)
}

func (c withClientOptions) GetObject(ctx context.Context, in *s3.GetObjectInput, fns ...func(*s3.Options)) (*s3.GetObjectOutput, error) {
	return c.Client.GetObject(ctx, in, c.with(fns)...)
}

func (c withClientOptions) HeadObject(ctx context.Context, in *s3.HeadObjectInput, fns ...func(*s3.Options)) (*s3.HeadObjectOutput, error) {
	return c.Client.HeadObject(ctx, in, c.with(fns)...)
}

func (c withClientOptions) ListObjectsV2(ctx context.Context, in *s3.ListObjectsV2Input, fns ...func(*s3.Options)) (*s3.ListObjectsV2Output, error) {
	return c.Client.ListObjectsV2(ctx, in, c.with(fns)...)
}

// GetOptions configure one Get or Download.
type GetOptions struct {
	// Offset and Length select a byte range: Length bytes from Offset, or
	// everything from Offset when Length is 0. Both 0: the whole object.
	Offset int64
	Length int64
	// IfMatch makes the read fail (HTTP 412) unless the object still has
	// this ETag, so the ranges of one object read piecewise stay
	// consistent.
	IfMatch string
	// VersionID reads a specific version.
	VersionID string
	// ClientOptions apply to the SDK calls of this read.
	ClientOptions []func(*s3.Options)
}

func (g GetOptions) rangeHeader() (*string, error) {
	if g.Offset < 0 || g.Length < 0 {
		return nil, fmt.Errorf("s3store: invalid range: offset %d, length %d", g.Offset, g.Length)
	}
	switch {
	case g.Length > 0:
		return aws.String(fmt.Sprintf("bytes=%d-%d", g.Offset, g.Offset+g.Length-1)), nil
	case g.Offset > 0:
		return aws.String(fmt.Sprintf("bytes=%d-", g.Offset)), nil
	}
	return nil, nil
}

// Reader streams an object's content. Close it.
type Reader struct {
	body   io.ReadCloser
	obj    Object
	length int64
	bucket string
}

// Read reads the content; errors other than io.EOF name the object.
func (r *Reader) Read(p []byte) (int, error) {
	n, err := r.body.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = wrapErr("read", r.bucket, r.obj.Key, err)
	}
	return n, err
}

// Close releases the connection.
func (r *Reader) Close() error { return r.body.Close() }

// Object describes the object being read; Size is the whole object's size,
// not the range's.
func (r *Reader) Object() Object { return r.obj }

// Len is the number of bytes this read returns (the range's length).
func (r *Reader) Len() int64 { return r.length }

// Get streams key's content, or a byte range of it. The SDK verifies the
// object's checksum on a full read where S3 returns one.
func (s *Store) Get(ctx context.Context, key string, optFns ...func(*GetOptions)) (*Reader, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var g GetOptions
	for _, fn := range optFns {
		fn(&g)
	}
	rng, err := g.rangeHeader()
	if err != nil {
		return nil, err
	}
	clientOpts := g.ClientOptions
	if rng != nil {
		clientOpts = append([]func(*s3.Options){quietRangedChecksum}, clientOpts...)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket:    aws.String(s.bucket),
		Key:       aws.String(key),
		Range:     rng,
		IfMatch:   nonEmpty(g.IfMatch),
		VersionId: nonEmpty(g.VersionID),
	}, clientOpts...)
	if err != nil {
		return nil, wrapErr("get", s.bucket, key, err)
	}
	length := aws.ToInt64(out.ContentLength)
	size := length
	if cr := aws.ToString(out.ContentRange); cr != "" {
		// bytes START-END/TOTAL
		if i := strings.LastIndexByte(cr, '/'); i >= 0 {
			if t, err := strconv.ParseInt(cr[i+1:], 10, 64); err == nil {
				size = t
			}
		}
	}
	obj := Object{
		Key:                  key,
		Size:                 size,
		ETag:                 aws.ToString(out.ETag),
		LastModified:         aws.ToTime(out.LastModified),
		ContentType:          aws.ToString(out.ContentType),
		Metadata:             out.Metadata,
		VersionID:            aws.ToString(out.VersionId),
		StorageClass:         out.StorageClass,
		ServerSideEncryption: out.ServerSideEncryption,
		SSEKMSKeyID:          aws.ToString(out.SSEKMSKeyId),
		ChecksumType:         out.ChecksumType,
	}
	obj.ChecksumAlgorithm, obj.Checksum = pickChecksum(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256)
	return &Reader{body: out.Body, obj: obj, length: length, bucket: s.bucket}, nil
}

// Download writes key's content (or a range of it) to w and returns the
// number of bytes written, also when it fails. The whole object is fetched
// through the SDK's transfer manager in ranges of PartSize, Concurrency at
// a time, each range required to come from the object the first one came
// from (If-Match on its ETag). A range is fetched in one request.
func (s *Store) Download(ctx context.Context, key string, w io.WriterAt, optFns ...func(*GetOptions)) (int64, error) {
	if err := validateKey(key); err != nil {
		return 0, err
	}
	var g GetOptions
	for _, fn := range optFns {
		fn(&g)
	}
	rng, err := g.rangeHeader()
	if err != nil {
		return 0, err
	}
	if w == nil {
		return 0, errors.New("s3store: Download needs an io.WriterAt (an *os.File, or a buffer)")
	}
	clientOpts := append([]func(*s3.Options){quietRangedChecksum}, g.ClientOptions...)
	cw := &countingWriterAt{w: w}
	if rng != nil {
		// The transfer manager would split the range into parts and
		// fail on one that ends past the object's end, which S3 itself
		// answers with the bytes there are.
		out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
			Bucket:    aws.String(s.bucket),
			Key:       aws.String(key),
			Range:     rng,
			IfMatch:   nonEmpty(g.IfMatch),
			VersionId: nonEmpty(g.VersionID),
		}, clientOpts...)
		if err == nil {
			_, err = io.Copy(io.NewOffsetWriter(cw, 0), out.Body)
			if cerr := out.Body.Close(); err == nil {
				err = cerr
			}
		}
		return cw.n.Load(), wrapErr("download", s.bucket, key, err)
	}
	_, err = s.transfer.DownloadObject(ctx, &transfermanager.DownloadObjectInput{
		Bucket:    aws.String(s.bucket),
		Key:       aws.String(key),
		WriterAt:  cw,
		IfMatch:   nonEmpty(g.IfMatch),
		VersionID: nonEmpty(g.VersionID),
	}, func(o *transfermanager.Options) {
		o.S3 = withClientOptions{Client: s.client, opts: clientOpts}
	})
	return cw.n.Load(), wrapErr("download", s.bucket, key, err)
}

// countingWriterAt counts the bytes written through it, which the
// transfer manager does not report when a download fails.
type countingWriterAt struct {
	w io.WriterAt
	n atomic.Int64
}

func (c *countingWriterAt) WriteAt(p []byte, off int64) (int, error) {
	n, err := c.w.WriteAt(p, off)
	c.n.Add(int64(n))
	return n, err
}

// quietRangedChecksum silences the SDK's log line about a response without
// a checksum on ranged reads: S3 never returns the object's checksum for a
// range, so the line would be printed for every part of every download.
func quietRangedChecksum(o *s3.Options) { o.DisableLogOutputChecksumValidationSkipped = true }

// Stat returns key's attributes, including its stored checksum.
func (s *Store) Stat(ctx context.Context, key string, optFns ...func(*s3.Options)) (Object, error) {
	if err := validateKey(key); err != nil {
		return Object{}, err
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket:       aws.String(s.bucket),
		Key:          aws.String(key),
		ChecksumMode: types.ChecksumModeEnabled,
	}, optFns...)
	if err != nil {
		return Object{}, wrapErr("stat", s.bucket, key, err)
	}
	obj := Object{
		Key:                  key,
		Size:                 aws.ToInt64(out.ContentLength),
		ETag:                 aws.ToString(out.ETag),
		LastModified:         aws.ToTime(out.LastModified),
		ContentType:          aws.ToString(out.ContentType),
		Metadata:             out.Metadata,
		VersionID:            aws.ToString(out.VersionId),
		StorageClass:         out.StorageClass,
		ServerSideEncryption: out.ServerSideEncryption,
		SSEKMSKeyID:          aws.ToString(out.SSEKMSKeyId),
		ChecksumType:         out.ChecksumType,
	}
	obj.ChecksumAlgorithm, obj.Checksum = pickChecksum(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64NVME, out.ChecksumSHA1, out.ChecksumSHA256)
	return obj, nil
}

// Exists reports whether key exists. A missing key is (false, nil); any
// other failure, access denied included, is an error.
func (s *Store) Exists(ctx context.Context, key string, optFns ...func(*s3.Options)) (bool, error) {
	_, err := s.Stat(ctx, key, optFns...)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrNotFound):
		return false, nil
	}
	return false, err
}

// Delete deletes key. Deleting a missing key succeeds, as in S3.
func (s *Store) Delete(ctx context.Context, key string, optFns ...func(*s3.Options)) error {
	if err := validateKey(key); err != nil {
		return err
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(key)}, optFns...)
	return wrapErr("delete", s.bucket, key, err)
}

// deleteBatch is S3's limit of keys per DeleteObjects request.
const deleteBatch = 1000

// DeleteMany deletes keys in requests of up to 1000 keys. Keys that could
// not be deleted are reported in a *DeleteError, each with S3's reason;
// all others were deleted. If ctx ends, the keys not yet sent are reported
// with ctx's error.
func (s *Store) DeleteMany(ctx context.Context, keys []string, optFns ...func(*s3.Options)) error {
	for _, k := range keys {
		if err := validateKey(k); err != nil {
			return err
		}
	}
	var failed []*KeyError
	for start := 0; start < len(keys); start += deleteBatch {
		batch := keys[start:min(start+deleteBatch, len(keys))]
		if err := ctx.Err(); err != nil {
			for _, k := range keys[start:] {
				failed = append(failed, &KeyError{Key: k, Err: err})
			}
			break
		}
		ids := make([]types.ObjectIdentifier, len(batch))
		for i, k := range batch {
			ids[i] = types.ObjectIdentifier{Key: aws.String(k)}
		}
		out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
			Bucket: aws.String(s.bucket),
			Delete: &types.Delete{Objects: ids, Quiet: aws.Bool(true)},
		}, optFns...)
		if err != nil {
			werr := wrapErr("delete", s.bucket, "", err).(*Error)
			for _, k := range batch {
				failed = append(failed, &KeyError{Key: k, Err: werr, kind: werr.kind})
			}
			continue
		}
		for _, e := range out.Errors {
			code := aws.ToString(e.Code)
			failed = append(failed, &KeyError{Key: aws.ToString(e.Key), Code: code, Message: aws.ToString(e.Message), kind: keyErrorKind(code)})
		}
	}
	if len(failed) > 0 {
		return &DeleteError{Bucket: s.bucket, Keys: failed}
	}
	return nil
}

// CopyOptions configure one Copy.
type CopyOptions struct {
	// SourceBucket is the bucket to copy from. Default: the Store's.
	SourceBucket    string
	SourceVersionID string
	// ContentType and Metadata, when either is set, replace the source's
	// (S3's MetadataDirective REPLACE); otherwise they are copied.
	ContentType string
	Metadata    map[string]string
	// ServerSideEncryption and SSEKMSKeyID override the Store's.
	ServerSideEncryption types.ServerSideEncryption
	SSEKMSKeyID          string
	// ChecksumAlgorithm overrides the Store's.
	ChecksumAlgorithm types.ChecksumAlgorithm
	// ClientOptions apply to the SDK call.
	ClientOptions []func(*s3.Options)
}

// Copy copies srcKey to dstKey on the server side (S3's CopyObject, for
// objects up to 5 GiB).
func (s *Store) Copy(ctx context.Context, srcKey, dstKey string, optFns ...func(*CopyOptions)) (PutResult, error) {
	if err := validateKey(srcKey); err != nil {
		return PutResult{}, err
	}
	if err := validateKey(dstKey); err != nil {
		return PutResult{}, err
	}
	co := CopyOptions{SourceBucket: s.bucket}
	for _, fn := range optFns {
		fn(&co)
	}
	if err := validateBucket(co.SourceBucket); err != nil {
		return PutResult{}, err
	}
	alg, keyID, err := s.sse(co.ServerSideEncryption, co.SSEKMSKeyID)
	if err != nil {
		return PutResult{}, err
	}
	ck := co.ChecksumAlgorithm
	if ck == "" {
		ck = s.opts.ChecksumAlgorithm
	}
	if err := validateChecksum(ck); err != nil {
		return PutResult{}, err
	}
	src := co.SourceBucket + "/" + escapeKey(srcKey)
	if co.SourceVersionID != "" {
		src += "?versionId=" + url.QueryEscape(co.SourceVersionID)
	}
	in := &s3.CopyObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(dstKey),
		CopySource:           aws.String(src),
		ServerSideEncryption: alg,
		SSEKMSKeyId:          keyID,
		ChecksumAlgorithm:    ck,
	}
	if co.ContentType != "" || co.Metadata != nil {
		in.MetadataDirective = types.MetadataDirectiveReplace
		in.ContentType = nonEmpty(co.ContentType)
		in.Metadata = co.Metadata
	}
	out, err := s.client.CopyObject(ctx, in, co.ClientOptions...)
	if err != nil {
		werr := wrapErr("copy", s.bucket, dstKey, err).(*Error)
		werr.Source = "s3://" + co.SourceBucket + "/" + srcKey
		return PutResult{}, werr
	}
	res := PutResult{VersionID: aws.ToString(out.VersionId)}
	if r := out.CopyObjectResult; r != nil {
		res.ETag = aws.ToString(r.ETag)
		res.Checksum = firstNonEmpty(r.ChecksumCRC32, r.ChecksumCRC32C, r.ChecksumCRC64NVME, r.ChecksumSHA1, r.ChecksumSHA256)
	}
	return res, nil
}

// escapeKey URL-encodes a key for x-amz-copy-source, keeping '/'.
func escapeKey(key string) string {
	parts := strings.Split(key, "/")
	for i, p := range parts {
		parts[i] = url.PathEscape(p)
	}
	return strings.Join(parts, "/")
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return aws.String(s)
}

func firstNonEmpty(vs ...*string) string {
	for _, v := range vs {
		if s := aws.ToString(v); s != "" {
			return s
		}
	}
	return ""
}

func pickChecksum(crc32, crc32c, crc64, sha1, sha256 *string) (types.ChecksumAlgorithm, string) {
	for _, c := range []struct {
		alg types.ChecksumAlgorithm
		v   *string
	}{
		{types.ChecksumAlgorithmCrc32, crc32},
		{types.ChecksumAlgorithmCrc32c, crc32c},
		{types.ChecksumAlgorithmCrc64nvme, crc64},
		{types.ChecksumAlgorithmSha1, sha1},
		{types.ChecksumAlgorithmSha256, sha256},
	} {
		if s := aws.ToString(c.v); s != "" {
			return c.alg, s
		}
	}
	return "", ""
}
