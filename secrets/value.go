package secrets

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/irsakit/irsakit/internal/redact"
)

const redacted = "[REDACTED]"

// Value is one version of a secret as Secrets Manager returned it. Its
// content is reachable only through [Value.SecretString],
// [Value.SecretBinary] and [Value.Bytes]; printing a Value (String,
// GoString, any fmt verb, slog, encoding/json) shows its metadata and
// "[REDACTED]" in place of the content. A Value is immutable and safe to
// share.
type Value struct {
	// Name is the secret's friendly name.
	Name string
	// ARN is the secret's full ARN (with the six-character suffix).
	ARN string
	// VersionID identifies this version of the secret.
	VersionID string
	// CreatedDate is when this version was created.
	CreatedDate time.Time

	stages []string
	str    redact.String // the content, out of every printer's reach
	bin    redact.Bytes
	binary bool
}

func newValue(out *secretsmanager.GetSecretValueOutput) *Value {
	v := &Value{
		Name:      deref(out.Name),
		ARN:       deref(out.ARN),
		VersionID: deref(out.VersionId),
		stages:    append([]string(nil), out.VersionStages...),
	}
	if out.CreatedDate != nil {
		v.CreatedDate = *out.CreatedDate
	}
	if out.SecretString != nil {
		v.str = redact.NewString(*out.SecretString)
	} else if out.SecretBinary != nil {
		v.bin = redact.NewBytes(out.SecretBinary)
		v.binary = true
	}
	return v
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// VersionStages returns the staging labels attached to this version
// (AWSCURRENT, AWSPREVIOUS, ...), as a new slice.
func (v Value) VersionStages() []string { return append([]string(nil), v.stages...) }

// IsBinary reports whether the secret holds SecretBinary rather than
// SecretString.
func (v Value) IsBinary() bool { return v.binary }

// SecretString returns the secret's text; "" for a binary secret.
func (v Value) SecretString() string { return v.str.Value() }

// SecretBinary returns a copy of a binary secret's bytes; nil for a text
// secret.
func (v Value) SecretBinary() []byte {
	if !v.binary {
		return nil
	}
	return v.bin.Value()
}

// Bytes returns a copy of the secret's content, whichever kind it is.
func (v Value) Bytes() []byte {
	if v.binary {
		return v.bin.Value()
	}
	return []byte(v.str.Value())
}

// raw returns the content without copying a binary secret, for decoding.
func (v *Value) raw() []byte {
	if v.binary {
		return v.bin.View()
	}
	return []byte(v.str.Value())
}

// String returns the redacted form: metadata only.
func (v Value) String() string {
	return "secrets.Value{Name: " + strconv.Quote(v.Name) + ", VersionID: " + strconv.Quote(v.VersionID) + ", Secret: " + redacted + "}"
}

// GoString returns the redacted form, for %#v.
func (v Value) GoString() string { return v.String() }

// Format writes the redacted form for every verb.
func (v Value) Format(f fmt.State, verb rune) { _, _ = f.Write([]byte(v.String())) }

// LogValue makes slog record metadata and a redacted secret.
func (v Value) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", v.Name),
		slog.String("version_id", v.VersionID),
		slog.String("secret", redacted),
	)
}

// MarshalJSON writes the metadata with a redacted secret, so a Value passed
// to a JSON logger or encoder does not leak.
func (v Value) MarshalJSON() ([]byte, error) {
	return []byte(`{"Name":` + strconv.Quote(v.Name) + `,"ARN":` + strconv.Quote(v.ARN) + `,"VersionID":` + strconv.Quote(v.VersionID) + `,"Secret":"` + redacted + `"}`), nil
}

var (
	_ fmt.Stringer   = Value{}
	_ fmt.GoStringer = Value{}
	_ fmt.Formatter  = Value{}
	_ slog.LogValuer = Value{}
)
