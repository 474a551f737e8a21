package s3store

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// PresignOptions configure one presigned URL.
type PresignOptions struct {
	// ContentType (PUT) must then be sent as the Content-Type header.
	ContentType string
	// ServerSideEncryption and SSEKMSKeyID (PUT) override the Store's;
	// the matching headers are in Presigned.Header.
	ServerSideEncryption types.ServerSideEncryption
	SSEKMSKeyID          string
	// VersionID (GET) presigns a specific version.
	VersionID string
	// ResponseContentDisposition (GET) sets the response's
	// Content-Disposition, e.g. `attachment; filename="report.pdf"`.
	ResponseContentDisposition string
	// ClientOptions apply to the presigning client.
	ClientOptions []func(*s3.Options)
}

// Presigned is a presigned request that anyone holding it can send with
// any HTTP client until Expires. Its URL carries a signature and, with
// session credentials, the session token, so it is a secret: String,
// GoString, Format and LogValue print it redacted, whether the Presigned
// is printed by value or by pointer, alone or inside another value. Use
// URL or NewRequest to send it.
type Presigned struct {
	// Method is GET or PUT.
	Method string
	// Header holds the headers the request must carry as they are
	// (they are signed), e.g. Content-Type or x-amz-server-side-encryption.
	Header http.Header
	// Expires is when the URL stops working: the requested lifetime, or
	// the expiry of the credentials that signed it if that comes first.
	Expires time.Time

	// url is behind a pointer to a string because fmt prints such a
	// pointer as an address, whatever the verb, even where it calls no
	// method: from an unexported field of a caller's struct.
	url *string
}

// URL returns the presigned URL. It is a bearer credential: hand it only
// to whoever should access the object.
func (p Presigned) URL() string {
	if p.url == nil {
		return ""
	}
	return *p.url
}

// NewRequest returns an *http.Request for the presigned call, with body
// (nil for GET) and the required headers.
func (p Presigned) NewRequest(ctx context.Context, body io.Reader) (*http.Request, error) {
	req, err := http.NewRequestWithContext(ctx, p.Method, p.URL(), body)
	if err != nil {
		return nil, fmt.Errorf("s3store: presigned request: %w", err)
	}
	for k, vs := range p.Header {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req, nil
}

// redacted is the URL without its query (signature, credential, token).
func (p Presigned) redacted() string {
	u, err := url.Parse(p.URL())
	if err != nil {
		return "[invalid URL]"
	}
	if u.RawQuery != "" {
		u.RawQuery = "REDACTED"
	}
	u.User = nil
	return u.String()
}

// The redaction methods have value receivers so that they apply to a
// Presigned and a *Presigned alike, and to one held by value in a struct,
// slice or map.

// String returns the method and the URL with its query redacted.
func (p Presigned) String() string {
	return p.Method + " " + p.redacted() + " (presigned, expires " + p.Expires.UTC().Format(time.RFC3339) + ")"
}

// GoString is String, so %#v redacts too.
func (p Presigned) GoString() string { return "s3store.Presigned{" + p.String() + "}" }

// Format prints the redacted form for every verb and flag.
func (p Presigned) Format(f fmt.State, verb rune) {
	switch {
	case verb == 'v' && f.Flag('#'):
		_, _ = io.WriteString(f, p.GoString())
	case verb == 'q':
		_, _ = io.WriteString(f, strconv.Quote(p.String()))
	default:
		_, _ = io.WriteString(f, p.String())
	}
}

// LogValue logs the method, redacted URL and expiry.
func (p Presigned) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("method", p.Method),
		slog.String("url", p.redacted()),
		slog.Time("expires", p.Expires),
	)
}

var (
	_ fmt.Stringer   = Presigned{}
	_ fmt.GoStringer = Presigned{}
	_ fmt.Formatter  = Presigned{}
	_ slog.LogValuer = Presigned{}
)

// PresignGet returns a URL that downloads key with a plain HTTP GET for
// expires (0: Options.PresignExpires; at most 7 days).
func (s *Store) PresignGet(ctx context.Context, key string, expires time.Duration, optFns ...func(*PresignOptions)) (*Presigned, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var po PresignOptions
	for _, fn := range optFns {
		fn(&po)
	}
	expires, err := s.presignExpires(expires)
	if err != nil {
		return nil, err
	}
	req, err := s.presign.PresignGetObject(ctx, &s3.GetObjectInput{
		Bucket:                     aws.String(s.bucket),
		Key:                        aws.String(key),
		VersionId:                  nonEmpty(po.VersionID),
		ResponseContentDisposition: nonEmpty(po.ResponseContentDisposition),
	}, func(o *s3.PresignOptions) {
		o.Expires = expires
		o.ClientOptions = append(o.ClientOptions, po.ClientOptions...)
	})
	if err != nil {
		return nil, wrapErr("presign get", s.bucket, key, err)
	}
	return s.presigned(ctx, req.Method, req.URL, req.SignedHeader, expires), nil
}

// PresignPut returns a URL that uploads key with a plain HTTP PUT (single
// request, up to 5 GiB) for expires (0: Options.PresignExpires; at most 7
// days). The request must carry Presigned.Header.
func (s *Store) PresignPut(ctx context.Context, key string, expires time.Duration, optFns ...func(*PresignOptions)) (*Presigned, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	var po PresignOptions
	for _, fn := range optFns {
		fn(&po)
	}
	expires, err := s.presignExpires(expires)
	if err != nil {
		return nil, err
	}
	alg, keyID, err := s.sse(po.ServerSideEncryption, po.SSEKMSKeyID)
	if err != nil {
		return nil, err
	}
	req, err := s.presign.PresignPutObject(ctx, &s3.PutObjectInput{
		Bucket:               aws.String(s.bucket),
		Key:                  aws.String(key),
		ContentType:          nonEmpty(po.ContentType),
		ServerSideEncryption: alg,
		SSEKMSKeyId:          keyID,
	}, func(o *s3.PresignOptions) {
		o.Expires = expires
		o.ClientOptions = append(o.ClientOptions, po.ClientOptions...)
	})
	if err != nil {
		return nil, wrapErr("presign put", s.bucket, key, err)
	}
	return s.presigned(ctx, req.Method, req.URL, req.SignedHeader, expires), nil
}

func (s *Store) presignExpires(d time.Duration) (time.Duration, error) {
	if d == 0 {
		d = s.opts.PresignExpires
	}
	if d < time.Second || d > MaxPresignExpires {
		return 0, fmt.Errorf("s3store: presigned URL lifetime %v must be between 1s and 7 days", d)
	}
	return d, nil
}

func (s *Store) presigned(ctx context.Context, method, u string, signed http.Header, d time.Duration) *Presigned {
	h := signed.Clone()
	h.Del("Host")
	if len(h) == 0 {
		h = nil
	}
	exp := time.Now().Add(d)
	// The signature is only as good as the credentials behind it: with
	// session credentials the URL dies when the session does. Only a cache
	// is asked (a raw provider would fetch new credentials).
	if s.credsCache != nil {
		if c, err := s.credsCache.Retrieve(ctx); err == nil && c.CanExpire && c.Expires.Before(exp) {
			exp = c.Expires
		}
	}
	return &Presigned{Method: method, Header: h, Expires: exp, url: &u}
}
