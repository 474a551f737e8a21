package secrets

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strconv"
	"strings"
)

// JSON reads a secret (like [Cache.Get]) and decodes its content, a JSON
// document, into a T. It is a function because Go methods cannot have type
// parameters. The value is decoded on every call; cache the result if
// decoding is costly for you.
func JSON[T any](ctx context.Context, c *Cache, id string, optFns ...func(*GetOptions)) (T, error) {
	var out T
	v, err := c.value(ctx, id, optFns)
	if err != nil {
		return out, err
	}
	if err := decodeJSON(v.raw(), &out); err != nil {
		return out, c.keyErr(c.keyFor(id, optFns), err)
	}
	return out, nil
}

// DecodeError reports a secret whose content did not decode. Its message
// never quotes the content (encoding/json's messages can quote pieces of
// it); the underlying error stays reachable with errors.As.
type DecodeError struct {
	// Type is the Go type decoded into.
	Type string
	// Offset is the byte offset of a syntax error, or -1.
	Offset int64
	// Field is the JSON field whose value had the wrong type, if known.
	Field string
	err   error
}

func (e *DecodeError) Error() string {
	var b strings.Builder
	b.WriteString("decoding the secret as JSON into ")
	b.WriteString(e.Type)
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var fe *FieldError
	switch {
	case errors.As(e.err, &se):
		b.WriteString(": invalid JSON at byte offset ")
		b.WriteString(strconv.FormatInt(e.Offset, 10))
	case errors.As(e.err, &te):
		b.WriteString(": field ")
		b.WriteString(strconv.Quote(e.Field))
		b.WriteString(" must be of type ")
		b.WriteString(te.Type.String())
		// te.Value can carry the value itself ("number 5432"); keep the kind.
		kind, _, _ := strings.Cut(te.Value, " ")
		b.WriteString(", got ")
		b.WriteString(kind)
	case errors.As(e.err, &fe):
		b.WriteString(": ")
		b.WriteString(fe.Error())
	default:
		b.WriteString(": the content does not decode (details withheld: they may quote the secret)")
	}
	return b.String()
}

// Unwrap returns the decoder's error.
func (e *DecodeError) Unwrap() error { return e.err }

// FieldError is a decoding error whose message is known not to contain
// secret content (it names fields, never values); [DecodeError] shows it.
type FieldError struct {
	Field  string
	Reason string
}

func (e *FieldError) Error() string { return "field " + strconv.Quote(e.Field) + ": " + e.Reason }

func decodeJSON(data []byte, out any) error {
	err := json.Unmarshal(data, out)
	if err == nil {
		return nil
	}
	de := &DecodeError{Type: reflect.TypeOf(out).Elem().String(), Offset: -1, err: err}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		de.Offset = se.Offset
	case errors.As(err, &te):
		de.Field = te.Field
	}
	return de
}
