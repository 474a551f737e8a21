package redact_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/irsakit/irsakit/internal/redact"
)

const secret = "s3cr3t-v4lue"

// holder keeps the secrets the way the library's types do: in unexported
// fields, one behind a pointer.
type holder struct {
	name string
	s    redact.String
	b    redact.Bytes
	p    *inner
	h    redact.Held[plain]
}

type plain struct{ Key string }

type inner struct{ s redact.String }

func TestNoPrinterReachesTheSecret(t *testing.T) {
	h := holder{name: "app", s: redact.NewString(secret), b: redact.NewBytes([]byte(secret)), p: &inner{redact.NewString(secret)},
		h: redact.Hold(plain{Key: secret})}
	wrapped := struct{ v holder }{h} // an unexported field of a caller's struct
	var outs []string
	for _, x := range []any{h, &h, wrapped, &wrapped, []holder{h}, map[string]*holder{"k": &h}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			outs = append(outs, fmt.Sprintf(verb, x))
		}
		var buf bytes.Buffer
		l := slog.New(slog.NewJSONHandler(&buf, nil))
		l.Info("m", "v", x)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("m", "v", x)
		outs = append(outs, buf.String())
		j, _ := json.Marshal(x)
		outs = append(outs, string(j))
	}
	hexSecret := fmt.Sprintf("%x", secret)
	for _, o := range outs {
		assert.NotContains(t, o, secret)
		assert.NotContains(t, strings.ToLower(o), hexSecret)
	}
	assert.Equal(t, secret, h.s.Value())
	assert.Equal(t, []byte(secret), h.b.Value())
	assert.Equal(t, len(secret), h.b.Len())
	assert.Equal(t, secret, h.h.Get().Key)
	assert.Equal(t, redact.Redacted, fmt.Sprint(h.s))
}

func TestBytesKeepsItsCopy(t *testing.T) {
	in := []byte(secret)
	b := redact.NewBytes(in)
	in[0] = 'X'
	out := b.Value()
	out[1] = 'Y'
	assert.Equal(t, []byte(secret), b.Value())
	var zero redact.Bytes
	assert.Nil(t, zero.Value())
	assert.True(t, redact.String{}.IsZero())
	assert.Empty(t, redact.String{}.Value())
}
