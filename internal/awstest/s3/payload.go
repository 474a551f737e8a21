package s3

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// x-amz-content-sha256 values other than a hex SHA-256.
const (
	unsignedPayload          = "UNSIGNED-PAYLOAD"
	streamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
	streamingSigned          = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	streamingSignedTrailer   = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	streamingECDSA           = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD"
	streamingECDSATrailer    = "STREAMING-AWS4-ECDSA-P256-SHA256-PAYLOAD-TRAILER"
)

// Limits of the aws-chunked framing: a chunk-size line and the trailer
// section are small; anything longer is malformed.
const (
	maxChunkLine    = 4096
	maxTrailerBytes = 16 << 10
)

var errTooLarge = errors.New("too large")

// decodeAWSChunked decodes an aws-chunked body with unsigned chunks
// (x-amz-content-sha256: STREAMING-UNSIGNED-PAYLOAD-TRAILER): chunks of
// "HEX-SIZE\r\nDATA\r\n", a last chunk "0\r\n", then trailing headers
// "name:value\r\n" and a final "\r\n". It returns the payload and the
// trailers (names in lower case). A payload over limit bytes fails with
// errTooLarge.
func decodeAWSChunked(r io.Reader, limit int64) ([]byte, map[string]string, error) {
	br := bufio.NewReader(r)
	var out bytes.Buffer
	for {
		line, err := readLine(br, maxChunkLine)
		if err != nil {
			return nil, nil, fmt.Errorf("chunk header: %w", err)
		}
		sizeHex, ext, hasExt := strings.Cut(line, ";")
		if hasExt {
			return nil, nil, fmt.Errorf("chunk extension %q in an unsigned aws-chunked body", ext)
		}
		if sizeHex == "" || len(sizeHex) > 16 {
			return nil, nil, fmt.Errorf("malformed chunk size %q", sizeHex)
		}
		size, err := strconv.ParseUint(sizeHex, 16, 64)
		if err != nil {
			return nil, nil, fmt.Errorf("malformed chunk size %q", sizeHex)
		}
		if size == 0 {
			break
		}
		if size > uint64(limit) || int64(out.Len())+int64(size) > limit {
			return nil, nil, errTooLarge
		}
		if _, err := io.CopyN(&out, br, int64(size)); err != nil {
			return nil, nil, fmt.Errorf("chunk data: %w", io.ErrUnexpectedEOF)
		}
		end, err := readLine(br, 2)
		if err != nil || end != "" {
			return nil, nil, errors.New("chunk data not followed by CRLF")
		}
	}
	trailers := map[string]string{}
	total := 0
	for {
		line, err := readLine(br, maxTrailerBytes)
		if err != nil {
			return nil, nil, fmt.Errorf("trailer: %w", err)
		}
		if line == "" {
			break
		}
		total += len(line)
		if total > maxTrailerBytes {
			return nil, nil, errors.New("trailer section too long")
		}
		name, value, ok := strings.Cut(line, ":")
		name = strings.ToLower(strings.TrimSpace(name))
		if !ok || name == "" || strings.ContainsAny(name, " \t") {
			return nil, nil, fmt.Errorf("malformed trailer %q", line)
		}
		if _, dup := trailers[name]; dup {
			return nil, nil, fmt.Errorf("trailer %s sent twice", name)
		}
		trailers[name] = strings.TrimSpace(value)
	}
	if n, _ := br.Read(make([]byte, 1)); n != 0 {
		return nil, nil, errors.New("data after the end of the aws-chunked body")
	}
	return out.Bytes(), trailers, nil
}

// readLine reads up to and excluding "\r\n"; a line longer than max or a
// bare "\n" is malformed, EOF before the CRLF is io.ErrUnexpectedEOF.
func readLine(br *bufio.Reader, max int) (string, error) {
	var b []byte
	for {
		c, err := br.ReadByte()
		if err != nil {
			return "", io.ErrUnexpectedEOF
		}
		if c == '\r' {
			c2, err := br.ReadByte()
			if err != nil {
				return "", io.ErrUnexpectedEOF
			}
			if c2 != '\n' {
				return "", errors.New("CR not followed by LF")
			}
			return string(b), nil
		}
		if c == '\n' {
			return "", errors.New("bare LF")
		}
		if len(b) >= max {
			return "", errors.New("line too long")
		}
		b = append(b, c)
	}
}

// payload is a request body as S3 verified it.
type payload struct {
	data []byte
	// alg and sum are the additional checksum the client sent (header or
	// trailer) and S3 verified; empty when it sent none.
	alg, sum string
}

// readPayload reads the request body once, decoding aws-chunked framing,
// and verifies every integrity header: x-amz-decoded-content-length, the
// x-amz-checksum-* header or trailer, x-amz-sdk-checksum-algorithm and
// Content-MD5. The SHA-256 of a signed payload was checked with the
// signature.
func (q *request) readPayload() (payload, error) {
	if q.payload != nil {
		return *q.payload, nil
	}
	p, err := q.s.decodePayload(q, true)
	if err != nil {
		return payload{}, err
	}
	q.payload = &p
	return p, nil
}

// readBodyOnly is readPayload for CompleteMultipartUpload, whose
// x-amz-checksum-* headers describe the whole object, not the request
// body.
func (q *request) readBodyOnly() ([]byte, error) {
	p, err := q.s.decodePayload(q, false)
	if err != nil {
		return nil, err
	}
	q.payload = &p
	return p.data, nil
}

func (s *Server) decodePayload(q *request, checkHeaders bool) (payload, error) {
	r := q.r
	var p payload
	chunked := false
	var encodings []string
	for _, e := range strings.Split(r.Header.Get("Content-Encoding"), ",") {
		e = strings.TrimSpace(e)
		if strings.EqualFold(e, "aws-chunked") {
			chunked = true
		} else if e != "" {
			encodings = append(encodings, e)
		}
	}
	q.contentEncoding = strings.Join(encodings, ",")
	limit := s.opts.MaxObjectSize
	switch {
	case chunked:
		if q.mode != streamingUnsignedTrailer {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "Content-Encoding aws-chunked needs x-amz-content-sha256 %s, not %q", streamingUnsignedTrailer, q.mode)
		}
		dl := r.Header.Get("X-Amz-Decoded-Content-Length")
		if dl == "" {
			return p, newErr(http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
		}
		want, err := strconv.ParseInt(dl, 10, 64)
		if err != nil || want < 0 {
			return p, newErr(http.StatusBadRequest, "InvalidArgument", "x-amz-decoded-content-length %q is not a length", dl)
		}
		if want > limit {
			return p, errEntityTooLarge(want, limit)
		}
		data, trailers, err := decodeAWSChunked(r.Body, limit)
		if errors.Is(err, errTooLarge) {
			return p, errEntityTooLarge(want, limit)
		}
		if err != nil {
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return p, newErr(http.StatusBadRequest, "IncompleteBody", "The request body terminated unexpectedly")
			}
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "malformed aws-chunked body: %v", err)
		}
		if int64(len(data)) != want {
			return p, newErr(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the x-amz-decoded-content-length HTTP header (%d decoded, %d declared)", len(data), want)
		}
		p.data = data
		declared := map[string]bool{}
		for _, v := range r.Header.Values("X-Amz-Trailer") {
			for _, name := range strings.Split(v, ",") {
				if name = strings.ToLower(strings.TrimSpace(name)); name != "" {
					declared[name] = true
				}
			}
		}
		for name := range declared {
			if _, ok := trailers[name]; !ok {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "the trailer %s announced in x-amz-trailer was not sent", name)
			}
		}
		for name, v := range trailers {
			if !declared[name] {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "trailer %s was not announced in x-amz-trailer", name)
			}
			alg, ok := algorithmOfHeader(name)
			if !ok {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "unsupported trailer %s", name)
			}
			if p.alg != "" {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
			}
			p.alg, p.sum = alg, v
		}
	default:
		if q.mode == streamingUnsignedTrailer {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "x-amz-content-sha256 %s needs Content-Encoding aws-chunked", q.mode)
		}
		if q.body != nil {
			p.data = q.body
			break
		}
		data, err := readBody(r, limit)
		if err != nil {
			return p, err
		}
		p.data = data
	}
	if !checkHeaders {
		return p, nil
	}
	for name, vs := range r.Header {
		alg, ok := algorithmOfHeader(name)
		if !ok {
			if strings.HasPrefix(strings.ToLower(name), "x-amz-checksum-") && !strings.EqualFold(name, "X-Amz-Checksum-Algorithm") &&
				!strings.EqualFold(name, "X-Amz-Checksum-Type") && !strings.EqualFold(name, "X-Amz-Checksum-Mode") {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "unsupported checksum header %s", strings.ToLower(name))
			}
			continue
		}
		if p.alg != "" || len(vs) != 1 {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		p.alg, p.sum = alg, vs[0]
	}
	if sdk := r.Header.Get("X-Amz-Sdk-Checksum-Algorithm"); sdk != "" {
		if !validAlgorithm(sdk) {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
		if p.alg == "" {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "x-amz-sdk-checksum-algorithm specified, but no corresponding x-amz-checksum-* or x-amz-trailer headers were found.")
		}
		if !strings.EqualFold(sdk, p.alg) {
			return p, newErr(http.StatusBadRequest, "InvalidRequest", "Value for x-amz-sdk-checksum-algorithm header is invalid.")
		}
	}
	if p.alg != "" {
		if got := checksumOf(p.alg, p.data); got != p.sum {
			if !validChecksumEncoding(p.alg, p.sum) {
				return p, newErr(http.StatusBadRequest, "InvalidRequest", "Value for %s header is invalid.", checksumHeader(p.alg))
			}
			return p, newErr(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.", p.alg)
		}
	}
	if md := r.Header.Get("Content-Md5"); md != "" {
		b, err := base64.StdEncoding.DecodeString(md)
		if err != nil || len(b) != 16 {
			return p, newErr(http.StatusBadRequest, "InvalidDigest", "The Content-MD5 you specified is not valid.")
		}
		if md5Base64(p.data) != md {
			return p, newErr(http.StatusBadRequest, "BadDigest", "The Content-MD5 you specified did not match what we received.")
		}
	}
	return p, nil
}

// validChecksumEncoding reports whether sum is base64 of the right length
// for alg.
func validChecksumEncoding(alg, sum string) bool {
	b, err := base64.StdEncoding.DecodeString(sum)
	return err == nil && len(b) == newHash(alg).Size()
}

// readBody reads a non-chunked body of at most limit bytes; it must have a
// Content-Length, as S3 requires.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	if r.ContentLength < 0 {
		return nil, newErr(http.StatusLengthRequired, "MissingContentLength", "You must provide the Content-Length HTTP header.")
	}
	if r.ContentLength > limit {
		return nil, errEntityTooLarge(r.ContentLength, limit)
	}
	if r.Body == nil || r.ContentLength == 0 {
		return []byte{}, nil
	}
	data := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, data); err != nil {
		return nil, newErr(http.StatusBadRequest, "IncompleteBody", "You did not provide the number of bytes specified by the Content-Length HTTP header")
	}
	return data, nil
}

func errEntityTooLarge(size, limit int64) *apiError {
	e := newErr(http.StatusBadRequest, "EntityTooLarge", "Your proposed upload exceeds the maximum allowed size")
	e.extra = append(e.extra, xmlField{"ProposedSize", strconv.FormatInt(size, 10)}, xmlField{"MaxSizeAllowed", strconv.FormatInt(limit, 10)})
	return e
}
