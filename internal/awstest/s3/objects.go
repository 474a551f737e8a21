package s3

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Object operations: PutObject, GetObject, HeadObject, DeleteObject,
// DeleteObjects, CopyObject.

// headersFrom reads the system and user metadata a write stores.
func (s *Server) headersFrom(q *request) (objectHeaders, error) {
	r := q.r
	h := objectHeaders{
		contentType:        r.Header.Get("Content-Type"),
		contentEncoding:    q.contentEncoding,
		contentDisposition: r.Header.Get("Content-Disposition"),
		contentLanguage:    r.Header.Get("Content-Language"),
		cacheControl:       r.Header.Get("Cache-Control"),
		expires:            r.Header.Get("Expires"),
	}
	if q.payload == nil {
		h.contentEncoding = r.Header.Get("Content-Encoding")
	}
	size := 0
	for name, vs := range r.Header {
		l := strings.ToLower(name)
		if m, ok := strings.CutPrefix(l, "x-amz-meta-"); ok {
			if h.meta == nil {
				h.meta = map[string]string{}
			}
			h.meta[m] = strings.Join(vs, ",")
			size += len(m) + len(h.meta[m])
		}
	}
	if size > maxMetadataSize {
		e := newErr(http.StatusBadRequest, "MetadataTooLarge", "Your metadata headers exceed the maximum allowed metadata size.")
		e.extra = []xmlField{{"Size", strconv.Itoa(size)}, {"MaxSizeAllowed", strconv.Itoa(maxMetadataSize)}}
		return h, e
	}
	sse, keyID, err := s.sseFrom(r)
	if err != nil {
		return h, err
	}
	h.sse, h.kmsKeyID = sse, keyID
	return h, nil
}

// sseFrom validates the server-side encryption headers of a write; S3
// encrypts every object, with SSE-S3 (AES256) by default.
func (s *Server) sseFrom(r *http.Request) (sse, keyID string, err error) {
	sse = r.Header.Get("X-Amz-Server-Side-Encryption")
	keyID = r.Header.Get("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id")
	switch sse {
	case "":
		sse = "AES256"
		if keyID != "" {
			return "", "", newErr(http.StatusBadRequest, "InvalidArgument", "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
	case "AES256":
		if keyID != "" {
			return "", "", newErr(http.StatusBadRequest, "InvalidArgument", "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
		}
	case "aws:kms", "aws:kms:dsse":
		if keyID == "" {
			keyID = "arn:aws:kms:" + s.opts.Region + ":" + s.iam.Account() + ":alias/aws/s3"
		}
	default:
		return "", "", newErr(http.StatusBadRequest, "InvalidArgument", "The encryption method specified is not supported")
	}
	return sse, keyID, nil
}

// setObjectHeaders writes the headers describing a stored object.
func setObjectHeaders(h http.Header, o *object) {
	h.Set("ETag", o.etag)
	h.Set("Last-Modified", httpTime(o.modified))
	ct := o.headers.contentType
	if ct == "" {
		ct = "binary/octet-stream"
	}
	h.Set("Content-Type", ct)
	for name, v := range map[string]string{
		"Content-Encoding":    o.headers.contentEncoding,
		"Content-Disposition": o.headers.contentDisposition,
		"Content-Language":    o.headers.contentLanguage,
		"Cache-Control":       o.headers.cacheControl,
		"Expires":             o.headers.expires,
	} {
		if v != "" {
			h.Set(name, v)
		}
	}
	for k, v := range o.headers.meta {
		h["x-amz-meta-"+k] = []string{v}
	}
	setSSEHeaders(h, o.headers)
}

func setSSEHeaders(h http.Header, oh objectHeaders) {
	h.Set("X-Amz-Server-Side-Encryption", oh.sse)
	if oh.kmsKeyID != "" {
		h.Set("X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", oh.kmsKeyID)
	}
}

// lookup returns the object or the error S3 answers for a missing one:
// NoSuchKey when the caller may list the bucket, else AccessDenied, so a
// caller who cannot list learns nothing about which keys exist.
func (s *Server) lookup(q *request, bucketName, key string) (*object, error) {
	s.mu.Lock()
	b, ok := s.buckets[bucketName]
	var o *object
	if ok {
		o = b.objects[key]
	}
	s.mu.Unlock()
	if !ok {
		e := newErr(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		e.extra = []xmlField{{"BucketName", bucketName}}
		return nil, e
	}
	if o != nil {
		return o, nil
	}
	// The request has no prefix, so an s3:prefix condition on ListBucket
	// does not hold.
	if !s.allowed(q, "s3:ListBucket", bucketARN(bucketName), nil) {
		return nil, newErr(http.StatusForbidden, "AccessDenied", "Access Denied").
			withDetail("the key does not exist, and without s3:ListBucket on %s S3 does not say so", bucketARN(bucketName))
	}
	e := newErr(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
	e.extra = []xmlField{{"Key", key}}
	return nil, e
}

// checkVersion accepts only the "null" version of an unversioned bucket.
func checkVersion(v url.Values) error {
	if id, ok := v["versionId"]; ok && (len(id) != 1 || id[0] != "null") {
		e := newErr(http.StatusBadRequest, "InvalidArgument", "Invalid version id specified")
		e.extra = []xmlField{{"ArgumentName", "versionId"}, {"ArgumentValue", strings.Join(id, ",")}}
		return e
	}
	return nil
}

func preconditionFailed(cond string) *apiError {
	e := newErr(http.StatusPreconditionFailed, "PreconditionFailed", "At least one of the pre-conditions you specified did not hold")
	e.extra = []xmlField{{"Condition", cond}}
	return e
}

// etagMatches compares an If-Match / If-None-Match list with an ETag.
func etagMatches(list, etag string) bool {
	for _, v := range strings.Split(list, ",") {
		v = strings.TrimSpace(v)
		if v == "*" || strings.Trim(v, `"`) == strings.Trim(etag, `"`) {
			return true
		}
	}
	return false
}

// writeConditions applies If-None-Match: * and If-Match to a write (S3
// conditional writes) given the current object (nil if none).
func writeConditions(r *http.Request, cur *object, key string) error {
	if v := r.Header.Get("If-None-Match"); v != "" {
		if v != "*" {
			return newErr(http.StatusNotImplemented, "NotImplemented", "A header you provided implies functionality that is not implemented").withDetail("If-None-Match on a write takes only *")
		}
		if cur != nil {
			return preconditionFailed("If-None-Match")
		}
	}
	if v := r.Header.Get("If-Match"); v != "" {
		if cur == nil {
			e := newErr(http.StatusNotFound, "NoSuchKey", "The specified key does not exist.")
			e.extra = []xmlField{{"Key", key}}
			return e
		}
		if !etagMatches(v, cur.etag) {
			return preconditionFailed("If-Match")
		}
	}
	return nil
}

func (s *Server) putObject(q *request) error {
	if err := s.authorize(q, "s3:PutObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	p, err := q.readPayload()
	if err != nil {
		return err
	}
	hdr, err := s.headersFrom(q)
	if err != nil {
		return err
	}
	alg, sum := p.alg, p.sum
	if alg == "" {
		// S3 computes and stores a CRC64NVME checksum when the client
		// sends none.
		alg, sum = CRC64NVME, checksumOf(CRC64NVME, p.data)
	}
	o := &object{
		data: p.data, etag: etagOf(p.data), modified: s.clk.Now(), headers: hdr,
		checksumAlg: alg, checksum: sum, checksumType: FullObject,
	}
	if err := s.store(q, o); err != nil {
		return err
	}
	h := q.w.Header()
	h.Set("ETag", o.etag)
	h.Set(checksumHeader(alg), sum)
	h.Set("X-Amz-Checksum-Type", FullObject)
	setSSEHeaders(h, hdr)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

// store puts o under the request's key after the write conditions.
func (s *Server) store(q *request, o *object) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	b, ok := s.buckets[q.bucket]
	if !ok {
		e := newErr(http.StatusNotFound, "NoSuchBucket", "The specified bucket does not exist")
		e.extra = []xmlField{{"BucketName", q.bucket}}
		return e
	}
	if err := writeConditions(q.r, b.objects[q.key], q.key); err != nil {
		return err
	}
	b.objects[q.key] = o
	return nil
}

// byteRange is a satisfiable range [start, end] of an object.
type byteRange struct{ start, end int64 }

// parseRange interprets a Range header for an object of size bytes as S3
// does: one range of "bytes=FIRST-LAST", "bytes=FIRST-" or "bytes=-SUFFIX";
// anything else (several ranges, other units, bad syntax) is ignored and the
// whole object returned. ok is false when there is no usable range;
// unsatisfiable reports a range that starts beyond the object.
func parseRange(v string, size int64) (rng byteRange, ok, unsatisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(v), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return byteRange{}, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return byteRange{}, false, false
	}
	num := func(s string) (int64, bool) {
		if s == "" || len(s) > 19 {
			return 0, false
		}
		for i := 0; i < len(s); i++ {
			if s[i] < '0' || s[i] > '9' {
				return 0, false
			}
		}
		n, err := strconv.ParseInt(s, 10, 64)
		return n, err == nil
	}
	if first == "" {
		n, ok := num(last)
		if !ok {
			return byteRange{}, false, false
		}
		if n == 0 || size == 0 {
			return byteRange{}, false, true
		}
		return byteRange{start: max(size-n, 0), end: size - 1}, true, false
	}
	start, ok := num(first)
	if !ok {
		return byteRange{}, false, false
	}
	end := size - 1
	if last != "" {
		e, ok := num(last)
		if !ok || e < start {
			return byteRange{}, false, false
		}
		end = min(e, size-1)
	}
	if start >= size {
		return byteRange{}, false, true
	}
	return byteRange{start: start, end: end}, true, false
}

func (s *Server) getObject(q *request) error {
	if err := s.authorize(q, "s3:GetObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	if err := checkVersion(q.query); err != nil {
		return err
	}
	if q.query.Has("partNumber") {
		return newErr(http.StatusNotImplemented, "NotImplemented", "A header or query you provided implies functionality that is not implemented.").withDetail("partNumber")
	}
	o, err := s.lookup(q, q.bucket, q.key)
	if err != nil {
		return err
	}
	r := q.r
	if v := r.Header.Get("If-Match"); v != "" {
		if !etagMatches(v, o.etag) {
			return preconditionFailed("If-Match")
		}
	} else if v := r.Header.Get("If-Unmodified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && o.modified.Truncate(time.Second).After(t) {
			return preconditionFailed("If-Unmodified-Since")
		}
	}
	notModified := false
	if v := r.Header.Get("If-None-Match"); v != "" {
		notModified = etagMatches(v, o.etag)
	} else if v := r.Header.Get("If-Modified-Since"); v != "" {
		if t, err := http.ParseTime(v); err == nil && !o.modified.Truncate(time.Second).After(t) {
			notModified = true
		}
	}
	h := q.w.Header()
	if notModified {
		h.Set("ETag", o.etag)
		h.Set("Last-Modified", httpTime(o.modified))
		q.w.WriteHeader(http.StatusNotModified)
		return nil
	}
	size := int64(len(o.data))
	rng, ranged, unsatisfiable := byteRange{0, size - 1}, false, false
	if v := r.Header.Get("Range"); v != "" {
		var ok bool
		var got byteRange
		got, ok, unsatisfiable = parseRange(v, size)
		if unsatisfiable {
			e := newErr(http.StatusRequestedRangeNotSatisfiable, "InvalidRange", "The requested range is not satisfiable")
			e.extra = []xmlField{{"RangeRequested", v}, {"ActualObjectSize", strconv.FormatInt(size, 10)}}
			h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
			return e
		}
		if ok {
			rng, ranged = got, true
		}
	}
	setObjectHeaders(h, o)
	h.Set("Accept-Ranges", "bytes")
	if !ranged && strings.EqualFold(r.Header.Get("X-Amz-Checksum-Mode"), "ENABLED") && o.checksumAlg != "" {
		h.Set(checksumHeader(o.checksumAlg), o.checksum)
		h.Set("X-Amz-Checksum-Type", o.checksumType)
	}
	overrides := map[string]string{
		"response-content-type":        "Content-Type",
		"response-content-language":    "Content-Language",
		"response-expires":             "Expires",
		"response-cache-control":       "Cache-Control",
		"response-content-disposition": "Content-Disposition",
		"response-content-encoding":    "Content-Encoding",
	}
	for p, name := range overrides {
		if v := q.query.Get(p); v != "" {
			h.Set(name, v)
		}
	}
	status := http.StatusOK
	body := o.data
	if ranged {
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(rng.start, 10)+"-"+strconv.FormatInt(rng.end, 10)+"/"+strconv.FormatInt(size, 10))
		body = o.data[rng.start : rng.end+1]
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	q.w.WriteHeader(status)
	if q.op == OpGetObject {
		_, _ = q.w.Write(body)
	}
	return nil
}

func (s *Server) deleteObject(q *request) error {
	if err := s.authorize(q, "s3:DeleteObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	if err := checkVersion(q.query); err != nil {
		return err
	}
	s.mu.Lock()
	if b, ok := s.buckets[q.bucket]; ok {
		delete(b.objects, q.key)
	}
	s.mu.Unlock()
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func malformedXML() *apiError {
	return newErr(http.StatusBadRequest, "MalformedXML", "The XML you provided was not well-formed or did not validate against our published schema")
}

func (s *Server) deleteObjects(q *request) error {
	p, err := q.readPayload()
	if err != nil {
		return err
	}
	if p.alg == "" && q.r.Header.Get("Content-Md5") == "" {
		return newErr(http.StatusBadRequest, "InvalidRequest", "Missing required header for this request: Content-MD5 OR x-amz-checksum-*")
	}
	var in deleteRequest
	if err := xml.Unmarshal(p.data, &in); err != nil {
		return malformedXML().withDetail("%v", err)
	}
	if len(in.Objects) == 0 || len(in.Objects) > 1000 {
		return malformedXML().withDetail("a Delete request names 1 to 1000 objects, not %d", len(in.Objects))
	}
	out := deleteResult{NS: s3NS}
	for _, obj := range in.Objects {
		switch {
		case obj.Key == "" || len(obj.Key) > maxKeyLength:
			out.Errors = append(out.Errors, deleteError{Key: obj.Key, Code: "InvalidArgument", Message: "Invalid key"})
			continue
		case obj.VersionID != "" && obj.VersionID != "null":
			out.Errors = append(out.Errors, deleteError{Key: obj.Key, Code: "NoSuchVersion", Message: "The specified version does not exist."})
			continue
		case !s.allowed(q, "s3:DeleteObject", objectARN(q.bucket, obj.Key), nil):
			out.Errors = append(out.Errors, deleteError{Key: obj.Key, Code: "AccessDenied", Message: "Access Denied"})
			continue
		}
		s.mu.Lock()
		if b, ok := s.buckets[q.bucket]; ok {
			delete(b.objects, obj.Key)
		}
		s.mu.Unlock()
		if !in.Quiet {
			out.Deleted = append(out.Deleted, deletedKey{Key: obj.Key})
		}
	}
	writeXML(q.w, http.StatusOK, out)
	return nil
}

// parseCopySource splits x-amz-copy-source ("bucket/key" or
// "/bucket/key", URL-encoded, optionally "?versionId=ID").
func parseCopySource(v string) (bucketName, key, version string, err error) {
	raw, query, _ := strings.Cut(v, "?")
	dec, uerr := url.PathUnescape(raw)
	bad := newErr(http.StatusBadRequest, "InvalidArgument", "Copy Source must mention the source bucket and key: sourcebucket/sourcekey")
	if uerr != nil {
		return "", "", "", bad
	}
	dec = strings.TrimPrefix(dec, "/")
	bucketName, key, ok := strings.Cut(dec, "/")
	if !ok || bucketName == "" || key == "" {
		return "", "", "", bad
	}
	if query != "" {
		vals, perr := url.ParseQuery(query)
		if perr != nil || len(vals) != 1 || len(vals["versionId"]) != 1 {
			return "", "", "", bad
		}
		version = vals.Get("versionId")
	}
	return bucketName, key, version, nil
}

func (s *Server) copyObject(q *request) error {
	r := q.r
	srcBucket, srcKey, version, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return err
	}
	if version != "" && version != "null" {
		return newErr(http.StatusBadRequest, "InvalidArgument", "Invalid version id specified")
	}
	if err := s.authorize(q, "s3:GetObject", objectARN(srcBucket, srcKey), nil); err != nil {
		return err
	}
	if err := s.authorize(q, "s3:PutObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	p, err := q.readPayload()
	if err != nil {
		return err
	}
	if len(p.data) != 0 {
		return newErr(http.StatusBadRequest, "InvalidRequest", "CopyObject takes no request body")
	}
	src, err := s.lookup(q, srcBucket, srcKey)
	if err != nil {
		return err
	}
	if v := r.Header.Get("X-Amz-Copy-Source-If-Match"); v != "" && !etagMatches(v, src.etag) {
		return preconditionFailed("x-amz-copy-source-If-Match")
	}
	if v := r.Header.Get("X-Amz-Copy-Source-If-None-Match"); v != "" && etagMatches(v, src.etag) {
		return preconditionFailed("x-amz-copy-source-If-None-Match")
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	var hdr objectHeaders
	switch directive {
	case "", "COPY":
		hdr = src.headers
		sse, keyID, err := s.sseFrom(r)
		if err != nil {
			return err
		}
		hdr.sse, hdr.kmsKeyID = sse, keyID
	case "REPLACE":
		if hdr, err = s.headersFrom(q); err != nil {
			return err
		}
	default:
		return newErr(http.StatusBadRequest, "InvalidArgument", "Unknown metadata directive.")
	}
	alg := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Algorithm"))
	if alg != "" && !validAlgorithm(alg) {
		return errUnsupportedAlgorithm()
	}
	if srcBucket == q.bucket && srcKey == q.key && directive != "REPLACE" && alg == "" &&
		hdr.sse == src.headers.sse && hdr.kmsKeyID == src.headers.kmsKeyID {
		return newErr(http.StatusBadRequest, "InvalidRequest", "This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	if alg == "" {
		alg = src.checksumAlg
		if alg == "" {
			alg = CRC64NVME
		}
	}
	o := &object{
		data: src.data, etag: etagOf(src.data), modified: s.clk.Now(), headers: hdr,
		checksumAlg: alg, checksum: checksumOf(alg, src.data), checksumType: FullObject,
	}
	if err := s.store(q, o); err != nil {
		return err
	}
	res := copyObjectResult{NS: s3NS, ETag: o.etag, LastModified: xmlTime(o.modified), ChecksumType: FullObject}
	res.set(alg, o.checksum)
	setSSEHeaders(q.w.Header(), hdr)
	writeXML(q.w, http.StatusOK, res)
	return nil
}

func errUnsupportedAlgorithm() *apiError {
	return newErr(http.StatusBadRequest, "InvalidRequest", "Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
}
