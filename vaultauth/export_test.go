package vaultauth

import "github.com/irsakit/irsakit/internal/clock"

// WithClock makes a TokenSource, Login or BuildLogin use c.
func WithClock(c clock.Clock) func(*Options) {
	return func(o *Options) { o.clock = c }
}

// OnRefresh calls f with each token a refresh of s stored (login or
// renewal), after it is served.
func OnRefresh(s *TokenSource, f func(Token)) { s.refreshed.Store(&f) }

// OnRefreshError calls f with each failed refresh of s.
func OnRefreshError(s *TokenSource, f func(error)) { s.failed.Store(&f) }

// DecodeAnswer exposes the parser of Vault's answers to the fuzz test.
func DecodeAnswer(status int, contentType string, raw []byte) error {
	_, err := decodeAnswer("login", "auth/aws/login", status, contentType, raw)
	return err
}

// ParseAddress exposes the Vault address check to the fuzz test.
func ParseAddress(addr string, allowHTTP bool) (string, error) {
	u, err := parseAddress(addr, allowHTTP)
	if err != nil {
		return "", err
	}
	return u.String(), nil
}
