package s3

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
)

// Bucket operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket,
// GetBucketLocation, ListObjectsV2.

func (s *Server) listBuckets(q *request) error {
	if err := s.authorize(q, "s3:ListAllMyBuckets", "*", nil); err != nil {
		return err
	}
	out := listAllMyBucketsResult{NS: s3NS, Owner: owner{ID: ownerID(s.iam.Account())}}
	s.mu.Lock()
	for _, b := range s.buckets {
		out.Buckets = append(out.Buckets, bucketInfo{Name: b.name, CreationDate: xmlTime(b.created), BucketRegion: s.opts.Region})
	}
	s.mu.Unlock()
	sort.Slice(out.Buckets, func(i, j int) bool { return out.Buckets[i].Name < out.Buckets[j].Name })
	writeXML(q.w, http.StatusOK, out)
	return nil
}

// ownerID is the canonical user id S3 shows for an account.
func ownerID(account string) string {
	return strings.Repeat("0", 64-len(account)) + account
}

func (s *Server) createBucket(q *request) error {
	if err := s.authorize(q, "s3:CreateBucket", bucketARN(q.bucket), nil); err != nil {
		return err
	}
	if err := validBucketName(q.bucket); err != nil {
		return err
	}
	p, err := q.readPayload()
	if err != nil {
		return err
	}
	constraint := ""
	if len(strings.TrimSpace(string(p.data))) > 0 {
		var cfg createBucketConfiguration
		if err := xml.Unmarshal(p.data, &cfg); err != nil {
			return malformedXML().withDetail("%v", err)
		}
		constraint = cfg.LocationConstraint
	}
	switch {
	case s.opts.Region == "us-east-1" && constraint != "":
		e := newErr(http.StatusBadRequest, "InvalidLocationConstraint", "The specified location-constraint is not valid")
		e.extra = []xmlField{{"LocationConstraint", constraint}}
		return e
	case s.opts.Region != "us-east-1" && constraint != s.opts.Region:
		return newErr(http.StatusBadRequest, "IllegalLocationConstraintException",
			"The %s location constraint is incompatible for the region specific endpoint this request was sent to.", or(constraint, "unspecified"))
	}
	s.mu.Lock()
	_, exists := s.buckets[q.bucket]
	if !exists {
		s.buckets[q.bucket] = &bucket{name: q.bucket, created: s.clk.Now(), objects: map[string]*object{}}
	}
	s.mu.Unlock()
	if exists && s.opts.Region != "us-east-1" {
		// us-east-1 answers 200 to re-creating one's own bucket, for
		// compatibility; the other regions refuse.
		e := newErr(http.StatusConflict, "BucketAlreadyOwnedByYou", "Your previous request to create the named bucket succeeded and you already own it.")
		e.extra = []xmlField{{"BucketName", q.bucket}}
		return e
	}
	q.w.Header().Set("Location", "/"+q.bucket)
	q.w.Header().Set("Content-Length", "0")
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func or(v, def string) string {
	if v == "" {
		return def
	}
	return v
}

func (s *Server) headBucket(q *request) error {
	if err := s.authorize(q, "s3:ListBucket", bucketARN(q.bucket), nil); err != nil {
		return err
	}
	q.w.Header().Set("X-Amz-Bucket-Region", s.opts.Region)
	q.w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) deleteBucket(q *request) error {
	if err := s.authorize(q, "s3:DeleteBucket", bucketARN(q.bucket), nil); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if b, ok := s.buckets[q.bucket]; ok && len(b.objects) > 0 {
		e := newErr(http.StatusConflict, "BucketNotEmpty", "The bucket you tried to delete is not empty")
		e.extra = []xmlField{{"BucketName", q.bucket}}
		return e
	}
	for id, u := range s.uploads {
		if u.bucket == q.bucket {
			delete(s.uploads, id)
		}
	}
	delete(s.buckets, q.bucket)
	q.w.WriteHeader(http.StatusNoContent)
	return nil
}

func (s *Server) getBucketLocation(q *request) error {
	if err := s.authorize(q, "s3:GetBucketLocation", bucketARN(q.bucket), nil); err != nil {
		return err
	}
	loc := s.opts.Region
	if loc == "us-east-1" {
		loc = "" // S3 reports us-east-1 as an empty constraint
	}
	writeXML(q.w, http.StatusOK, locationConstraint{NS: s3NS, Region: loc})
	return nil
}

// A continuation token names where the previous page stopped: after a key
// ("k") or after a common prefix ("p", whose keys are all skipped). It is
// opaque to clients, as S3's are.
func encodeToken(kind byte, v string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind, 0}, v...))
}

func decodeToken(tok string) (kind byte, v string, ok bool) {
	b, err := base64.RawURLEncoding.DecodeString(tok)
	if err != nil || len(b) < 2 || b[1] != 0 || (b[0] != 'k' && b[0] != 'p') {
		return 0, "", false
	}
	return b[0], string(b[2:]), true
}

func (s *Server) listObjectsV2(q *request) error {
	v := q.query
	prefix, delim := v.Get("prefix"), v.Get("delimiter")
	ctx := map[string]string{}
	if v.Has("prefix") {
		ctx["s3:prefix"] = prefix
	}
	if v.Has("delimiter") {
		ctx["s3:delimiter"] = delim
	}
	if v.Has("max-keys") {
		ctx["s3:max-keys"] = v.Get("max-keys")
	}
	if err := s.authorize(q, "s3:ListBucket", bucketARN(q.bucket), ctx); err != nil {
		return err
	}
	maxKeys := MaxKeys
	if v.Has("max-keys") {
		n, err := strconv.Atoi(v.Get("max-keys"))
		if err != nil {
			return newErr(http.StatusBadRequest, "InvalidArgument", "Provided max-keys not an integer or within integer range")
		}
		if n < 0 {
			return newErr(http.StatusBadRequest, "InvalidArgument", "Argument maxKeys must be an integer between 0 and 2147483647")
		}
		maxKeys = min(n, MaxKeys)
	}
	enc := v.Get("encoding-type")
	if enc != "" && enc != "url" {
		return newErr(http.StatusBadRequest, "InvalidArgument", "Invalid Encoding Method specified in Request")
	}
	after, skipPrefix := v.Get("start-after"), ""
	token := v.Get("continuation-token")
	if v.Has("continuation-token") {
		kind, val, ok := decodeToken(token)
		if !ok {
			e := newErr(http.StatusBadRequest, "InvalidArgument", "The continuation token provided is incorrect")
			e.extra = []xmlField{{"ArgumentName", "continuation-token"}}
			return e
		}
		after = val
		if kind == 'p' {
			skipPrefix = val
		}
	}
	fetchOwner := v.Get("fetch-owner") == "true"

	type entry struct {
		key string
		o   *object
	}
	s.mu.Lock()
	b := s.buckets[q.bucket]
	entries := make([]entry, 0, len(b.objects))
	for k, o := range b.objects {
		if strings.HasPrefix(k, prefix) && k > after && (skipPrefix == "" || !strings.HasPrefix(k, skipPrefix)) {
			entries = append(entries, entry{k, o})
		}
	}
	s.mu.Unlock()
	sort.Slice(entries, func(i, j int) bool { return entries[i].key < entries[j].key })

	esc := func(s string) string {
		if enc == "url" {
			return strings.ReplaceAll(url.QueryEscape(s), "%2F", "/")
		}
		return s
	}
	out := listBucketResult{
		NS: s3NS, Name: q.bucket, Prefix: esc(prefix), Delimiter: esc(delim), MaxKeys: maxKeys, EncodingType: enc,
		ContinuationToken: token, StartAfter: esc(v.Get("start-after")),
	}
	var last string
	var lastKind byte
	lastCP := ""
	for _, e := range entries {
		cp := ""
		if delim != "" {
			if i := strings.Index(e.key[len(prefix):], delim); i >= 0 {
				cp = e.key[:len(prefix)+i+len(delim)]
				if cp == lastCP {
					continue
				}
			}
		}
		if out.KeyCount == maxKeys {
			out.IsTruncated = maxKeys > 0
			break
		}
		out.KeyCount++
		if cp != "" {
			out.CommonPrefixes = append(out.CommonPrefixes, commonPrefix{Prefix: esc(cp)})
			lastCP, last, lastKind = cp, cp, 'p'
			continue
		}
		lo := listedObject{
			Key: esc(e.key), LastModified: xmlTime(e.o.modified), ETag: e.o.etag, Size: int64(len(e.o.data)),
			StorageClass: "STANDARD", ChecksumAlgorithm: e.o.checksumAlg, ChecksumType: e.o.checksumType,
		}
		if fetchOwner {
			lo.Owner = &owner{ID: ownerID(s.iam.Account())}
		}
		out.Contents = append(out.Contents, lo)
		last, lastKind = e.key, 'k'
	}
	if out.IsTruncated {
		out.NextContinuationToken = encodeToken(lastKind, last)
	}
	writeXML(q.w, http.StatusOK, out)
	return nil
}
