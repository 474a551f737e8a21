package s3store

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	tmtypes "github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// Defaults and limits of [Options]. The part size and concurrency are
// those of the SDK's transfer manager (feature/s3/transfermanager).
const (
	DefaultPartSize    int64 = 8 << 20 // 8 MiB
	DefaultConcurrency       = 5
	// MinPartSize is S3's minimum size of a part of a multipart upload.
	MinPartSize           int64 = 5 << 20 // 5 MiB
	DefaultPresignExpires       = 15 * time.Minute
	// MaxPresignExpires is SigV4's limit on a presigned URL's lifetime.
	MaxPresignExpires = 7 * 24 * time.Hour
)

// Options configure a [Store]. The zero value of every field is a safe
// default.
type Options struct {
	// UsePathStyle addresses the bucket in the path (https://host/bucket/key)
	// instead of the host name. S3-compatible servers usually need it.
	// Default false: virtual-hosted style, as AWS recommends.
	UsePathStyle bool

	// ServerSideEncryption applied to every Put, Copy and presigned PUT that
	// does not set its own: types.ServerSideEncryptionAes256 or
	// types.ServerSideEncryptionAwsKms. Default "": the bucket's default
	// encryption (SSE-S3 on AWS).
	ServerSideEncryption types.ServerSideEncryption
	// SSEKMSKeyID is the KMS key (id, ARN or alias ARN) for aws:kms. Default
	// "": the account's aws/s3 key.
	SSEKMSKeyID string

	// ChecksumAlgorithm is the additional checksum uploads carry and S3
	// verifies and stores (CRC32, CRC32C, CRC64NVME, SHA1, SHA256). Default
	// "": the SDK's default, CRC32.
	ChecksumAlgorithm types.ChecksumAlgorithm

	// PartSize is the part size of multipart uploads and downloads, at
	// least MinPartSize. A Put holds at most Concurrency+2 parts in memory,
	// whatever the object's size; content of unknown size can have at most
	// S3's 10,000 parts. Default DefaultPartSize.
	PartSize int64
	// Concurrency is the number of parts in flight per upload or download.
	// Default DefaultConcurrency.
	Concurrency int

	// PresignExpires is the lifetime of presigned URLs when the call passes
	// 0. Default DefaultPresignExpires.
	PresignExpires time.Duration

	// ClientOptions are applied to the S3 client when New creates it.
	ClientOptions []func(*s3.Options)
}

// Store is an S3 bucket. It is safe for concurrent use; it starts no
// goroutines beyond those of a call in progress, so it needs no Close.
type Store struct {
	bucket   string
	opts     Options
	client   *s3.Client
	presign  *s3.PresignClient
	transfer *transfermanager.Client
	// credsCache is cfg.Credentials when it is a cache, for the expiry of
	// presigned URLs. Only a pointer is kept: a provider held by value
	// (credentials.StaticCredentialsProvider is a struct holding the keys)
	// would be printed, secret key and all, by fmt's %+v of the Store.
	credsCache *aws.CredentialsCache
}

// New returns a Store for bucket, calling S3 with cfg (typically
// irsa.Session.Config()). The S3 endpoint comes from cfg and the
// environment (AWS_ENDPOINT_URL_S3) as for any SDK client.
func New(cfg aws.Config, bucket string, optFns ...func(*Options)) (*Store, error) {
	var o Options
	for _, fn := range optFns {
		fn(&o)
	}
	if err := validateBucket(bucket); err != nil {
		return nil, err
	}
	if cfg.Region == "" {
		return nil, errors.New("s3store: aws.Config has no region: set AWS_REGION or load the config with irsa.Load")
	}
	if o.PartSize == 0 {
		o.PartSize = DefaultPartSize
	}
	if o.PartSize < MinPartSize {
		return nil, fmt.Errorf("s3store: PartSize %d is below S3's minimum part size of 5 MiB", o.PartSize)
	}
	if o.Concurrency == 0 {
		o.Concurrency = DefaultConcurrency
	}
	if o.Concurrency < 0 {
		return nil, fmt.Errorf("s3store: Concurrency %d must be positive", o.Concurrency)
	}
	if o.PresignExpires == 0 {
		o.PresignExpires = DefaultPresignExpires
	}
	if o.PresignExpires < 0 || o.PresignExpires > MaxPresignExpires {
		return nil, fmt.Errorf("s3store: PresignExpires %v must be between 1s and 7 days", o.PresignExpires)
	}
	if err := validateSSE(o.ServerSideEncryption, o.SSEKMSKeyID); err != nil {
		return nil, err
	}
	if err := validateChecksum(o.ChecksumAlgorithm); err != nil {
		return nil, err
	}

	clientOpts := append([]func(*s3.Options){func(so *s3.Options) { so.UsePathStyle = o.UsePathStyle }}, o.ClientOptions...)
	client := s3.NewFromConfig(cfg, clientOpts...)
	s := &Store{
		bucket:  bucket,
		opts:    o,
		client:  client,
		presign: s3.NewPresignClient(client),
		transfer: transfermanager.New(client, func(to *transfermanager.Options) {
			to.PartSizeBytes = o.PartSize
			to.Concurrency = o.Concurrency
			// Content up to one part goes up in one PutObject, so the
			// first part read is never larger than the others.
			to.MultipartUploadThreshold = o.PartSize
			// Downloads fetch ranges of PartSize, whatever part layout
			// the object was uploaded with (one PutObject of 5 GiB
			// included); fetching by part number would not split those.
			to.GetObjectType = tmtypes.GetObjectRanges
			// The transfer manager sets this on every request it sends;
			// keep the client's (aws.Config or ClientOptions) setting.
			if c := client.Options().RequestChecksumCalculation; c != aws.RequestChecksumCalculationUnset {
				to.RequestChecksumCalculation = c
			}
		}),
	}
	s.credsCache, _ = cfg.Credentials.(*aws.CredentialsCache)
	return s, nil
}

// Client returns the underlying S3 client, for calls Store does not offer.
func (s *Store) Client() *s3.Client { return s.client }

// Bucket returns the bucket name.
func (s *Store) Bucket() string { return s.bucket }

// String names the Store's bucket. A Store prints as this under every fmt
// verb and in slog, never as its fields: the S3 client inside holds the
// credentials provider, which for static credentials is the keys
// themselves.
func (s Store) String() string { return "s3store.Store(s3://" + s.bucket + ")" }

// GoString is String, for %#v.
func (s Store) GoString() string { return s.String() }

// Format writes String for every verb and flag.
func (s Store) Format(f fmt.State, verb rune) {
	if verb == 'q' {
		_, _ = io.WriteString(f, strconv.Quote(s.String()))
		return
	}
	_, _ = io.WriteString(f, s.String())
}

// LogValue logs the bucket.
func (s Store) LogValue() slog.Value { return slog.GroupValue(slog.String("bucket", s.bucket)) }

var (
	_ fmt.Stringer   = Store{}
	_ fmt.GoStringer = Store{}
	_ fmt.Formatter  = Store{}
	_ slog.LogValuer = Store{}
)

// validateBucket accepts current S3 bucket names and the legacy us-east-1
// ones (upper case, underscores, up to 255 characters).
func validateBucket(b string) error {
	if len(b) < 3 || len(b) > 255 {
		return fmt.Errorf("s3store: invalid bucket name %q: must be 3 to 63 characters (255 for legacy us-east-1 buckets)", b)
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', c >= 'A' && c <= 'Z':
		case c == '-' || c == '.' || c == '_':
			if i == 0 || i == len(b)-1 {
				return fmt.Errorf("s3store: invalid bucket name %q: must begin and end with a letter or digit", b)
			}
		default:
			return fmt.Errorf("s3store: invalid bucket name %q: only letters, digits, '.', '-' and '_' are allowed (a bucket name, not a URL or ARN)", b)
		}
	}
	if strings.Contains(b, "..") {
		return fmt.Errorf("s3store: invalid bucket name %q: must not contain \"..\"", b)
	}
	return nil
}

// validateKey rejects keys S3 refuses.
func validateKey(key string) error {
	if key == "" {
		return errors.New("s3store: empty object key")
	}
	if len(key) > 1024 {
		return fmt.Errorf("s3store: object key of %d bytes exceeds S3's 1024-byte limit", len(key))
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("s3store: object key %q is not valid UTF-8", key)
	}
	return nil
}

func validateSSE(alg types.ServerSideEncryption, keyID string) error {
	switch alg {
	case "", types.ServerSideEncryptionAes256:
		if keyID != "" {
			return fmt.Errorf("s3store: a KMS key id needs ServerSideEncryption %q, not %q", types.ServerSideEncryptionAwsKms, alg)
		}
	case types.ServerSideEncryptionAwsKms, types.ServerSideEncryptionAwsKmsDsse:
	default:
		return fmt.Errorf("s3store: unknown ServerSideEncryption %q (want AES256, aws:kms or aws:kms:dsse)", alg)
	}
	return nil
}

// checksumAlgorithms are the additional checksums the SDK computes and
// Store reports back.
var checksumAlgorithms = []types.ChecksumAlgorithm{
	types.ChecksumAlgorithmCrc32,
	types.ChecksumAlgorithmCrc32c,
	types.ChecksumAlgorithmCrc64nvme,
	types.ChecksumAlgorithmSha1,
	types.ChecksumAlgorithmSha256,
}

func validateChecksum(alg types.ChecksumAlgorithm) error {
	if alg == "" || slices.Contains(checksumAlgorithms, alg) {
		return nil
	}
	return fmt.Errorf("s3store: unsupported ChecksumAlgorithm %q (want one of %v)", alg, checksumAlgorithms)
}

// sse returns the encryption of a write: the call's own, else the store's.
func (s *Store) sse(alg types.ServerSideEncryption, keyID string) (types.ServerSideEncryption, *string, error) {
	if alg == "" && keyID == "" {
		alg, keyID = s.opts.ServerSideEncryption, s.opts.SSEKMSKeyID
	}
	if err := validateSSE(alg, keyID); err != nil {
		return "", nil, err
	}
	if keyID == "" {
		return alg, nil, nil
	}
	return alg, aws.String(keyID), nil
}
