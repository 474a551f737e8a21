package elasticacheauth_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
)

// go-redis v9.23.0 itself: with a StreamingCredentialsProvider, Conn,
// EphemeralConn and Watch dereference a nil pointer whenever they must open
// a new connection (the sticky clients they build lack the streaming
// credentials manager). Client and ClusterClient exist around that; when an
// upgrade makes this test fail, serve Conn and Watch from the one client.
func TestGoRedisPanicsOnStickyConnectionsWithStreamingCredentials(t *testing.T) {
	ctx := context.Background()
	src := stormSource(t)
	scp := elasticacheauth.NewStreamingCredentialsProvider(src)
	defer scp.Close()
	for name, use := range map[string]func(*redis.Client) error{
		"Conn":          func(c *redis.Client) error { return c.Conn().Ping(ctx).Err() },
		"EphemeralConn": func(c *redis.Client) error { return c.EphemeralConn().Ping(ctx).Err() },
		"Watch": func(c *redis.Client) error {
			return c.Watch(ctx, func(tx *redis.Tx) error { return tx.Ping(ctx).Err() }, "k")
		},
	} {
		t.Run(name, func(t *testing.T) {
			// A fresh client: the sticky connection must be a new one.
			rdb := redis.NewClient(stormOptions(standalone.Front, func(o *redis.Options) { o.StreamingCredentialsProvider = scp }))
			defer rdb.Close()
			assert.Panics(t, func() { _ = use(rdb) }, "go-redis no longer panics: drop the once-authenticated client")
		})
	}
}

// No exported field or method of Client or ClusterClient leads to a
// go-redis client that has the panic above.
func TestNoWayToTheStreamingPanic(t *testing.T) {
	bad := map[reflect.Type]bool{
		reflect.TypeFor[*redis.Client]():        true,
		reflect.TypeFor[*redis.ClusterClient](): true,
	}
	for _, typ := range []reflect.Type{reflect.TypeFor[*elasticacheauth.Client](), reflect.TypeFor[*elasticacheauth.ClusterClient]()} {
		t.Run(typ.Elem().Name(), func(t *testing.T) {
			for i := range typ.Elem().NumField() {
				if f := typ.Elem().Field(i); f.IsExported() {
					assert.False(t, bad[f.Type], "exported field %s is a %s", f.Name, f.Type)
				}
			}
			for i := range typ.NumMethod() {
				m := typ.Method(i)
				for o := range m.Type.NumOut() {
					assert.False(t, bad[m.Type.Out(o)], "method %s returns a %s", m.Name, m.Type.Out(o))
				}
			}
		})
	}
}

// Every way a user runs a sticky connection or a transaction — Conn, Watch,
// through redis.UniversalClient, through an AutoPipeliner — works on a
// fresh client and under concurrency, when each needs a new connection.
func TestStickyConnectionsWithStreamingCredentials(t *testing.T) {
	ctx := context.Background()
	watch := func(w interface {
		Watch(context.Context, func(*redis.Tx) error, ...string) error
	}, key string) error {
		return w.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Get(ctx, key).Int()
			if err != nil && err != redis.Nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, key, n+1, 0); return nil })
			return err
		}, key)
	}
	uses := map[string]func(u redis.UniversalClient, i int) error{
		"Watch": func(u redis.UniversalClient, i int) error { return watch(u, "sticky-w"+strconv.Itoa(i)) },
		"AutoPipeline.Watch": func(u redis.UniversalClient, i int) error {
			ap, err := u.AutoPipeline()
			if err != nil {
				return err
			}
			return watch(ap, "sticky-a"+strconv.Itoa(i))
		},
		"Subscribe": func(u redis.UniversalClient, i int) error {
			ps := u.Subscribe(ctx, "sticky-ch"+strconv.Itoa(i))
			defer ps.Close()
			_, err := ps.Receive(ctx)
			return err
		},
	}
	clients := map[string]func(t *testing.T) redis.UniversalClient{
		"Client": func(t *testing.T) redis.UniversalClient { return newClient(t, standalone.Addr(), "orders", cfg) },
		"ClusterClient": func(t *testing.T) redis.UniversalClient {
			cc, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront)
			require.NoError(t, err)
			t.Cleanup(func() { cc.Close() })
			return cc
		},
	}
	for cname, newUniversal := range clients {
		for uname, use := range uses {
			t.Run(cname+"/"+uname, func(t *testing.T) {
				u := newUniversal(t) // fresh: no idle connection to reuse
				const n = 16
				var wg sync.WaitGroup
				errs := make([]error, n)
				for i := range n {
					wg.Add(1)
					go func() {
						defer wg.Done()
						assert.NotPanics(t, func() { errs[i] = use(u, i) })
					}()
				}
				wg.Wait()
				for i, err := range errs {
					assert.NoError(t, err, "call %d", i)
				}
			})
		}
	}
	t.Run("Client/Conn", func(t *testing.T) {
		rdb := newClient(t, standalone.Addr(), "orders", cfg)
		var wg sync.WaitGroup
		for i := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				assert.NotPanics(t, func() {
					c := rdb.Conn()
					defer c.Close()
					assert.NoError(t, c.Set(ctx, "sticky-c"+strconv.Itoa(i), i, time.Minute).Err())
				})
			}()
		}
		wg.Wait()
	})
}

// nameHook records the names of the commands it sees.
type nameHook struct {
	mu    sync.Mutex
	names []string
}

// seen returns the recorded names that are among names, in order.
func (h *nameHook) seen(names ...string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, n := range h.names {
		for _, want := range names {
			if n == want {
				out = append(out, n)
			}
		}
	}
	return out
}

func (h *nameHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *nameHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.mu.Lock()
		h.names = append(h.names, cmd.Name())
		h.mu.Unlock()
		return next(ctx, cmd)
	}
}
func (h *nameHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// A hook added to the Client sees the commands of the re-authenticated
// pool and of Conn and Watch, whether added before or after their first
// use.
func TestAddHookReachesStickyConnections(t *testing.T) {
	ctx := context.Background()
	rdb := newClient(t, standalone.Addr(), "orders", cfg)
	early := &nameHook{}
	rdb.AddHook(early)
	require.NoError(t, rdb.Echo(ctx, "pool").Err())
	c := rdb.Conn()
	require.NoError(t, c.Echo(ctx, "conn").Err())
	require.NoError(t, c.Close())
	late := &nameHook{}
	rdb.AddHook(late)
	require.NoError(t, rdb.Watch(ctx, func(tx *redis.Tx) error { return tx.Echo(ctx, "watch").Err() }, "hooked"))
	// Connection set-up (HELLO) and UNWATCH pass the hooks too.
	assert.Equal(t, []string{"echo", "echo", "watch", "echo"}, early.seen("echo", "watch"))
	assert.Equal(t, []string{"watch", "echo"}, late.seen("echo", "watch"))
}

// A token is a bearer credential: the TLS that carries it cannot be turned
// off or left unverified by accident, wherever the configuration comes
// from; only the named opt-ins do it.
func TestTLSCannotBeDowngraded(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name    string
		cluster bool
		opts    func(*elasticacheauth.ClientOptions)
		want    error
		fix     string // the error names the fix
	}{
		{"InsecureSkipVerify in TLSConfig", false, func(o *elasticacheauth.ClientOptions) {
			o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
		}, elasticacheauth.ErrInsecureTransport, "AllowInsecureTLS"},
		{"InsecureSkipVerify set by ClientOptions.Redis", false, func(o *elasticacheauth.ClientOptions) {
			o.Redis = func(ro *redis.Options) { ro.TLSConfig.InsecureSkipVerify = true }
		}, elasticacheauth.ErrInsecureTransport, "AllowInsecureTLS"},
		{"InsecureSkipVerify set by ClientOptions.Cluster", true, func(o *elasticacheauth.ClientOptions) {
			o.Cluster = func(co *redis.ClusterOptions) { co.TLSConfig.InsecureSkipVerify = true }
		}, elasticacheauth.ErrInsecureTransport, "AllowInsecureTLS"},
		{"TLS removed by ClientOptions.Redis", false, func(o *elasticacheauth.ClientOptions) {
			o.Redis = func(ro *redis.Options) { ro.TLSConfig = nil }
		}, elasticacheauth.ErrInsecureTransport, "DisableTLS"},
		{"TLS removed by ClientOptions.Cluster", true, func(o *elasticacheauth.ClientOptions) {
			o.Cluster = func(co *redis.ClusterOptions) { co.TLSConfig = nil }
		}, elasticacheauth.ErrInsecureTransport, "DisableTLS"},
		{"TLS 1.1 allowed", false, func(o *elasticacheauth.ClientOptions) {
			o.TLSConfig = &tls.Config{MinVersion: tls.VersionTLS11}
		}, elasticacheauth.ErrInsecureTransport, "MinVersion"},
		{"DisableTLS with a TLSConfig", false, func(o *elasticacheauth.ClientOptions) {
			o.DisableTLS = true
			o.TLSConfig = &tls.Config{}
		}, elasticacheauth.ErrInvalidOptions, "DisableTLS"},
		{"two different root pools", false, func(o *elasticacheauth.ClientOptions) {
			o.TLSConfig = &tls.Config{RootCAs: x509.NewCertPool()}
		}, elasticacheauth.ErrInvalidOptions, "RootCAs"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var err error
			if tc.cluster {
				var cc *elasticacheauth.ClusterClient
				cc, err = elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront, tc.opts)
				if err == nil {
					cc.Close()
				}
			} else {
				var c *elasticacheauth.Client
				c, err = elasticacheauth.NewClient(ctx, standalone.Addr(), "orders", userID, cfg, trustFront, tc.opts)
				if err == nil {
					c.Close()
				}
			}
			require.ErrorIs(t, err, tc.want)
			assert.Contains(t, err.Error(), tc.fix)
		})
	}
}

// The opt-ins and the ways to configure TLS that keep it verified.
func TestTLSConfigurations(t *testing.T) {
	ctx := context.Background()
	noRetry := func(ro *redis.Options) { ro.MaxRetries = -1 }
	tests := []struct {
		name string
		opts func(*elasticacheauth.ClientOptions)
		fail string // "": PING succeeds; else PING fails with this text
	}{
		{"TLSConfig takes RootCAs", func(o *elasticacheauth.ClientOptions) {
			o.RootCAs = standalone.CertPool()
			o.TLSConfig = &tls.Config{}
			o.Redis = noRetry
		}, ""},
		{"AllowInsecureTLS lets an untrusted certificate through", func(o *elasticacheauth.ClientOptions) {
			o.TLSConfig = &tls.Config{InsecureSkipVerify: true}
			o.AllowInsecureTLS = true
			o.Redis = noRetry
		}, ""},
		{"a Dialer's plain connection gets TLS", func(o *elasticacheauth.ClientOptions) {
			o.RootCAs = standalone.CertPool()
			o.Redis = func(ro *redis.Options) {
				noRetry(ro)
				ro.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
			}
		}, ""},
		{"a Dialer's plain connection gets verified TLS", func(o *elasticacheauth.ClientOptions) {
			o.Redis = func(ro *redis.Options) {
				noRetry(ro)
				ro.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
					var d net.Dialer
					return d.DialContext(ctx, network, addr)
				}
			}
		}, "certificate"},
		{"a Dialer's unverified TLS connection is refused", func(o *elasticacheauth.ClientOptions) {
			o.Redis = func(ro *redis.Options) {
				noRetry(ro)
				ro.Dialer = func(ctx context.Context, network, addr string) (net.Conn, error) {
					d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true}}
					return d.DialContext(ctx, network, addr)
				}
			}
		}, "AllowInsecureTLS"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rdb, err := elasticacheauth.NewClient(ctx, standalone.Addr(), "orders", userID, cfg, tc.opts)
			require.NoError(t, err)
			defer rdb.Close()
			before := standalone.Stats().AuthOK
			err = rdb.Ping(ctx).Err()
			if tc.fail == "" {
				require.NoError(t, err)
				assert.Greater(t, standalone.Stats().AuthOK, before, "not authenticated by the TLS front")
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.fail)
			assert.Equal(t, before, standalone.Stats().AuthOK, "a token went over unverified TLS")
		})
	}
}

// The region tokens are signed for comes from the endpoint name; an
// explicit one must agree with it, and a name whose region this package
// cannot decode needs one.
func TestClientRegion(t *testing.T) {
	ctx := context.Background()
	region := func(r string) func(*elasticacheauth.ClientOptions) {
		return func(o *elasticacheauth.ClientOptions) {
			o.Token = func(to *elasticacheauth.Options) { to.Region = r }
		}
	}
	tests := []struct {
		name   string
		addr   string
		opts   func(*elasticacheauth.ClientOptions)
		want   string // the region tokens are signed for
		err    error
		naming string // the error names the option to set
	}{
		{"from the endpoint name", "master.orders.abc123.euw1.cache.amazonaws.com:6379", nil, "eu-west-1", nil, ""},
		{"endpoint name over the config's region", "master.orders.abc123.apse2.cache.amazonaws.com:6379", nil, "ap-southeast-2", nil, ""},
		{"explicit and agreeing", "master.orders.abc123.euw1.cache.amazonaws.com:6379", region("eu-west-1"), "eu-west-1", nil, ""},
		{"explicit and contradicting", "master.orders.abc123.euw1.cache.amazonaws.com:6379", region("us-east-1"), "", elasticacheauth.ErrRegionMismatch, "Options.Region"},
		{"MemoryDB, contradicting", "clustercfg.orders.abc123.memorydb.eu-west-1.amazonaws.com:6379", region("us-east-1"), "", elasticacheauth.ErrRegionMismatch, "Options.Region"},
		{"undecodable region code", "master.orders.abc123.zzq1.cache.amazonaws.com:6379", nil, "", elasticacheauth.ErrNoRegion, "Options.Region"},
		{"undecodable region code, explicit region", "master.orders.abc123.zzq1.cache.amazonaws.com:6379", region("eu-south-2"), "eu-south-2", nil, ""},
		{"not an endpoint name: the config's region", "127.0.0.1:6379", nil, "us-east-1", nil, ""},
		{"not an endpoint name: explicit region", "127.0.0.1:6379", region("eu-west-3"), "eu-west-3", nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			opts := []func(*elasticacheauth.ClientOptions){trustFront}
			if tc.opts != nil {
				opts = append(opts, tc.opts)
			}
			cache := ""
			if strings.HasPrefix(tc.addr, "127.") {
				cache = "orders"
			}
			rdb, err := elasticacheauth.NewClient(ctx, tc.addr, cache, userID, cfg, opts...)
			if tc.err != nil {
				require.ErrorIs(t, err, tc.err)
				assert.Contains(t, err.Error(), tc.naming)
				return
			}
			require.NoError(t, err)
			defer rdb.Close()
			assert.Equal(t, tc.want, rdb.TokenSource().Region())
		})
	}
}
