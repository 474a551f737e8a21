package rdsauth

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"
)

// Token is an RDS or Aurora DSQL IAM authentication token: the password
// for one database user at one host:port, valid until [Token.Expires]. Printing it with fmt,
// %v, %+v, %#v, %s, %q or slog shows only a redacted form; [Token.Value]
// is the only way to the password itself.
type Token struct {
	d *tokenData // immutable; nil for the zero Token
}

type tokenData struct {
	value    string
	host     string
	port     uint16
	user     string
	region   string
	expires  time.Time
	signedAt time.Time
	serial   uint64
}

var zeroData tokenData

func (t Token) data() *tokenData {
	if t.d == nil {
		return &zeroData
	}
	return t.d
}

// Value returns the token itself, the password to send to the server.
// Never log it.
func (t Token) Value() string { return t.data().value }

// Endpoint returns the host:port the token is for. (An Aurora DSQL token
// is signed for the host alone.)
func (t Token) Endpoint() string {
	if t.d == nil {
		return ""
	}
	return joinHostPort(t.d.host, t.d.port)
}

// User returns the database user the token authenticates.
func (t Token) User() string { return t.data().user }

// Region returns the region the token is signed for.
func (t Token) Region() string { return t.data().region }

// Expires returns when the token stops being accepted: the earlier of its
// lifetime after signing (15 minutes, or Options.ExpiresIn) and the
// signing credentials' expiry.
func (t Token) Expires() time.Time { return t.data().expires }

// SignedAt returns the token's signing time (its X-Amz-Date).
func (t Token) SignedAt() time.Time { return t.data().signedAt }

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.d == nil }

const redacted = "REDACTED"

// String returns a redacted description of the token.
func (t Token) String() string {
	if t.IsZero() {
		return "rdsauth.Token(none)"
	}
	return "rdsauth.Token(" + t.d.user + "@" + t.Endpoint() + " " + t.d.region + " " + redacted + ")"
}

// GoString returns the redacted description for %#v.
func (t Token) GoString() string { return t.String() }

// Format writes the redacted description for every verb, so no verb or
// flag can print the token.
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
	return slog.GroupValue(
		slog.String("user", t.d.user),
		slog.String("endpoint", t.Endpoint()),
		slog.String("region", t.d.region),
		slog.Time("expires", t.d.expires),
		slog.String("value", redacted),
	)
}

var (
	_ fmt.Stringer   = Token{}
	_ fmt.GoStringer = Token{}
	_ fmt.Formatter  = Token{}
	_ slog.LogValuer = Token{}
)

func joinHostPort(host string, port uint16) string {
	p := strconv.FormatUint(uint64(port), 10)
	for i := 0; i < len(host); i++ {
		if host[i] == ':' {
			return "[" + host + "]:" + p
		}
	}
	return host + ":" + p
}

// String describes a TokenSource by the user and endpoint it mints for.
// A TokenSource prints as this under every fmt verb and in slog, never as
// its fields: it holds the credentials provider it signs with, which for
// static credentials is the keys themselves, and its cached tokens.
func (s *TokenSource) String() string {
	if s == nil {
		return "rdsauth.TokenSource(nil)"
	}
	return "rdsauth.TokenSource(" + s.User() + "@" + s.Endpoint() + " " + s.Region() + ")"
}

// GoString returns the description for %#v.
func (s *TokenSource) GoString() string { return s.String() }

// Format writes the description for every verb and flag.
func (s *TokenSource) Format(f fmt.State, verb rune) {
	str := s.String()
	if verb == 'q' {
		str = strconv.Quote(str)
	}
	_, _ = f.Write([]byte(str))
}

// LogValue implements slog.LogValuer with the user, endpoint and region.
func (s *TokenSource) LogValue() slog.Value {
	if s == nil {
		return slog.StringValue("nil")
	}
	return slog.GroupValue(
		slog.String("user", s.User()),
		slog.String("endpoint", s.Endpoint()),
		slog.String("region", s.Region()),
	)
}

var (
	_ fmt.Stringer   = (*TokenSource)(nil)
	_ fmt.GoStringer = (*TokenSource)(nil)
	_ fmt.Formatter  = (*TokenSource)(nil)
	_ slog.LogValuer = (*TokenSource)(nil)
)
