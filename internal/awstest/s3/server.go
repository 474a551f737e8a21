package s3

import (
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/irsakit/irsakit/internal/awstest/iam"
	"github.com/irsakit/irsakit/internal/awstest/oidc"
	"github.com/irsakit/irsakit/internal/awstest/sigv4"
	"github.com/irsakit/irsakit/internal/clock"
)

// Operation names, as the S3 API reference and the SDK name them.
const (
	OpListBuckets             = "ListBuckets"
	OpCreateBucket            = "CreateBucket"
	OpHeadBucket              = "HeadBucket"
	OpDeleteBucket            = "DeleteBucket"
	OpGetBucketLocation       = "GetBucketLocation"
	OpListObjectsV2           = "ListObjectsV2"
	OpDeleteObjects           = "DeleteObjects"
	OpPutObject               = "PutObject"
	OpCopyObject              = "CopyObject"
	OpGetObject               = "GetObject"
	OpHeadObject              = "HeadObject"
	OpDeleteObject            = "DeleteObject"
	OpCreateMultipartUpload   = "CreateMultipartUpload"
	OpUploadPart              = "UploadPart"
	OpCompleteMultipartUpload = "CompleteMultipartUpload"
	OpAbortMultipartUpload    = "AbortMultipartUpload"
)

// Limits S3 enforces.
const (
	// MaxObjectSize is S3's limit on one PutObject or UploadPart body.
	MaxObjectSize = 5 << 30
	// MinPartSize is the least size of every part but the last.
	MinPartSize = 5 << 20
	// MaxKeys is the most entries one ListObjectsV2 page holds.
	MaxKeys = 1000
	// maxKeyLength is S3's limit on a key, in bytes.
	maxKeyLength = 1024
	// maxMetadataSize is S3's limit on user metadata (names and values).
	maxMetadataSize = 2 << 10
)

// Options configure a Server. Every field has a usable zero value.
type Options struct {
	// Region the buckets live in; requests must be signed for it.
	// Default us-east-1.
	Region string
	// Addr is the listen address of Start. Default 127.0.0.1:0.
	Addr string
	// TLS serves HTTPS with a self-signed certificate for 127.0.0.1, ::1
	// and localhost (see CAPEM and Client), as S3 does: over HTTPS the SDK
	// sends bodies aws-chunked with trailing checksums; over plain HTTP it
	// sends a checksum header and signs the body's SHA-256. Default false.
	TLS bool
	// Clock stamps objects and uploads. Default: the registry's clock.
	Clock clock.Clock
	// MaxObjectSize caps one PutObject or UploadPart body (the objects are
	// held in memory). Default and at most S3's 5 GiB.
	MaxObjectSize int64
}

// Server is the S3 stand-in. It is safe for concurrent use.
type Server struct {
	reg  *sigv4.Registry
	iam  *iam.IAM
	opts Options
	clk  clock.Clock

	mu      sync.Mutex
	buckets map[string]*bucket
	uploads map[string]*upload // by upload id
	calls   map[string]int
	faults  []*fault

	ln     net.Listener
	hs     *http.Server
	url    string
	cert   *x509.Certificate
	certPM []byte
	wg     sync.WaitGroup
	once   sync.Once
}

type fault struct {
	op   string
	n    int
	code string
}

type bucket struct {
	name    string
	created time.Time
	objects map[string]*object
}

// object is a stored object. Its fields never change after it is stored
// (a new PUT stores a new *object), so readers may use it after unlocking.
type object struct {
	data     []byte
	etag     string
	modified time.Time
	headers  objectHeaders
	// Additional checksum S3 stored: algorithm, base64 value ("-N" for
	// composite), FULL_OBJECT or COMPOSITE.
	checksumAlg, checksum, checksumType string
	parts                               int
}

// objectHeaders are the system and user metadata stored with an object.
type objectHeaders struct {
	contentType, contentEncoding, contentDisposition, contentLanguage, cacheControl, expires string
	meta                                                                                     map[string]string // lower-case names, without x-amz-meta-
	sse, kmsKeyID                                                                            string
}

// New returns a server that verifies requests with reg and authorises them
// with policies. It serves nothing until [Server.Start] (or use it as an
// http.Handler).
func New(reg *sigv4.Registry, policies *iam.IAM, optFns ...func(*Options)) *Server {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Region == "" {
		o.Region = "us-east-1"
	}
	if o.Addr == "" {
		o.Addr = "127.0.0.1:0"
	}
	if o.MaxObjectSize <= 0 || o.MaxObjectSize > MaxObjectSize {
		o.MaxObjectSize = MaxObjectSize
	}
	clk := o.Clock
	if clk == nil {
		clk = reg.Clock()
	}
	return &Server{
		reg: reg, iam: policies, opts: o, clk: clk,
		buckets: map[string]*bucket{},
		uploads: map[string]*upload{},
		calls:   map[string]int{},
	}
}

// Region returns the server's region.
func (s *Server) Region() string { return s.opts.Region }

// Start listens on Options.Addr and serves in the background. It returns
// the base URL (http://127.0.0.1:PORT, https with Options.TLS) to use as
// the SDK's BaseEndpoint or AWS_ENDPOINT_URL_S3, with path-style
// addressing (s3.Options.UsePathStyle).
func (s *Server) Start() (string, error) {
	ln, err := net.Listen("tcp", s.opts.Addr)
	if err != nil {
		return "", fmt.Errorf("s3 stand-in: %w", err)
	}
	scheme := "http"
	if s.opts.TLS {
		cert, err := oidc.SelfSignedCertificate("127.0.0.1", "::1", "localhost")
		if err != nil {
			ln.Close()
			return "", fmt.Errorf("s3 stand-in: %w", err)
		}
		s.cert = cert.Leaf
		s.certPM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})
		ln = tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12})
		scheme = "https"
	}
	s.ln = ln
	s.hs = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	s.url = scheme + "://" + ln.Addr().String()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		_ = s.hs.Serve(ln)
	}()
	return s.url, nil
}

// URL returns the base URL after Start.
func (s *Server) URL() string { return s.url }

// CAPEM returns the PEM certificate clients must trust with Options.TLS
// (for AWS_CA_BUNDLE), nil without.
func (s *Server) CAPEM() []byte { return s.certPM }

// Client returns an *http.Client that trusts the server's certificate (a
// plain client without Options.TLS), for aws.Config.HTTPClient or
// presigned requests.
func (s *Server) Client() *http.Client {
	if s.cert == nil {
		return &http.Client{}
	}
	pool := x509.NewCertPool()
	pool.AddCert(s.cert)
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: tr}
}

// Close stops a started server.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		if s.hs != nil {
			err = s.hs.Close()
			s.wg.Wait()
		}
	})
	return err
}

// Calls reports how many requests for op (e.g. "PutObject") have arrived,
// whatever their outcome; "" counts every request.
func (s *Server) Calls(op string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op == "" {
		n := 0
		for _, c := range s.calls {
			n += c
		}
		return n
	}
	return s.calls[op]
}

// ResetCalls sets every call counter to zero.
func (s *Server) ResetCalls() {
	s.mu.Lock()
	s.calls = map[string]int{}
	s.mu.Unlock()
}

// FailNext makes the next n authenticated requests for op ("" = any
// operation) fail with the S3 error code: InternalError and SlowDown
// (which the SDK retries), ServiceUnavailable, or any other code (HTTP
// 400).
func (s *Server) FailNext(op string, n int, code string) {
	s.mu.Lock()
	s.faults = append(s.faults, &fault{op: op, n: n, code: code})
	s.mu.Unlock()
}

// ErrNoBucket is returned by the administrative methods for unknown
// buckets.
var ErrNoBucket = errors.New("s3 stand-in: no such bucket")

// CreateBucket creates a bucket without any authorisation check, for test
// setup. Creating an existing bucket is not an error.
func (s *Server) CreateBucket(name string) error {
	if err := validBucketName(name); err != nil {
		return fmt.Errorf("s3 stand-in: %s", err.msg)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.buckets[name]; !ok {
		s.buckets[name] = &bucket{name: name, created: s.clk.Now(), objects: map[string]*object{}}
	}
	return nil
}

// Object returns a copy of a stored object's content, for assertions.
func (s *Server) Object(bucketName, key string) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil, false
	}
	o, ok := b.objects[key]
	if !ok {
		return nil, false
	}
	return append([]byte(nil), o.data...), true
}

// Keys returns the keys of a bucket in order.
func (s *Server) Keys(bucketName string) ([]string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[bucketName]
	if !ok {
		return nil, ErrNoBucket
	}
	keys := make([]string, 0, len(b.objects))
	for k := range b.objects {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys, nil
}

// Uploads reports how many multipart uploads are in progress (created,
// neither completed nor aborted).
func (s *Server) Uploads() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.uploads)
}

// validBucketName applies S3's naming rules for new buckets.
func validBucketName(name string) *apiError {
	bad := func(why string) *apiError {
		e := newErr(http.StatusBadRequest, "InvalidBucketName", "The specified bucket is not valid.")
		e.extra = []xmlField{{"BucketName", name}}
		e.detail = why
		return e
	}
	if len(name) < 3 || len(name) > 63 {
		return bad("a bucket name has 3 to 63 characters")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(name)-1 {
				return bad("a bucket name begins and ends with a letter or digit")
			}
		default:
			return bad("a bucket name has only lower-case letters, digits, '.' and '-'")
		}
	}
	if strings.Contains(name, "..") || net.ParseIP(name) != nil {
		return bad("a bucket name has no \"..\" and is not an IP address")
	}
	return nil
}

func newID(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}
