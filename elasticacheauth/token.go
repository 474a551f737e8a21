package elasticacheauth

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Token is an ElastiCache (or MemoryDB) IAM authentication token: the
// password of one user for one cache, valid until [Token.Expires]. Printing
// it with fmt (any verb, %#v included) or slog shows only a redacted form;
// [Token.Value] is the only way to the password itself.
type Token struct {
	value string
	*tokenInfo
}

// tokenInfo is a token's description, behind a pointer so that handing a
// Token out of the cache copies two words, not the whole description.
type tokenInfo struct {
	cacheName  string
	user       string
	region     string
	service    string
	serverless bool
	expires    time.Time
	signedAt   time.Time
	mintedAt   time.Time
	serial     uint64
}

var noInfo = &tokenInfo{}

func (t Token) info() *tokenInfo {
	if t.tokenInfo == nil {
		return noInfo
	}
	return t.tokenInfo
}

// Value returns the token itself, the password for AUTH/HELLO. Never log it.
func (t Token) Value() string { return t.value }

// CacheName returns the replication group id, serverless cache name or
// MemoryDB cluster name the token is signed for (its host).
func (t Token) CacheName() string { return t.info().cacheName }

// User returns the user id the token authenticates.
func (t Token) User() string { return t.info().user }

// Region returns the region the token is signed for.
func (t Token) Region() string { return t.info().region }

// Serverless reports whether the token carries ResourceType=ServerlessCache.
func (t Token) Serverless() bool { return t.info().serverless }

// Expires returns when the token stops being accepted: the earlier of 15
// minutes after signing and the signing credentials' expiry.
func (t Token) Expires() time.Time { return t.info().expires }

// SignedAt returns the token's signing time (its X-Amz-Date).
func (t Token) SignedAt() time.Time { return t.info().signedAt }

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.value == "" }

const redacted = "REDACTED"

// String returns a redacted description of the token.
func (t Token) String() string {
	if t.IsZero() {
		return "elasticacheauth.Token(none)"
	}
	i := t.info()
	kind := ""
	if i.serverless {
		kind = " serverless"
	}
	return "elasticacheauth.Token(" + i.user + "@" + i.cacheName + kind + " " + i.service + " " + i.region + " " + redacted + ")"
}

// GoString returns the redacted description for %#v.
func (t Token) GoString() string { return t.String() }

// Format writes the redacted description for every verb and flag.
func (t Token) Format(f fmt.State, verb rune) {
	s := t.String()
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	f.Write([]byte(s))
}

// LogValue implements slog.LogValuer with a redacted group.
func (t Token) LogValue() slog.Value {
	if t.IsZero() {
		return slog.StringValue("none")
	}
	i := t.info()
	return slog.GroupValue(
		slog.String("user", i.user),
		slog.String("cache", i.cacheName),
		slog.String("service", i.service),
		slog.String("region", i.region),
		slog.Bool("serverless", i.serverless),
		slog.Time("expires", i.expires),
		slog.String("value", redacted),
	)
}

var (
	_ fmt.Stringer   = Token{}
	_ fmt.GoStringer = Token{}
	_ fmt.Formatter  = Token{}
	_ slog.LogValuer = Token{}
)

// String describes a TokenSource by the user and cache it mints for. A
// TokenSource prints as this under every fmt verb and in slog, never as
// its fields: it holds the credentials provider it signs with, which for
// static credentials is the keys themselves, and its cached tokens.
func (s *TokenSource) String() string {
	if s == nil {
		return "elasticacheauth.TokenSource(nil)"
	}
	return "elasticacheauth.TokenSource(" + s.UserID() + "@" + s.CacheName() + " " + s.Region() + ")"
}

// GoString returns the description for %#v.
func (s *TokenSource) GoString() string { return s.String() }

// Format writes the description for every verb and flag.
func (s *TokenSource) Format(f fmt.State, verb rune) { writeRedacted(f, verb, s.String()) }

// LogValue implements slog.LogValuer with the user, cache and region.
func (s *TokenSource) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("user", s.UserID()),
		slog.String("cache", s.CacheName()),
		slog.String("region", s.Region()),
	)
}

// String describes a StreamingCredentialsProvider by its TokenSource, and
// it prints as this under every fmt verb and in slog: its fields lead to
// the TokenSource's credentials and to the tokens it pushed.
func (p *StreamingCredentialsProvider) String() string {
	if p == nil {
		return "elasticacheauth.StreamingCredentialsProvider(nil)"
	}
	return "elasticacheauth.StreamingCredentialsProvider(" + p.src.String() + ")"
}

// GoString returns the description for %#v.
func (p *StreamingCredentialsProvider) GoString() string { return p.String() }

// Format writes the description for every verb and flag.
func (p *StreamingCredentialsProvider) Format(f fmt.State, verb rune) {
	writeRedacted(f, verb, p.String())
}

// LogValue implements slog.LogValuer with the TokenSource's description.
func (p *StreamingCredentialsProvider) LogValue() slog.Value {
	if p == nil {
		return slog.StringValue("nil")
	}
	return p.src.LogValue()
}

func writeRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}

var (
	_ fmt.Stringer   = (*TokenSource)(nil)
	_ fmt.GoStringer = (*TokenSource)(nil)
	_ fmt.Formatter  = (*TokenSource)(nil)
	_ slog.LogValuer = (*TokenSource)(nil)
	_ fmt.Stringer   = (*StreamingCredentialsProvider)(nil)
	_ fmt.GoStringer = (*StreamingCredentialsProvider)(nil)
	_ fmt.Formatter  = (*StreamingCredentialsProvider)(nil)
	_ slog.LogValuer = (*StreamingCredentialsProvider)(nil)
)
