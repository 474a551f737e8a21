package s3

import (
	"bytes"
	"encoding/xml"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Multipart uploads: CreateMultipartUpload, UploadPart,
// CompleteMultipartUpload, AbortMultipartUpload.

type upload struct {
	id, bucket, key string
	initiated       time.Time
	headers         objectHeaders
	// alg and ctype are the checksum algorithm and type of the object;
	// explicit is whether the client chose them (then a COMPOSITE
	// upload's Complete must list each part's checksum).
	alg, ctype string
	explicit   bool
	parts      map[int]*part
}

type part struct {
	data []byte
	etag string
	sum  string // checksum with the upload's algorithm
}

func noSuchUpload(id string) *apiError {
	e := newErr(http.StatusNotFound, "NoSuchUpload", "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.")
	e.extra = []xmlField{{"UploadId", id}}
	return e
}

// uploadFor returns the upload named by the request's uploadId, which must
// belong to the request's bucket and key.
func (s *Server) uploadFor(q *request) (*upload, error) {
	id := q.query.Get("uploadId")
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.uploads[id]
	if !ok || u.bucket != q.bucket || u.key != q.key {
		return nil, noSuchUpload(id)
	}
	return u, nil
}

func (s *Server) createMultipartUpload(q *request) error {
	if err := s.authorize(q, "s3:PutObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	if _, err := q.readPayload(); err != nil {
		return err
	}
	hdr, err := s.headersFrom(q)
	if err != nil {
		return err
	}
	r := q.r
	alg := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Algorithm"))
	ctype := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Type"))
	explicit := alg != ""
	switch {
	case alg != "" && !validAlgorithm(alg):
		return errUnsupportedAlgorithm()
	case ctype != "" && ctype != FullObject && ctype != Composite:
		return newErr(http.StatusBadRequest, "InvalidRequest", "Value for x-amz-checksum-type header is invalid.")
	case ctype != "" && alg == "":
		return newErr(http.StatusBadRequest, "InvalidRequest", "The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
	case alg == "":
		// S3's default: a full-object CRC64NVME it computes itself.
		alg, ctype = CRC64NVME, FullObject
	case ctype == "" && alg == CRC64NVME:
		ctype = FullObject
	case ctype == "":
		ctype = Composite
	}
	if ctype == Composite && alg == CRC64NVME {
		return newErr(http.StatusBadRequest, "InvalidRequest", "The COMPOSITE checksum type is not supported for the CRC64NVME algorithm.")
	}
	if ctype == FullObject && (alg == SHA1 || alg == SHA256) {
		return newErr(http.StatusBadRequest, "InvalidRequest", "The FULL_OBJECT checksum type is not supported for the %s algorithm.", alg)
	}
	u := &upload{
		id: newID(32), bucket: q.bucket, key: q.key, initiated: s.clk.Now(), headers: hdr,
		alg: alg, ctype: ctype, explicit: explicit, parts: map[int]*part{},
	}
	s.mu.Lock()
	s.uploads[u.id] = u
	s.mu.Unlock()
	h := q.w.Header()
	setSSEHeaders(h, hdr)
	if explicit {
		h.Set("X-Amz-Checksum-Algorithm", alg)
		h.Set("X-Amz-Checksum-Type", ctype)
	}
	writeXML(q.w, http.StatusOK, initiateMultipartUploadResult{NS: s3NS, Bucket: q.bucket, Key: q.key, UploadID: u.id})
	return nil
}

func (s *Server) uploadPart(q *request) error {
	if err := s.authorize(q, "s3:PutObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	n, err := strconv.Atoi(q.query.Get("partNumber"))
	if err != nil || n < 1 || n > 10000 {
		e := newErr(http.StatusBadRequest, "InvalidArgument", "Part number must be an integer between 1 and 10000, inclusive")
		e.extra = []xmlField{{"ArgumentName", "partNumber"}, {"ArgumentValue", q.query.Get("partNumber")}}
		return e
	}
	u, err := s.uploadFor(q)
	if err != nil {
		return err
	}
	p, err := q.readPayload()
	if err != nil {
		return err
	}
	if p.alg != "" && u.explicit && p.alg != u.alg {
		return newErr(http.StatusBadRequest, "InvalidRequest", "Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s",
			strings.ToLower(u.alg), strings.ToLower(p.alg))
	}
	pt := &part{data: p.data, etag: etagOf(p.data), sum: checksumOf(u.alg, p.data)}
	s.mu.Lock()
	if _, ok := s.uploads[u.id]; !ok {
		s.mu.Unlock()
		return noSuchUpload(u.id)
	}
	u.parts[n] = pt
	s.mu.Unlock()
	h := q.w.Header()
	h.Set("ETag", pt.etag)
	if p.alg != "" {
		h.Set(checksumHeader(p.alg), p.sum)
	}
	setSSEHeaders(h, u.headers)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) completeMultipartUpload(q *request) error {
	if err := s.authorize(q, "s3:PutObject", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	u, err := s.uploadFor(q)
	if err != nil {
		return err
	}
	body, err := q.readBodyOnly()
	if err != nil {
		return err
	}
	var in completeMultipartUpload
	if err := xml.Unmarshal(body, &in); err != nil {
		return malformedXML().withDetail("%v", err)
	}
	if len(in.Parts) == 0 {
		return newErr(http.StatusBadRequest, "InvalidRequest", "You must specify at least one part")
	}
	invalidPart := func(n int, etag, why string) *apiError {
		e := newErr(http.StatusBadRequest, "InvalidPart", "One or more of the specified parts could not be found.  The part may not have been uploaded, or the specified entity tag may not match the part's entity tag.")
		e.extra = []xmlField{{"UploadId", u.id}, {"PartNumber", strconv.Itoa(n)}, {"ETag", etag}}
		e.detail = why
		return e
	}
	for i := 1; i < len(in.Parts); i++ {
		if in.Parts[i].PartNumber <= in.Parts[i-1].PartNumber {
			return newErr(http.StatusBadRequest, "InvalidPartOrder", "The list of parts was not in ascending order. Parts must be ordered by part number.").
				withDetail("part %d after part %d", in.Parts[i].PartNumber, in.Parts[i-1].PartNumber)
		}
	}
	s.mu.Lock()
	parts := make([]*part, len(in.Parts))
	for i, cp := range in.Parts {
		pt, ok := u.parts[cp.PartNumber]
		if !ok {
			s.mu.Unlock()
			return invalidPart(cp.PartNumber, cp.ETag, "part not uploaded")
		}
		if strings.Trim(cp.ETag, `"`) != strings.Trim(pt.etag, `"`) {
			s.mu.Unlock()
			return invalidPart(cp.PartNumber, cp.ETag, "ETag does not match the part's "+pt.etag)
		}
		for _, a := range algorithms {
			if v := cp.get(a); v != "" && (a != u.alg || v != pt.sum) {
				s.mu.Unlock()
				return invalidPart(cp.PartNumber, cp.ETag, "the part's "+a+" checksum does not match")
			}
		}
		if u.explicit && u.ctype == Composite && cp.get(u.alg) == "" {
			s.mu.Unlock()
			return newErr(http.StatusBadRequest, "InvalidRequest", "The upload was created using a %s checksum. The complete request must include the checksum for each part. It was missing for part %d in the request.",
				strings.ToLower(u.alg), cp.PartNumber)
		}
		if i < len(in.Parts)-1 && len(pt.data) < MinPartSize {
			s.mu.Unlock()
			e := newErr(http.StatusBadRequest, "EntityTooSmall", "Your proposed upload is smaller than the minimum allowed object size.")
			e.extra = []xmlField{{"ProposedSize", strconv.Itoa(len(pt.data))}, {"MinSizeAllowed", strconv.Itoa(MinPartSize)},
				{"PartNumber", strconv.Itoa(cp.PartNumber)}, {"ETag", pt.etag}}
			return e
		}
		parts[i] = pt
	}
	s.mu.Unlock()

	var data bytes.Buffer
	etags := make([]string, len(parts))
	sums := make([]string, len(parts))
	for i, pt := range parts {
		data.Write(pt.data)
		etags[i], sums[i] = pt.etag, pt.sum
	}
	sum := checksumOf(u.alg, data.Bytes())
	if u.ctype == Composite {
		sum = compositeChecksum(u.alg, sums)
	}
	// A full-object checksum the client sends with Complete must match.
	for name, vs := range q.r.Header {
		if a, ok := algorithmOfHeader(name); ok {
			if a != u.alg || u.ctype != FullObject {
				return newErr(http.StatusBadRequest, "InvalidRequest", "The upload was created using the %s %s checksum; Complete cannot carry %s", u.ctype, u.alg, strings.ToLower(name))
			}
			if vs[0] != sum {
				return newErr(http.StatusBadRequest, "BadDigest", "The %s you specified did not match the calculated checksum.", a)
			}
		}
	}
	o := &object{
		data: data.Bytes(), etag: multipartETag(etags), modified: s.clk.Now(), headers: u.headers,
		checksumAlg: u.alg, checksum: sum, checksumType: u.ctype, parts: len(parts),
	}
	s.mu.Lock()
	if _, ok := s.uploads[u.id]; !ok {
		s.mu.Unlock()
		return noSuchUpload(u.id)
	}
	s.mu.Unlock()
	if err := s.store(q, o); err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.uploads, u.id)
	s.mu.Unlock()
	scheme := "http"
	if q.r.TLS != nil {
		scheme = "https"
	}
	res := completeMultipartUploadResult{
		NS: s3NS, Location: scheme + "://" + q.r.Host + "/" + q.bucket + "/" + q.key,
		Bucket: q.bucket, Key: q.key, ETag: o.etag, ChecksumType: u.ctype,
	}
	res.set(u.alg, sum)
	setSSEHeaders(q.w.Header(), u.headers)
	writeXML(q.w, http.StatusOK, res)
	return nil
}

func (s *Server) abortMultipartUpload(q *request) error {
	if err := s.authorize(q, "s3:AbortMultipartUpload", objectARN(q.bucket, q.key), nil); err != nil {
		return err
	}
	u, err := s.uploadFor(q)
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.uploads, u.id)
	s.mu.Unlock()
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}
