// Package outage lets a stand-in's HTTP endpoint go down and come back, as
// a dead endpoint behind a load balancer does: while down, new connections
// and requests on kept-alive ones are reset (TCP RST), so clients see
// "connection reset" or "connection refused"-like errors, never an HTTP
// answer.
package outage

import (
	"net"
	"net/http"
	"sync/atomic"
)

// Listener wraps a listener whose connections are reset while it is down.
type Listener struct {
	net.Listener
	down atomic.Bool
}

// Wrap returns ln with an outage switch, up.
func Wrap(ln net.Listener) *Listener { return &Listener{Listener: ln} }

// SetDown takes the endpoint down (true) or brings it back (false).
func (l *Listener) SetDown(down bool) { l.down.Store(down) }

// Down reports whether the endpoint is down.
func (l *Listener) Down() bool { return l.down.Load() }

// Accept returns the next connection accepted while up, resetting those
// that arrive while down.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if !l.down.Load() {
			return c, nil
		}
		reset(c)
	}
}

// Guard resets the connection of a request that arrives while down: one
// on a connection kept alive from before the outage.
func (l *Listener) Guard(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if l.down.Load() {
			if hj, ok := w.(http.Hijacker); ok {
				if c, _, err := hj.Hijack(); err == nil {
					reset(c)
					return
				}
			}
			panic(http.ErrAbortHandler)
		}
		next.ServeHTTP(w, r)
	})
}

func reset(c net.Conn) {
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	c.Close()
}
