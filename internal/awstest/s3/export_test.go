package s3

// Internals for the fuzz tests of package s3_test.

var (
	DecodeAWSChunked = decodeAWSChunked
	ParseCopySource  = parseCopySource
)

func ParseRange(v string, size int64) (start, end int64, ok, unsatisfiable bool) {
	r, ok, unsat := parseRange(v, size)
	return r.start, r.end, ok, unsat
}

func DecodeToken(tok string) (kind byte, v string, ok bool) { return decodeToken(tok) }

func EncodeToken(kind byte, v string) string { return encodeToken(kind, v) }
