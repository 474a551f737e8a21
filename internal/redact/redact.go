// Package redact holds secrets (tokens, passwords, secret values) where no
// printer can reach them.
//
// A type's String, Format and LogValue methods protect it only where fmt
// and slog call them. They do not when the type sits in an unexported field
// of a caller's struct (fmt reads such a field by reflection and calls no
// method), nor behind a pointer printed with a verb that does not fit a
// pointer (%s and %q print the pointed-to struct field by field). A secret
// kept in a String or Bytes is safe in all of these: it lives in a closure,
// and fmt prints a function as its address; encoding/json sees no exported
// field.
package redact

import (
	"fmt"
	"log/slog"
)

// Redacted is what every printer shows instead of a secret.
const Redacted = "[REDACTED]"

// String holds a secret string. The zero String holds "".
type String struct{ get func() string }

// NewString holds s. NewString("") is the zero String.
func NewString(s string) String {
	if s == "" {
		return String{}
	}
	return String{get: func() string { return s }}
}

// Value returns the secret.
func (s String) Value() string {
	if s.get == nil {
		return ""
	}
	return s.get()
}

// IsZero reports whether s holds nothing.
func (s String) IsZero() bool { return s.get == nil }

// Bytes holds a secret byte slice; it keeps its own copy.
type Bytes struct{ get func() []byte }

// NewBytes holds a copy of b.
func NewBytes(b []byte) Bytes {
	c := append([]byte(nil), b...)
	return Bytes{get: func() []byte { return c }}
}

// Value returns a copy of the secret.
func (b Bytes) Value() []byte {
	if b.get == nil {
		return nil
	}
	return append([]byte(nil), b.get()...)
}

// Len returns the secret's length.
func (b Bytes) Len() int {
	if b.get == nil {
		return 0
	}
	return len(b.get())
}

// View returns the held slice itself, for callers that only read it.
func (b Bytes) View() []byte {
	if b.get == nil {
		return nil
	}
	return b.get()
}

// Held keeps any value that may hold a secret (a static credentials
// provider is a struct holding the keys) out of reach of printers that
// walk the struct it sits in.
type Held[T any] struct{ get func() T }

// Hold holds v.
func Hold[T any](v T) Held[T] { return Held[T]{get: func() T { return v }} }

// Get returns the held value.
func (h Held[T]) Get() T {
	if h.get == nil {
		var zero T
		return zero
	}
	return h.get()
}

// String, GoString, Format and LogValue show [Redacted], for code that
// prints a String or Bytes directly.
func (String) String() string               { return Redacted }
func (String) GoString() string             { return Redacted }
func (String) Format(f fmt.State, _ rune)   { _, _ = f.Write([]byte(Redacted)) }
func (String) LogValue() slog.Value         { return slog.StringValue(Redacted) }
func (String) MarshalJSON() ([]byte, error) { return []byte(`"` + Redacted + `"`), nil }
func (Bytes) String() string                { return Redacted }
func (Bytes) GoString() string              { return Redacted }
func (Bytes) Format(f fmt.State, _ rune)    { _, _ = f.Write([]byte(Redacted)) }
func (Bytes) LogValue() slog.Value          { return slog.StringValue(Redacted) }
func (Bytes) MarshalJSON() ([]byte, error)  { return []byte(`"` + Redacted + `"`), nil }
