package elasticacheauth_test

import (
	"context"
	"errors"
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

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
)

// trustFront makes a client trust the fronts' test CA.
func trustFront(o *elasticacheauth.ClientOptions) { o.RootCAs = standalone.CertPool() }

func newClient(t *testing.T, addr, cache string, c aws.Config, optFns ...func(*elasticacheauth.ClientOptions)) *elasticacheauth.Client {
	t.Helper()
	rdb, err := elasticacheauth.NewClient(context.Background(), addr, cache, userID, c, append([]func(*elasticacheauth.ClientOptions){trustFront}, optFns...)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rdb.Close() })
	return rdb
}

func TestClientRunsCommands(t *testing.T) {
	ctx := context.Background()
	rdb := newClient(t, standalone.Addr(), "orders", cfg)
	if err := rdb.Set(ctx, "client-k", "v1", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "client-k").Result(); err != nil || v != "v1" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	cmds, err := rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		p.Incr(ctx, "client-n")
		p.Incr(ctx, "client-n")
		return nil
	})
	if err != nil || cmds[1].(*redis.IntCmd).Val() != 2 {
		t.Fatalf("pipeline: %v", err)
	}
	if rdb.TokenSource().Mints() != 1 {
		t.Fatalf("mints = %d", rdb.TokenSource().Mints())
	}
}

func TestClusterClientRunsCommands(t *testing.T) {
	ctx := context.Background()
	rdb, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	before := cluster.Stats()
	for i := 0; i < 100; i++ {
		k := "cluster-k" + strconv.Itoa(i)
		if err := rdb.Set(ctx, k, i, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if v, err := rdb.Get(ctx, k).Int(); err != nil || v != i {
			t.Fatalf("GET %s = %d, %v", k, v, err)
		}
	}
	for i, f := range cluster.Fronts {
		if f.Stats().AuthOK == 0 || f.Stats().Forwarded == 0 {
			t.Errorf("front %d (%s) was not used: %+v", i, f.Addr(), f.Stats())
		}
	}
	if after := cluster.Stats(); after.AuthFailed != before.AuthFailed {
		t.Fatalf("auth failures: %v", after.Rejected)
	}
	if rdb.TokenSource().Mints() != 1 {
		t.Fatalf("mints = %d for %d connections", rdb.TokenSource().Mints(), cluster.Stats().AuthOK-before.AuthOK)
	}
}

func TestServerlessUsesResourceTypeAndClusterMode(t *testing.T) {
	ctx := context.Background()
	f := serverless.Fronts[0]
	serverlessOpt := func(o *elasticacheauth.ClientOptions) {
		o.Token = func(to *elasticacheauth.Options) { to.Serverless = true }
	}
	if _, err := elasticacheauth.NewClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, serverlessOpt); !errors.Is(err, elasticacheauth.ErrServerlessNeedsCluster) {
		t.Fatalf("NewClient for serverless: %v", err)
	}
	rdb, err := elasticacheauth.NewClusterClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, serverlessOpt)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	for i := 0; i < 20; i++ {
		if err := rdb.Set(ctx, "sl-"+strconv.Itoa(i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	tok, err := rdb.TokenSource().Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse("http://" + tok.Value())
	if u.Query().Get("ResourceType") != "ServerlessCache" || !tok.Serverless() {
		t.Fatal("serverless token without ResourceType=ServerlessCache")
	}
	// The same cache refuses a token without it.
	plain, err := elasticacheauth.NewClusterClient(ctx, f.Addr(), "sessions", userID, cfg, trustFront, func(o *elasticacheauth.ClientOptions) {
		o.Cluster = func(co *redis.ClusterOptions) { co.MaxRetries = -1 }
	})
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	before := f.Stats().Rejected[redisfront.ReasonResourceType]
	if err := plain.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
		t.Fatalf("token without ResourceType: %v", err)
	}
	if f.Stats().Rejected[redisfront.ReasonResourceType] == before {
		t.Fatal("the front did not refuse it for the resource type")
	}
}

func TestTLSIsTheDefault(t *testing.T) {
	ctx := context.Background()
	// Without the test CA the front's certificate is not trusted: the
	// client verifies TLS.
	rdb, err := elasticacheauth.NewClient(ctx, standalone.Addr(), "orders", userID, cfg, func(o *elasticacheauth.ClientOptions) {
		o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1 }
	})
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	if rdb.Options().TLSConfig == nil || rdb.Options().TLSConfig.MinVersion < 0x0303 {
		t.Fatal("no TLS 1.2+ configuration by default")
	}
	if err := rdb.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "certificate") {
		t.Fatalf("PING to an untrusted certificate: %v", err)
	}
	// Plaintext only by explicit opt-out, and then the TLS front refuses.
	plain := newClient(t, standalone.Addr(), "orders", cfg, func(o *elasticacheauth.ClientOptions) {
		o.DisableTLS = true
		o.Redis = func(ro *redis.Options) { ro.MaxRetries = -1; ro.ReadTimeout = 2 * time.Second }
	})
	if plain.Options().TLSConfig != nil {
		t.Fatal("DisableTLS kept TLS")
	}
	if err := plain.Ping(ctx).Err(); err == nil {
		t.Fatal("plaintext reached the TLS front")
	}
	cc, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if cc.Options().TLSConfig == nil {
		t.Fatal("cluster client without TLS by default")
	}
}

// otherRoleConfig is cfg with credentials of a role that has no
// elasticache:Connect.
func otherRoleConfig(t *testing.T) aws.Config {
	t.Helper()
	role := "arn:aws:iam::111122223333:role/no-cache-access"
	trust := []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"ec2.amazonaws.com"},"Action":"sts:AssumeRole"}]}`)
	if err := env.IAM.PutRole(role, trust, []byte(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}`)); err != nil {
		t.Fatal(err)
	}
	c, err := env.Registry.IssueSession(role, "other", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
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
					if err != nil {
						t.Fatal(err)
					}
					defer cc.Close()
					rdb = cc
				}
			}
			if rdb == nil {
				rdb = newClient(t, standalone.Addr(), tc.cache, c, opts)
			}
			before := standalone.Stats().Rejected[tc.reason]
			err := rdb.Ping(ctx).Err()
			if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
				t.Fatalf("PING = %v, want WRONGPASS", err)
			}
			if standalone.Stats().Rejected[tc.reason] == before {
				t.Fatalf("not refused for %q: %v", tc.reason, standalone.Stats().Rejected)
			}
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
	if err != nil {
		t.Fatal(err)
	}
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
			if err := rdb.Ping(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			// Credentials A are revoked; the live connections go (failover).
			env.Registry.Revoke(sw.a.AccessKeyID)
			sw.switched.Store(true)
			closeClientConns(rdb)
			// The next command finds its connection gone (EOF), retries on a
			// new one, which presents the cached token signed with A:
			// refused...
			err := rdb.Ping(ctx).Err()
			if err == nil || !strings.Contains(err.Error(), "WRONGPASS") {
				t.Fatalf("PING with the revoked key's token: %v", err)
			}
			// ... and the attempt after it uses a fresh token, signed with B.
			for i := 0; i < 3; i++ {
				if err := rdb.Ping(ctx).Err(); err != nil {
					t.Fatalf("PING %d after WRONGPASS: %v", i, err)
				}
			}
			if m := rdb.TokenSource().Mints(); m != 2 {
				t.Fatalf("mints = %d, want 2 (no loop, no mint per command)", m)
			}
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
		rdb := redis.NewClient(stormOptions(func(o *redis.Options) { o.CredentialsProviderContext = elasticacheauth.CredentialsProviderContext(src) }))
		defer rdb.Close()
		before := standalone.Stats()
		conns := storm(t, ctx, rdb, n)
		for _, c := range conns {
			c.Close()
		}
		if got := standalone.Stats().AuthOK - before.AuthOK; got != n {
			t.Fatalf("%d connections authenticated, want %d", got, n)
		}
		if src.Mints() != 1 {
			t.Fatalf("%d concurrent new connections minted %d tokens, want 1", n, src.Mints())
		}
	})
	t.Run("StreamingCredentialsProvider", func(t *testing.T) {
		src := stormSource(t)
		scp := elasticacheauth.NewStreamingCredentialsProvider(src)
		defer scp.Close()
		rdb := redis.NewClient(stormOptions(func(o *redis.Options) { o.StreamingCredentialsProvider = scp }))
		defer rdb.Close()
		before := standalone.Stats()
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
		if failed.Load() > 0 {
			t.Fatalf("%d commands failed", failed.Load())
		}
		if got := standalone.Stats().AuthOK - before.AuthOK; got != conns || conns < n/2 {
			t.Fatalf("%d connections authenticated, pool holds %d", got, conns)
		}
		if scp.Listeners() != int(conns) {
			t.Fatalf("%d listeners for %d connections", scp.Listeners(), conns)
		}
		if src.Mints() != 1 {
			t.Fatalf("%d concurrent new connections minted %d tokens, want 1", conns, src.Mints())
		}
		t.Logf("%d connections, %d mint", conns, src.Mints())
	})
}

func stormSource(t testing.TB) *elasticacheauth.TokenSource {
	t.Helper()
	src, err := elasticacheauth.NewTokenSource("orders", userID, cfg.Credentials, func(o *elasticacheauth.Options) { o.Region = env.Region })
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return src
}

func stormOptions(fn func(*redis.Options)) *redis.Options {
	o := &redis.Options{
		Addr:        standalone.Addr(),
		TLSConfig:   standalone.ClientTLS(),
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
		if err != nil {
			t.Fatalf("Watch (streaming=%v): %v", reauth, err)
		}
		c := rdb.Conn()
		if err := c.Ping(ctx).Err(); err != nil {
			t.Fatalf("Conn (streaming=%v): %v", reauth, err)
		}
		c.Close()
	}
	cc, err := elasticacheauth.NewClusterClient(ctx, cluster.Addrs()[0], "orders-cluster", userID, cfg, trustFront)
	if err != nil {
		t.Fatal(err)
	}
	defer cc.Close()
	if err := cc.Watch(ctx, func(tx *redis.Tx) error {
		_, err := tx.TxPipelined(ctx, func(p redis.Pipeliner) error { p.Incr(ctx, "cwatched"); return nil })
		return err
	}, "cwatched"); err != nil {
		t.Fatalf("cluster Watch: %v", err)
	}
	if cc.TokenSource().Mints() != 1 {
		t.Fatalf("mints = %d", cc.TokenSource().Mints())
	}
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
					t.Errorf("PING: %v", err)
				}
			}
		}()
	}
	close(start)
	wg.Wait()
	if failed.Load() > 0 {
		t.Fatalf("%d of %d connections failed", failed.Load(), n)
	}
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
	if len(failures) > 0 {
		t.Fatalf("%d of %d commands failed across connection-life cuts; first: %v", len(failures), int64(len(failures))+ok.Load(), failures[0])
	}
	var longest time.Duration
	for _, s := range clients {
		if d := s.last.Sub(s.first); d > longest {
			longest = d
		}
	}
	t.Logf("%d commands, %d server connections seen, longest-lived %v (life %v), %d re-auths, %d refused, %d pushes, %d connections cut, %d mints",
		ok.Load(), len(clients), longest.Round(time.Millisecond), cutLife, after.Reauths-before.Reauths, after.AuthFailed-before.AuthFailed,
		rdb.StreamingCredentialsProvider().Pushes(), after.Cuts-before.Cuts, rdb.TokenSource().Mints())
	if after.AuthFailed != before.AuthFailed {
		t.Fatalf("the front refused %d authentications", after.AuthFailed-before.AuthFailed)
	}
	if after.Reauths == before.Reauths {
		t.Fatal("no connection was re-authenticated")
	}
	// A connection seen over more than its life was re-authenticated: the
	// front cuts it at the end of the life that its last authentication
	// started, and it was first seen after its first authentication.
	if longest <= cutLife+cutLife/10 {
		t.Fatalf("no connection outlived its life (longest %v): re-authentication did not extend them", longest)
	}
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
	if err == nil {
		t.Fatal("the connection outlived its life without re-authentication")
	}
}

func TestStreamingProviderSubscribeIsIdempotent(t *testing.T) {
	w := newFakeWorld(t)
	src := newSource(t, w, static(w.creds(t, time.Hour)))
	p := elasticacheauth.NewStreamingCredentialsProvider(src, func(o *elasticacheauth.StreamingOptions) {
		o.Interval = time.Minute
		elasticacheauth.WithStreamingClock(w.clk)(o)
	})
	defer p.Close()
	l := &countingListener{}
	c1, unsub1, err := p.Subscribe(l)
	if err != nil {
		t.Fatal(err)
	}
	_, unsub2, err := p.Subscribe(l)
	if err != nil {
		t.Fatal(err)
	}
	if u, pw := c1.BasicAuth(); u != userID || !strings.HasPrefix(pw, "orders/?") {
		t.Fatalf("credentials for %q", u)
	}
	if p.Listeners() != 1 {
		t.Fatalf("%d listeners after subscribing one twice", p.Listeners())
	}
	w.clk.Advance(time.Minute)
	if l.next.Load() != 1 {
		t.Fatalf("%d notifications per push, want 1", l.next.Load())
	}
	if err := unsub2(); err != nil {
		t.Fatal(err)
	}
	if err := unsub1(); err != nil { // a no-op now
		t.Fatal(err)
	}
	w.clk.Advance(time.Minute)
	if l.next.Load() != 1 || p.Listeners() != 0 {
		t.Fatalf("notified after unsubscribing (%d, %d listeners)", l.next.Load(), p.Listeners())
	}
	// Re-subscribing works, and an old unsubscribe does not end the new one.
	if _, _, err := p.Subscribe(l); err != nil {
		t.Fatal(err)
	}
	unsub1()
	w.clk.Advance(time.Minute)
	if l.next.Load() != 2 {
		t.Fatalf("re-subscribed listener got %d notifications, want 2", l.next.Load())
	}
	// The pushed credentials print redacted.
	if s := l.lastString.Load(); s == nil || strings.Contains(*s, "X-Amz-Signature") {
		t.Fatalf("credentials print as %v", s)
	}
	p.Close()
	if _, _, err := p.Subscribe(&countingListener{}); !errors.Is(err, elasticacheauth.ErrClosed) {
		t.Fatalf("Subscribe after Close: %v", err)
	}
	w.clk.Advance(time.Hour)
	if l.next.Load() != 2 {
		t.Fatal("pushed after Close")
	}
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
	if err != nil {
		t.Fatal(err)
	}
	before := env.STS.Calls("AssumeRoleWithWebIdentity")
	rdb := newClient(t, standalone.Addr(), "orders", sdkCfg)
	for i := 0; i < 10; i++ {
		if err := rdb.Set(ctx, "e2e", i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if got := env.STS.Calls("AssumeRoleWithWebIdentity") - before; got != 1 {
		t.Fatalf("%d STS calls, want 1", got)
	}
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
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	// An endpoint name gives the cache name, region and serverless flag.
	rdb, err := elasticacheauth.NewClusterClient(ctx, "sessions-x1y2z3.serverless.euw1.cache.amazonaws.com:6379", "", userID, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer rdb.Close()
	src := rdb.TokenSource()
	if src.CacheName() != "sessions" || src.Region() != "eu-west-1" || !src.Serverless() {
		t.Fatalf("derived %s %s serverless=%v", src.CacheName(), src.Region(), src.Serverless())
	}
}
