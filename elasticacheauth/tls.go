package elasticacheauth

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
)

// tlsFor builds the TLS configuration of NewClient and NewClusterClient from
// the options, before ClientOptions.Redis / Cluster edit it.
func tlsFor(o *ClientOptions) (*tls.Config, error) {
	switch {
	case o.DisableTLS && o.TLSConfig != nil:
		return nil, fmt.Errorf("%w: ClientOptions.DisableTLS and ClientOptions.TLSConfig are both set; drop one", ErrInvalidOptions)
	case o.DisableTLS:
		return nil, nil
	case o.TLSConfig != nil:
		c := o.TLSConfig.Clone()
		if o.RootCAs != nil {
			if c.RootCAs != nil && !c.RootCAs.Equal(o.RootCAs) {
				return nil, fmt.Errorf("%w: ClientOptions.RootCAs and ClientOptions.TLSConfig.RootCAs differ; set the pool in one of them", ErrInvalidOptions)
			}
			c.RootCAs = o.RootCAs
		}
		if c.MinVersion == 0 {
			c.MinVersion = tls.VersionTLS12
		}
		return c, nil
	default:
		return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}, nil
	}
}

// secureTransport checks the TLS configuration the go-redis options ended
// with (after ClientOptions.Redis or Cluster, named by hook) and makes a
// custom Dialer's connections verified TLS too: go-redis applies TLSConfig
// only with its own dialer.
func secureTransport(o *ClientOptions, hook string, cfg *tls.Config, dialer *func(context.Context, string, string) (net.Conn, error)) error {
	if o.DisableTLS {
		return nil
	}
	if cfg == nil {
		return fmt.Errorf("%w: %s removed the TLS configuration; ElastiCache refuses IAM authentication without in-transit encryption and a token is a bearer credential: configure TLS with ClientOptions.TLSConfig or RootCAs, or set ClientOptions.DisableTLS for a local server without TLS", ErrInsecureTransport, hook)
	}
	if err := checkTLS(o, cfg); err != nil {
		return err
	}
	if *dialer != nil {
		*dialer = verifiedDialer(o, cfg, *dialer)
	}
	return nil
}

func checkTLS(o *ClientOptions, cfg *tls.Config) error {
	if cfg.InsecureSkipVerify && !o.AllowInsecureTLS {
		return fmt.Errorf("%w: the TLS configuration skips certificate verification (InsecureSkipVerify), so anyone in the network path could take the token; "+
			"ElastiCache's certificates (Amazon Trust Services) verify with the system roots: drop InsecureSkipVerify (set ClientOptions.RootCAs for a private CA), or set ClientOptions.AllowInsecureTLS", ErrInsecureTransport)
	}
	if (cfg.MinVersion != 0 && cfg.MinVersion < tls.VersionTLS12) || (cfg.MaxVersion != 0 && cfg.MaxVersion < tls.VersionTLS12) {
		return fmt.Errorf("%w: the TLS configuration allows versions below TLS 1.2 (MinVersion/MaxVersion); ElastiCache needs TLS 1.2 or later: set MinVersion to tls.VersionTLS12 or leave it 0", ErrInsecureTransport)
	}
	return nil
}

// verifiedDialer wraps a custom go-redis Dialer: a plain connection it
// returns gets TLS with cfg; a TLS one must be verified (unless
// AllowInsecureTLS) and at least TLS 1.2.
func verifiedDialer(o *ClientOptions, cfg *tls.Config, dial func(context.Context, string, string) (net.Conn, error)) func(context.Context, string, string) (net.Conn, error) {
	allowInsecure := o.AllowInsecureTLS
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		tc, ok := conn.(*tls.Conn)
		if !ok {
			c := cfg
			if c.ServerName == "" {
				host, _, err := net.SplitHostPort(addr)
				if err != nil {
					host = addr
				}
				c = cfg.Clone()
				c.ServerName = host
			}
			tc = tls.Client(conn, c)
		}
		if err := tc.HandshakeContext(ctx); err != nil {
			tc.Close()
			return nil, fmt.Errorf("elasticacheauth: TLS handshake with %s: %w", addr, err)
		}
		st := tc.ConnectionState()
		if st.Version < tls.VersionTLS12 {
			tc.Close()
			return nil, fmt.Errorf("%w: the Dialer's connection to %s uses a TLS version below 1.2", ErrInsecureTransport, addr)
		}
		if len(st.VerifiedChains) == 0 && !allowInsecure {
			tc.Close()
			return nil, fmt.Errorf("%w: the Dialer's TLS connection to %s did not verify the server's certificate; verify it (no InsecureSkipVerify), or set ClientOptions.AllowInsecureTLS", ErrInsecureTransport, addr)
		}
		return tc, nil
	}
}
