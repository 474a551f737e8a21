package elasticacheauth_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/auth"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
)

// trustFront makes a client trust the fronts' test CA.
func trustFront(o *elasticacheauth.ClientOptions) { o.RootCAs = standalone.CertPool() }

func newClient(t *testing.T, addr, cache string, c aws.Config, optFns ...func(*elasticacheauth.ClientOptions)) *elasticacheauth.Client {
	t.Helper()
	rdb, err := elasticacheauth.NewClient(context.Background(), addr, cache, userID, c, append([]func(*elasticacheauth.ClientOptions){trustFront}, optFns...)...)
	require.NoError(t, err)
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestClientRunsCommands(t *testing.T) {
	ctx := context.Background()
	rdb := newClient(t, standalone.Addr(), "orders", cfg)
	require.NoError(t, rdb.Set(ctx, "client-k", "v1", 0).Err())
	v, err := rdb.Get(ctx, "client-k").Result()
	require.NoError(t, err)
	assert.Equal(t, "v1", v)
	require.NoError(t, rdb.Del(ctx, "client-n").Err())
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "client-n")
		p.Incr(ctx, "client-n")
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, int64(2), cmds[1].(*redis.IntCmd).Val())
	assert.Equal(t, int64(1), rdb.TokenSource().Mints())
}

func TestClusterClientRunsCommands(t *testing.T) {
	ctx := context.Background()
	rdb, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront)
	require.NoError(t, err)
	defer rdb.Close()
	before := cluster.Stats()
	for i := 0; i < 100; i++ {
		k := "cluster-k" + strconv.Itoa(i)
		require.NoError(t, rdb.Set(ctx, k, i, 0).Err())
		v, err := rdb.Get(ctx, k).Int()
		require.NoError(t, err, "GET %s", k)
		assert.Equal(t, i, v, "GET %s", k)
	}
	for i, f := range cluster.Fronts {
		assert.True(t, f.Stats().AuthOK > 0 && f.Stats().Forwarded > 0, "front %d (%s) was not used: %+v", i, f.Addr(), f.Stats())
	}
	after := cluster.Stats()
	assert.Equal(t, before.AuthFailed, after.AuthFailed, "auth failures: %v", after.Rejected)
	assert.Equal(t, int64(1), rdb.TokenSource().Mints(), "mints for %d connections", after.AuthOK-before.AuthOK)
}

func TestServerlessUsesResourceTypeAndClusterMode(t *testing.T) {
	ctx := context.Background()
	f := serverless.Fronts[0]
	serverlessOpt := func(o *elasticacheauth.ClientOptions) {
		o.Token = func(to *elasticacheauth.Options) { to.Serverless = true }
	}
	_, err := elasticacheauth.NewClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, serverlessOpt)
	require.ErrorIs(t, err, elasticacheauth.ErrServerlessNeedsCluster)
	rdb, err := elasticacheauth.NewClusterClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, serverlessOpt)
	require.NoError(t, err)
	defer rdb.Close()
	for i := 0; i < 20; i++ {
		require.NoError(t, rdb.Set(ctx, "sl-"+strconv.Itoa(i), i, 0).Err())
	}
	tok, err := rdb.TokenSource().Token(ctx)
	require.NoError(t, err)
	u, err := url.Parse("http://" + tok.Value())
	require.NoError(t, err)
	assert.Equal(t, "ServerlessCache", u.Query().Get("ResourceType"))
	assert.True(t, tok.Serverless())
	// The same cache refuses a token without it.
	plain, err := elasticacheauth.NewClusterClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, func(o *elasticacheauth.ClientOptions) {
		o.Cluster = func(co *redis.ClusterOptions) { co.MaxRetries = -1 }
	})
	require.NoError(t, err)
	defer plain.Close()
	before := f.Stats().Rejected[redisfront.ReasonResourceType]
	err = plain.Ping(ctx).Err()
	require.Error(t, err, "token without ResourceType")
	assert.Contains(t, err.Error(), "WRONGPASS")
	assert.Greater(t, f.Stats().Rejected[redisfront.ReasonResourceType], before, "the front did not refuse it for the resource type")
}

func TestTLSIsTheDefault(t *testing.T) {
	ctx := context.Background()
	// Without the test CA the front's certificate is not trusted: the
	// client verifies TLS.
	rdb, err := elasticacheauth.NewClient(ctx, standalone.Addr(), "orders", userID, cfg, func(o *elasticacheauth.ClientOptions) {
		o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1 }
	})
	require.NoError(t, err)
	defer rdb.Close()
	require.NotNil(t, rdb.Options().TLSConfig, "no TLS configuration by default")
	assert.GreaterOrEqual(t, rdb.Options().TLSConfig.MinVersion, uint16(tls.VersionTLS12))
	err = rdb.Ping(ctx).Err()
	require.Error(t, err, "PING to an untrusted certificate")
	assert.Contains(t, err.Error(), "certificate")
	// Plaintext only by explicit opt-out, and then the TLS front refuses.
	plain := newClient(t, standalone.Addr(), "orders", cfg, func(o *elasticacheauth.ClientOptions) {
		o.DisableTLS = true
		o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1; ro.ReadTimeout = 2 * time.Second }
	})
	assert.Nil(t, plain.Options().TLSConfig, "DisableTLS kept TLS")
	assert.Error(t, plain.Ping(ctx).Err(), "plaintext reached the TLS front")
	cc, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg)
	require.NoError(t, err)
	defer cc.Close()
	assert.NotNil(t, cc.Options().TLSConfig, "cluster client without TLS by default")
}

// otherRoleConfig is cfg with credentials of a role that has no
// elasticache:Connect.
func otherRoleConfig(t *testing.T) aws.Config {
	t.Helper()
	role := "arn:aws:iam::111122223333:role/no-cache-access"
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	require.NoError(t, env.IAM.PutRole(role, trust, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)))
	c, err := env.Registry.IssueSession(role, "other", time.Hour)
	require.NoError(t, err)
	out := cfg.Copy()
	out.Credentials = static(aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires})
	return out
}

func TestBadTokensAreRefusedThroughTheClient(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		cache  string
		cfg    func(t *testing.T) aws.Config
		opts   func(*elasticacheauth.Options)
		reason string
	}{
		{"wrong region", "orders", nil, func(o *elasticacheauth.Options) { o.Region = "eu-west-1" }, "sigv4:SignatureDoesNotMatch"},
		{"wrong cache name", "payments", nil, nil, redisfront.ReasonHost},
		{"serverless token for a replication group", "orders", nil, func(o *elasticacheauth.Options) { o.Serverless = true }, redisfront.ReasonResourceType},
		{"MemoryDB token", "orders", nil, func(o *elasticacheauth.Options) { o.MemoryDB = true }, "sigv4:SignatureDoesNotMatch"},
		{"role without elasticache:Connect", "orders", otherRoleConfig, nil, redisfront.ReasonIAM},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c := cfg
			if tc.cfg != nil {
				c = tc.cfg(t)
			}
			var rdb redis.UniversalClient
			opts := func(o *elasticacheauth.ClientOptions) {
				o.Token = tc.opts
				o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1 }
			}
			if tc.opts != nil {
				// Serverless tokens need a cluster client; the standalone
				// front speaks plain RESP, so go through a cluster client
				// pointed at it only to send the AUTH.
				var probe elasticacheauth.Options
				tc.opts(&probe)
				if probe.Serverless {
					cc, err := elasticacheauth.NewClusterClient(ctx, standalone.Addr(), tc.cache, userID, c, trustFront, opts, func(o *elasticacheauth.ClientOptions) {
						o.Cluster = func(co *redis.ClusterOptions) { co.MaxRetries = -1 }
					})
					require.NoError(t, err)
					defer cc.Close()
					rdb = cc
				}
			}
			if rdb == nil {
				rdb = newClient(t, standalone.Addr(), tc.cache, c, opts)
			}
			before := standalone.Stats().Rejected[tc.reason]
			err := rdb.Ping(ctx).Err()
			require.Error(t, err)
			assert.Contains(t, err.Error(), "WRONGPASS")
			assert.Greater(t, standalone.Stats().Rejected[tc.reason], before, "not refused for %q: %v", tc.reason, standalone.Stats().Rejected)
		})
	}
}

// switchingCreds hands out credentials A until switched, then B.
type switchingCreds struct {
	a, b     aws.Credentials
	switched atomic.Bool
	calls    atomic.Int64
}

func (s *switchingCreds) Retrieve(context.Context) (aws.Credentials, error) {
	s.calls.Add(1)
	if s.switched.Load() {
		return s.b, nil
	}
	return s.a, nil
}

func issue(t *testing.T) aws.Credentials {
	t.Helper()
	c, err := env.Registry.IssueSession(env.RoleARN, "switch", time.Hour)
	require.NoError(t, err)
	return aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey, SessionToken: c.SessionToken, CanExpire: true, Expires: c.Expires}
}

func TestWrongPassMintsAFreshTokenForTheNextAttempt(t *testing.T) {
	for _, reauth := range []bool{true, false} {
		t.Run("streaming="+strconv.FormatBool(reauth), func(t *testing.T) {
			ctx := context.Background()
			sw := &switchingCreds{a: issue(t), b: issue(t)}
			c := cfg.Copy()
			c.Credentials = sw
			rdb := newClient(t, cutFrontless(), "orders", c, func(o *elasticacheauth.ClientOptions) {
				o.DisableReauth = !reauth
			})
			require.NoError(t, rdb.Ping(ctx).Err())
			// Credentials A are revoked; the live connections go (failover).
			env.Registry.Revoke(sw.a.AccessKeyID)
			sw.switched.Store(true)
			closeClientConns(rdb)
			// The next command finds its connection gone (EOF), retries on a
			// new one, which presents the cached token signed with A:
			// refused...
			err := rdb.Ping(ctx).Err()
			require.Error(t, err, "PING with the revoked key's token")
			assert.Contains(t, err.Error(), "WRONGPASS")
			// ... and the attempt after it uses a fresh token, signed with B.
			for i := 0; i < 3; i++ {
				require.NoError(t, rdb.Ping(ctx).Err(), "PING %d after WRONGPASS", i)
			}
			assert.Equal(t, int64(2), rdb.TokenSource().Mints(), "no loop, no mint per command")
		})
	}
}

// cutFrontless is the standalone front's address (12-hour life).
func cutFrontless() string { return standalone.Addr() }

// closeClientConns drops the client's pooled connections, as a failover or
// a network blip would.
func closeClientConns(rdb *elasticacheauth.Client) {
	standalone.CloseConns()
}

func TestConnectionStormMintsOnce(t *testing.T) {
	ctx := context.Background()
	const n = 200
	t.Run("CredentialsProviderContext", func(t *testing.T) {
		src := stormSource(t)
		front := stormFront(t)
		rdb := redis.NewClient(stormOptions(front, func(o *redis.Options) { o.CredentialsProviderContext = elasticacheauth.CredentialsProviderContext(src) }))
		defer rdb.Close()
		conns := storm(t, ctx, rdb, n)
		for _, c := range conns {
			c.Close()
		}
		assert.Equal(t, int64(n), front.Stats().AuthOK, "connections authenticated")
		assert.Equal(t, int64(1), src.Mints(), "%d concurrent new connections", n)
	})
	t.Run("StreamingCredentialsProvider", func(t *testing.T) {
		src := stormSource(t)
		scp := elasticacheauth.NewStreamingCredentialsProvider(src)
		defer scp.Close()
		front := stormFront(t)
		rdb := redis.NewClient(stormOptions(front, func(o *redis.Options) { o.StreamingCredentialsProvider = scp }))
		defer rdb.Close()
		// Blocking commands hold their connections, so n of them at once
		// open n connections (go-redis's Conn cannot be used with streaming
		// credentials, see Client).
		start := make(chan struct{})
		var wg sync.WaitGroup
		var failed atomic.Int64
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				if err := rdb.BLPop(ctx, 2*time.Second, "storm-empty-"+strconv.Itoa(i)).Err(); err != redis.Nil {
					failed.Add(1)
				}
			}()
		}
		close(start)
		wg.Wait()
		conns := int64(rdb.PoolStats().TotalConns)
		require.Zero(t, failed.Load(), "commands failed")
		assert.GreaterOrEqual(t, conns, int64(n/2), "connections in the pool")
		assert.Equal(t, conns, front.Stats().AuthOK, "connections authenticated vs pool")
		assert.Equal(t, int(conns), scp.Listeners(), "listeners per connection")
		assert.Equal(t, int64(1), src.Mints(), "%d concurrent new connections", conns)
		t.Logf("%d connections, %d mint", conns, src.Mints())
	})
}

func stormSource(t testing.TB) *elasticacheauth.TokenSource {
	t.Helper()
	src, err := elasticacheauth.NewTokenSource("orders", userID, cfg.Credentials, func(o *elasticacheauth.Options) { o.Region = env.Region })
	require.NoError(t, err)
	t.Cleanup(func() { src.Close() })
	return src
}

// stormFront is a front of the storm's own before the shared server, so that
// its counters see only the storm's connections: connections that earlier
// tests left to close, or their re-authentication, are not counted.
func stormFront(t testing.TB) *redisfront.Front {
	t.Helper()
	f, err := redisfront.Start(standalone.Redis.Addr, redisfront.Options{
		Registry: env.Registry, IAM: env.IAM, Region: env.Region,
		Users: []string{userID}, CacheName: "orders", CA: standalone.CA(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func stormOptions(front *redisfront.Front, fn func(*redis.Options)) *redis.Options {
	o := &redis.Options{
		Addr:        front.Addr(),
		TLSConfig:   front.ClientTLS(),
		PoolSize:    256,
		DialTimeout: 30 * time.Second,
		ReadTimeout: 30 * time.Second,
		PoolTimeout: 30 * time.Second,
		// go-redis v9.22 races on Options when connections opened through
		// Conn fall back from the maintenance-notification handshake.
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	fn(o)
	return o
}

func TestWatchAndConnWithStreamingCredentials(t *testing.T) {
	ctx := context.Background()
	for _, reauth := range []bool{true, false} {
		rdb := newClient(t, standalone.Addr(), "orders", cfg, func(o *elasticacheauth.ClientOptions) { o.DisableReauth = !reauth })
		err := rdb.Watch(ctx, func(tx *redis.Tx) error {
			n, err := tx.Get(ctx, "watched").Int()
			if err != nil && err != redis.Nil {
				return err
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Set(ctx, "watched", n+1, 0); return nil })
			return err
		}, "watched")
		require.NoError(t, err, "Watch (streaming=%v)", reauth)
		c := rdb.Conn()
		assert.NoError(t, c.Ping(ctx).Err(), "Conn (streaming=%v)", reauth)
		assert.NoError(t, c.Close())
	}
	cc, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront)
	require.NoError(t, err)
	defer cc.Close()
	require.NoError(t, cc.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "cwatched"); return nil })
		return err
	}, "cwatched"), "cluster Watch")
	assert.Equal(t, int64(1), cc.TokenSource().Mints())
}

// storm opens n connections at once (each its own, held until returned)
// and runs PING on each.
func storm(t testing.TB, ctx context.Context, rdb *redis.Client, n int) []*redis.Conn {
	t.Helper()
	conns := make([]*redis.Conn, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			c := rdb.Conn()
			conns[i] = c
			if err := c.Ping(ctx).Err(); err != nil {
				if failed.Add(1) == 1 {
					assert.NoError(t, err, "PING")
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	require.Zero(t, failed.Load(), "connections failed of %d", n)
	return conns
}

func TestReauthKeepsConnectionsAcrossLifeCuts(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for 30 s")
	}
	ctx := context.Background()
	rdb := newClient(t, cutFront.Addr(), "orders", cfg, func(o *elasticacheauth.ClientOptions) {
		o.ReauthInterval = cutLife / 4
		o.Redis = func(ro *redis.Options) {
			// Idle connections are not dropped before the cut: re-auth
			// alone keeps them alive.
			ro.ConnMaxIdleTime = -1
			ro.PoolSize = 16
		}
	})
	before := cutFront.Stats()
	const workers = 4
	const run = 30 * time.Second
	deadline := time.Now().Add(run)
	type seen struct{ first, last time.Time }
	var (
		mu       sync.Mutex
		clients  = map[int64]*seen{}
		failures []error
		ok       atomic.Int64
		wg       sync.WaitGroup
	)
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := "reauth-" + strconv.Itoa(w)
			for time.Now().Before(deadline) {
				var id *redis.IntCmd
				_, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
					p.Incr(ctx, key)
					id = p.ClientID(ctx)
					return nil
				})
				now := time.Now()
				mu.Lock()
				if err != nil {
					failures = append(failures, err)
				} else {
					ok.Add(1)
					s := clients[id.Val()]
					if s == nil {
						s = &seen{first: now}
						clients[id.Val()] = s
					}
					s.last = now
				}
				mu.Unlock()
				time.Sleep(time.Millisecond)
			}
		}()
	}
	wg.Wait()
	after := cutFront.Stats()
	require.Empty(t, failures, "commands failed across connection-life cuts (of %d)", int64(len(failures))+ok.Load())
	var longest time.Duration
	for _, s := range clients {
		if d := s.last.Sub(s.first); d > longest {
			longest = d
		}
	}
	t.Logf("%d commands, %d server connections seen, longest-lived %v (life %v), %d re-auths, %d refused, %d pushes, %d connections cut, %d mints",
		ok.Load(), len(clients), longest.Round(time.Millisecond), cutLife, after.Reauths-before.Reauths, after.AuthFailed-before.AuthFailed,
		rdb.StreamingCredentialsProvider().Pushes(), after.Cuts-before.Cuts, rdb.TokenSource().Mints())
	assert.Equal(t, before.AuthFailed, after.AuthFailed, "the front refused authentications")
	assert.Greater(t, after.Reauths, before.Reauths, "no connection was re-authenticated")
	// A connection seen over more than its life was re-authenticated: the
	// front cuts it at the end of the life that its last authentication
	// started, and it was first seen after its first authentication.
	assert.Greater(t, longest, cutLife+cutLife/10, "no connection outlived its life: re-authentication did not extend them")
}

func TestWithoutReauthConnectionsAreCut(t *testing.T) {
	// The control of the test above: the same front and loop without
	// re-authentication loses its connection at the end of its life.
	ctx := context.Background()
	rdb := newClient(t, cutFront.Addr(), "orders", cfg, func(o *elasticacheauth.ClientOptions) {
		o.DisableReauth = true
		o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1; ro.PoolSize = 1 }
	})
	deadline := time.Now().Add(10 * cutLife)
	var err error
	for err == nil && time.Now().Before(deadline) {
		err = rdb.Incr(ctx, "no-reauth").Err()
		time.Sleep(5 * time.Millisecond)
	}
	assert.Error(t, err, "the connection outlived its life without re-authentication")
}

func TestStreamingProviderSubscribeIsIdempotent(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, time.Hour)))
	p := elasticacheauth.NewStreamingCredentialsProvider(src, elasticacheauth.WithStreamingClock(w.clk), func(o *elasticacheauth.StreamingOptions) {
		o.Interval = time.Minute
	})
	defer p.Close()
	l := &countingListener{}
	c1, unsub1, err := p.Subscribe(l)
	require.NoError(t, err)
	_, unsub2, err := p.Subscribe(l)
	require.NoError(t, err)
	u, pw := c1.BasicAuth()
	assert.Equal(t, userID, u)
	assert.True(t, strings.HasPrefix(pw, "orders/?"), "password is a token for orders")
	assert.Equal(t, 1, p.Listeners(), "listeners after subscribing one twice")
	w.clk.Advance(time.Minute)
	assert.Equal(t, int64(1), l.next.Load(), "notifications per push")
	require.NoError(t, unsub2())
	require.NoError(t, unsub1()) // a no-op now
	w.clk.Advance(time.Minute)
	assert.Equal(t, int64(1), l.next.Load(), "notified after unsubscribing")
	assert.Zero(t, p.Listeners())
	// Re-subscribing works, and an old unsubscribe does not end the new one.
	_, _, err = p.Subscribe(l)
	require.NoError(t, err)
	require.NoError(t, unsub1())
	w.clk.Advance(time.Minute)
	assert.Equal(t, int64(2), l.next.Load(), "re-subscribed listener's notifications")
	// The pushed credentials print redacted.
	s := l.lastString.Load()
	require.NotNil(t, s)
	assert.NotContains(t, *s, "X-Amz-Signature", "credentials print their token")
	require.NoError(t, p.Close())
	_, _, err = p.Subscribe(&countingListener{})
	assert.ErrorIs(t, err, elasticacheauth.ErrClosed, "Subscribe after Close")
	w.clk.Advance(time.Hour)
	assert.Equal(t, int64(2), l.next.Load(), "pushed after Close")
}

type countingListener struct {
	next, errs atomic.Int64
	lastString atomic.Pointer[string]
}

func (c *countingListener) OnNext(cr auth.Credentials) {
	c.next.Add(1)
	s := fmt.Sprint(cr) + fmt.Sprintf("%v %+v %#v", cr, cr, cr)
	c.lastString.Store(&s)
}
func (c *countingListener) OnError(error) { c.errs.Add(1) }

func TestEndToEndThroughTheSDKEnvironmentChain(t *testing.T) {
	env.Setenv(t)
	ctx := context.Background()
	sdkCfg, err := config.LoadDefaultConfig(ctx)
	require.NoError(t, err)
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	rdb := newClient(t, standalone.Addr(), "orders", sdkCfg)
	for i := 0; i < 10; i++ {
		require.NoError(t, rdb.Set(ctx, "e2e", i, 0).Err())
	}
	assert.Equal(t, int64(1), env.STS.Calls("AssumeRoleWithWebIdentity")-before, "STS calls")
}

func TestClientArguments(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name, addr, cache string
		c                 aws.Config
		want              error
	}{
		{"no port", "master.orders.abc123.use1.cache.amazonaws.com", "", cfg, elasticacheauth.ErrInvalidEndpoint},
		{"no cache name, not an endpoint name", "127.0.0.1:6379", "", cfg, elasticacheauth.ErrInvalidCacheName},
		{"cache name contradicts endpoint", "master.orders.abc123.use1.cache.amazonaws.com:6379", "payments", cfg, elasticacheauth.ErrCacheNameMismatch},
		{"no credentials", "127.0.0.1:6379", "orders", aws.Config{Region: "us-east-1"}, elasticacheauth.ErrNoCredentials},
		{"no region", "127.0.0.1:6379", "orders", aws.Config{Credentials: cfg.Credentials}, elasticacheauth.ErrNoRegion},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := elasticacheauth.NewClient(ctx, tc.addr, tc.cache, userID, tc.c)
			assert.ErrorIs(t, err, tc.want)
		})
	}
	// An endpoint name gives the cache name, region and serverless flag.
	rdb, err := elasticacheauth.NewClusterClient(ctx, "sessions-x1y2z3.serverless.euw1.cache.amazonaws.com:6379", "", userID, cfg)
	require.NoError(t, err)
	defer rdb.Close()
	src := rdb.TokenSource()
	assert.Equal(t, "sessions", src.CacheName())
	assert.Equal(t, "eu-west-1", src.Region())
	assert.True(t, src.Serverless())
}
