package rdsauth

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// checkDialAddress validates Options.DialAddress against the connection
// string's hosts: one address can stand in for one host only.
func checkDialAddress(targets []target, addr string) error {
	if addr == "" {
		return nil
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil || h == "" || strings.ContainsAny(addr, "/?#@ \t\r\n") {
		return fmt.Errorf("%w: Options.DialAddress %q: want the host:port of the tunnel or proxy, e.g. 127.0.0.1:15432", ErrInvalidEndpoint, addr)
	}
	if n, err := strconv.ParseUint(p, 10, 16); err != nil || n == 0 {
		return fmt.Errorf("%w: Options.DialAddress %q: the port must be a number from 1 to 65535, e.g. 127.0.0.1:15432", ErrInvalidEndpoint, addr)
	}
	hosts := make([]string, 0, len(targets))
	seen := map[string]bool{}
	for _, t := range targets {
		if isUnixSocket(t.host) {
			return fmt.Errorf("%w: Options.DialAddress %q cannot stand in for the unix socket %s; name the database's endpoint as host", ErrInvalidEndpoint, addr, t.host)
		}
		if hp := joinHostPort(t.host, t.port); !seen[hp] {
			seen[hp] = true
			hosts = append(hosts, hp)
		}
	}
	if len(hosts) > 1 {
		return fmt.Errorf("%w: Options.DialAddress %q sends every connection to one address, but the connection string names %d hosts (%s); "+
			"name only the endpoint the tunnel leads to", ErrInvalidEndpoint, addr, len(hosts), strings.Join(hosts, ", "))
	}
	return nil
}
