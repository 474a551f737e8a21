package vaultauth

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"
)

const redacted = "REDACTED"

// Token is a Vault client token obtained by a login to the aws auth method,
// with its lease. Printing it with fmt (any verb, any flag) or slog shows
// only a redacted description: the token and its accessor are reachable
// only through [Token.Value] and [Token.Accessor]. It is immutable and safe
// for concurrent use.
type Token struct {
	d *tokenData // nil for the zero Token
}

type tokenData struct {
	// secret sits behind its own pointer: fmt prints a Token held in an
	// unexported field of a caller's struct by reflection, following the
	// first pointer but printing deeper ones as addresses.
	secret            *tokenSecret
	mount, role       string
	policies          []string
	metadata          map[string]string
	lease             time.Duration
	renewable         bool
	tokenType         string
	entityID          string
	obtained, expires time.Time
	// loginLease is the lease the login granted; renewals that Vault caps
	// well below it mean the token nears its max TTL.
	loginLease time.Duration
	serial     uint64
}

type tokenSecret struct {
	value, accessor string
}

var zeroToken = tokenData{secret: &tokenSecret{}}

func (t Token) data() *tokenData {
	if t.d == nil {
		return &zeroToken
	}
	return t.d
}

// Value returns the client token, the value of the X-Vault-Token header.
// Never log it.
func (t Token) Value() string { return t.data().secret.value }

// Accessor returns the token's accessor ("" for batch tokens). It can look
// up and revoke the token, so treat it as a secret too.
func (t Token) Accessor() string { return t.data().secret.accessor }

// Role returns the Vault role logged in to, as requested ("" when Vault
// chose the role named like the IAM role).
func (t Token) Role() string { return t.data().role }

// Mount returns the auth mount the token came from, e.g. "aws".
func (t Token) Mount() string { return t.data().mount }

// Policies returns the token's policies as Vault reported them.
func (t Token) Policies() []string { return slices.Clone(t.data().policies) }

// Metadata returns the token's metadata (for the aws auth method: role_id,
// and the caller's ARN fields Vault's iam_metadata setting adds).
func (t Token) Metadata() map[string]string { return maps.Clone(t.data().metadata) }

// LeaseDuration returns the lease Vault granted at the last login or
// renewal; 0 for a token that does not expire.
func (t Token) LeaseDuration() time.Duration { return t.data().lease }

// Renewable reports whether Vault lets the token be renewed.
func (t Token) Renewable() bool { return t.data().renewable }

// Type returns Vault's token type, "service" or "batch".
func (t Token) Type() string { return t.data().tokenType }

// EntityID returns the identity entity the token belongs to ("" if none).
func (t Token) EntityID() string { return t.data().entityID }

// Obtained returns when the login or renewal that set the current lease
// was sent.
func (t Token) Obtained() time.Time { return t.data().obtained }

// Expires returns when the lease ends, counted from [Token.Obtained]; the
// zero time for a token that does not expire.
func (t Token) Expires() time.Time { return t.data().expires }

// IsZero reports whether t is the zero Token.
func (t Token) IsZero() bool { return t.d == nil }

// String returns a redacted description of the token.
func (t Token) String() string {
	if t.d == nil {
		return "vaultauth.Token(none)"
	}
	var b strings.Builder
	b.WriteString("vaultauth.Token(auth/" + t.d.mount)
	if t.d.role != "" {
		b.WriteString(" role " + t.d.role)
	}
	b.WriteString(", " + t.d.tokenType)
	b.WriteString(", policies [" + strings.Join(t.d.policies, " ") + "]")
	if t.d.lease > 0 {
		b.WriteString(", lease " + t.d.lease.String())
	} else {
		b.WriteString(", no expiry")
	}
	if t.d.renewable {
		b.WriteString(", renewable")
	}
	b.WriteString(", " + redacted + ")")
	return b.String()
}

// GoString returns the redacted description for %#v.
func (t Token) GoString() string { return t.String() }

// Format writes the redacted description for every verb and flag, so no
// verb can print the token.
func (t Token) Format(f fmt.State, verb rune) { formatRedacted(f, verb, t.String()) }

// LogValue implements slog.LogValuer with a redacted group.
func (t Token) LogValue() slog.Value {
	if t.d == nil {
		return slog.StringValue("none")
	}
	return slog.GroupValue(
		slog.String("mount", t.d.mount),
		slog.String("role", t.d.role),
		slog.String("type", t.d.tokenType),
		slog.Any("policies", t.d.policies),
		slog.Duration("lease", t.d.lease),
		slog.Bool("renewable", t.d.renewable),
		slog.String("value", redacted),
		slog.String("accessor", redacted),
	)
}

var (
	_ fmt.Stringer   = Token{}
	_ fmt.GoStringer = Token{}
	_ fmt.Formatter  = Token{}
	_ slog.LogValuer = Token{}
)

func formatRedacted(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	_, _ = f.Write([]byte(s))
}
