package irsa

import (
	"fmt"
	"log/slog"
	"strconv"
)

// String describes the session by mode, role and region; it never shows a
// credential. A Session's aws.Config may hold static keys (from the
// environment or a profile), so every way of printing a Session goes
// through String.
func (s Session) String() string {
	out := "irsa.Session(" + s.mode.String()
	if s.roleARN != "" {
		out += " " + s.roleARN
	}
	if c := s.cfg.Get(); c != nil && c.Region != "" {
		out += " " + c.Region
	}
	return out + ")"
}

// GoString is String, for %#v.
func (s Session) GoString() string { return s.String() }

// Format writes String for every verb and flag.
func (s Session) Format(f fmt.State, verb rune) {
	out := s.String()
	if verb == 'q' {
		out = strconv.Quote(out)
	}
	_, _ = f.Write([]byte(out))
}

// LogValue records mode, role and region.
func (s Session) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("mode", s.mode.String())}
	if s.roleARN != "" {
		attrs = append(attrs, slog.String("role_arn", s.roleARN))
	}
	if c := s.cfg.Get(); c != nil {
		attrs = append(attrs, slog.String("region", c.Region))
	}
	return slog.GroupValue(attrs...)
}

var (
	_ fmt.Stringer   = Session{}
	_ fmt.GoStringer = Session{}
	_ fmt.Formatter  = Session{}
	_ slog.LogValuer = Session{}
)
