package sts

import (
	"math"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// bucket is one account's token bucket.
type bucket struct {
	tokens float64
	last   time.Time
}

// SetRateLimit throttles each account to perSecond requests per second
// with a bucket of burst requests (burst < 1: one second's worth, at least
// 1); perSecond <= 0 removes the limit. Buckets start full.
func (s *Server) SetRateLimit(perSecond float64, burst int) {
	s.mu.Lock()
	s.setRateLimit(perSecond, burst)
	s.mu.Unlock()
}

func (s *Server) setRateLimit(perSecond float64, burst int) {
	s.rate = max(perSecond, 0)
	s.burst = float64(burst)
	if burst < 1 {
		s.burst = max(math.Ceil(s.rate), 1)
	}
	s.buckets = map[string]*bucket{}
}

// allow takes a token from the account's bucket, reporting whether there
// was one.
func (s *Server) allow(account string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.rate <= 0 {
		return true
	}
	b := s.buckets[account]
	if b == nil {
		b = &bucket{tokens: s.burst, last: now}
		s.buckets[account] = b
	}
	if now.After(b.last) {
		b.tokens = min(s.burst, b.tokens+now.Sub(b.last).Seconds()*s.rate)
		b.last = now
	}
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// throttleKey names the account a request counts against: the role's
// account for AssumeRoleWithWebIdentity (the request is unsigned), the
// signing credentials' account otherwise. The signature is not verified
// here; an unknown key counts against "".
func (s *Server) throttleKey(r *http.Request, form url.Values, action string) string {
	if action == ActionAssumeRoleWithWebIdentity {
		if p := strings.SplitN(form.Get("RoleArn"), ":", 6); len(p) == 6 {
			return p[4]
		}
		return ""
	}
	cred := ""
	if auth := r.Header.Get("Authorization"); auth != "" {
		if _, rest, ok := strings.Cut(auth, "Credential="); ok {
			cred, _, _ = strings.Cut(rest, ",")
		}
	} else {
		cred = form.Get("X-Amz-Credential")
	}
	akid, _, _ := strings.Cut(cred, "/")
	if c, ok := s.reg.Lookup(strings.TrimSpace(akid)); ok {
		return c.Account
	}
	return ""
}
