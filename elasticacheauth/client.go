package elasticacheauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
)

// ClientOptions configure NewClient and NewClusterClient. Every field has a
// usable zero value.
type ClientOptions struct {
	// Token configures the TokenSource (Region, Serverless, MemoryDB, cache
	// knobs). Serverless and MemoryDB default to what the endpoint name
	// says. The region is the endpoint name's: a Region set here must agree
	// with it (else ErrRegionMismatch), and is required when the name spells
	// its region with a code this package cannot decode (else ErrNoRegion).
	// For a host that is not an endpoint name (an IP address, a private DNS
	// name) Region defaults to the aws.Config's.
	Token func(*Options)

	// DisableTLS connects in plaintext. ElastiCache refuses IAM
	// authentication without in-transit encryption, and a token is a bearer
	// credential for 15 minutes, so this is only for local servers.
	// Default false: TLS 1.2 or later, certificates verified against the
	// endpoint host. It cannot be combined with TLSConfig.
	DisableTLS bool
	// RootCAs verify the server certificate. Default: the system pool
	// (which trusts ElastiCache's Amazon Trust Services certificates).
	RootCAs *x509.CertPool
	// TLSConfig replaces the default TLS configuration (it is cloned; its
	// RootCAs default to RootCAs, its MinVersion to TLS 1.2). It must
	// verify the server's certificate and allow no version below TLS 1.2,
	// else NewClient and NewClusterClient fail with ErrInsecureTransport;
	// so must the configuration ClientOptions.Redis or Cluster leave, and a
	// custom go-redis Dialer's connections are given (or checked for)
	// verified TLS.
	TLSConfig *tls.Config
	// AllowInsecureTLS accepts TLS that does not verify the server's
	// certificate (InsecureSkipVerify): anyone in the network path could
	// then take the tokens. Default false.
	AllowInsecureTLS bool

	// ReauthInterval is how often live connections are re-authenticated with
	// a current token (StreamingOptions.Interval). Default 15 minutes.
	ReauthInterval time.Duration
	// DisableReauth authenticates each connection once, at connect
	// (CredentialsProviderContext), instead of streaming tokens to live
	// connections; ElastiCache then closes connections 12 hours after they
	// opened. Default false.
	DisableReauth bool

	// MaxConnLifetime is go-redis's ConnMaxLifetime: connections are
	// replaced after it. The once-authenticated connections behind Conn,
	// Watch and AutoPipeline need it to stay inside ElastiCache's 12-hour
	// cut; for the others it is a safety net under re-authentication
	// (go-redis re-authenticates a connection only when it goes back to the
	// pool). Default 11 hours with up to 30 minutes of jitter; negative
	// keeps go-redis's default (none).
	MaxConnLifetime time.Duration

	// Redis edits the go-redis options last (NewClient): pool sizes,
	// timeouts, Protocol, ... .
	Redis func(*redis.Options)
	// Cluster edits the go-redis cluster options last (NewClusterClient).
	Cluster func(*redis.ClusterOptions)
}

// Client is a go-redis client for a cluster-mode-disabled cache,
// authenticating with IAM tokens. It has every command of redis.Cmdable and
// is a redis.UniversalClient. Close closes the client, its
// StreamingCredentialsProvider and its TokenSource. It is safe for
// concurrent use.
//
// Client does not hand out its *redis.Client: go-redis v9.23.0 dereferences
// a nil pointer when Conn, EphemeralConn or Watch (also an AutoPipeliner's
// Watch) must open a new connection on a client with a
// StreamingCredentialsProvider, as the sticky clients it builds for them
// lack the streaming credentials manager. So Conn, Watch and AutoPipeline
// are served by a second go-redis client, made on first use, that
// authenticates each connection once (same token source) and replaces
// connections after ClientOptions.MaxConnLifetime, before ElastiCache's
// 12-hour cut; everything else runs on the re-authenticated pool.
type Client struct {
	// Cmdable runs commands, pipelines and MULTI/EXEC transactions
	// (TxPipelined) on the re-authenticated connections.
	redis.Cmdable

	rdb *redis.Client
	src *TokenSource
	scp *StreamingCredentialsProvider

	mu         sync.Mutex
	sticky     *redis.Client // nil until first needed
	stickyOpts *redis.Options
	hooks      []redis.Hook
	closed     bool
}

// commands holds a go-redis client as a redis.Cmdable: only the methods of
// that interface can be reached through it, not Conn or Watch.
type commands struct{ redis.Cmdable }

var (
	_ redis.UniversalClient = (*Client)(nil)
	_ redis.UniversalClient = (*ClusterClient)(nil)
)

// Conn returns a connection pinned for the caller's exclusive use (see
// redis.Client.Conn). It comes from the once-authenticated client.
func (c *Client) Conn() *redis.Conn { return c.stickyClient().Conn() }

// Watch runs fn in a WATCH transaction on keys (see redis.Client.Watch).
func (c *Client) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	return c.stickyClient().Watch(ctx, fn, keys...)
}

// AutoPipeline returns go-redis's automatic pipeliner (experimental in
// go-redis) of the once-authenticated client, whose Watch is safe.
func (c *Client) AutoPipeline() (*redis.AutoPipeliner, error) {
	return c.stickyClient().AutoPipeline()
}

// AutoPipelineWithOptions is AutoPipeline with explicit options.
func (c *Client) AutoPipelineWithOptions(o *redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return c.stickyClient().AutoPipelineWithOptions(o)
}

// AsyncAutoPipeline is go-redis's asynchronous automatic pipeliner, like
// AutoPipeline.
func (c *Client) AsyncAutoPipeline() (*redis.AutoPipeliner, error) {
	return c.stickyClient().AsyncAutoPipeline()
}

// AsyncAutoPipelineWithOptions is AsyncAutoPipeline with explicit options.
func (c *Client) AsyncAutoPipelineWithOptions(o *redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return c.stickyClient().AsyncAutoPipelineWithOptions(o)
}

// Do sends any command (see redis.Client.Do).
func (c *Client) Do(ctx context.Context, args ...any) *redis.Cmd { return c.rdb.Do(ctx, args...) }

// Process runs cmd (see redis.Client.Process).
func (c *Client) Process(ctx context.Context, cmd redis.Cmder) error { return c.rdb.Process(ctx, cmd) }

// Subscribe subscribes to channels (see redis.Client.Subscribe).
func (c *Client) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.rdb.Subscribe(ctx, channels...)
}

// PSubscribe subscribes to channel patterns (see redis.Client.PSubscribe).
func (c *Client) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.rdb.PSubscribe(ctx, patterns...)
}

// SSubscribe subscribes to shard channels (see redis.Client.SSubscribe).
func (c *Client) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.rdb.SSubscribe(ctx, channels...)
}

// AddHook adds a go-redis hook to the client, the once-authenticated one
// included.
func (c *Client) AddHook(h redis.Hook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdb.AddHook(h)
	c.hooks = append(c.hooks, h)
	if c.sticky != nil && c.sticky != c.rdb {
		c.sticky.AddHook(h)
	}
}

// PoolStats returns the connection pool's statistics (the
// re-authenticated pool).
func (c *Client) PoolStats() *redis.PoolStats { return c.rdb.PoolStats() }

// Options returns the client's go-redis options, read-only.
func (c *Client) Options() *redis.Options { return c.rdb.Options() }

func (c *Client) stickyClient() *redis.Client {
	if c.scp == nil {
		return c.rdb // without streaming credentials go-redis does not panic
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sticky == nil {
		c.sticky = redis.NewClient(c.stickyOpts)
		c.sticky.AddHook(InvalidateOnWrongPass(c.src))
		for _, h := range c.hooks {
			c.sticky.AddHook(h)
		}
		if c.closed {
			c.sticky.Close() // its commands fail with redis.ErrClosed
		}
	}
	return c.sticky
}

// TokenSource returns the client's token source.
func (c *Client) TokenSource() *TokenSource { return c.src }

// StreamingCredentialsProvider returns the provider re-authenticating live
// connections, or nil with ClientOptions.DisableReauth.
func (c *Client) StreamingCredentialsProvider() *StreamingCredentialsProvider { return c.scp }

// Close closes the go-redis clients, then the token machinery.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	sticky := c.sticky
	c.mu.Unlock()
	first := c.rdb.Close()
	if sticky != nil && sticky != c.rdb {
		first = errors.Join(first, sticky.Close())
	}
	return closeAll(first, c.scp, c.src)
}

// ClusterClient is a go-redis cluster client authenticating with IAM
// tokens, for cluster-mode-enabled replication groups and serverless
// caches. It has every command of redis.Cmdable and is a
// redis.UniversalClient. Close closes the client, its
// StreamingCredentialsProvider and its TokenSource. It is safe for
// concurrent use.
//
// Like [Client], it does not hand out its *redis.ClusterClient (whose node
// clients have go-redis's Watch panic): Watch and AutoPipeline are served by
// a second cluster client that authenticates each connection once.
type ClusterClient struct {
	// Cmdable runs commands, pipelines and MULTI/EXEC transactions
	// (TxPipelined) on the re-authenticated connections.
	redis.Cmdable

	rdb *redis.ClusterClient
	src *TokenSource
	scp *StreamingCredentialsProvider

	mu         sync.Mutex
	sticky     *redis.ClusterClient
	stickyOpts *redis.ClusterOptions
	hooks      []redis.Hook
	closed     bool
}

// Watch runs fn in a WATCH transaction on keys, which must hash to one
// slot (see redis.ClusterClient.Watch).
func (c *ClusterClient) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	return c.stickyClient().Watch(ctx, fn, keys...)
}

// AutoPipeline returns go-redis's automatic pipeliner (experimental in
// go-redis) of the once-authenticated cluster client, whose Watch is safe.
func (c *ClusterClient) AutoPipeline() (*redis.AutoPipeliner, error) {
	return c.stickyClient().AutoPipeline()
}

// AutoPipelineWithOptions is AutoPipeline with explicit options.
func (c *ClusterClient) AutoPipelineWithOptions(o *redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return c.stickyClient().AutoPipelineWithOptions(o)
}

// AsyncAutoPipeline is go-redis's asynchronous automatic pipeliner, like
// AutoPipeline.
func (c *ClusterClient) AsyncAutoPipeline() (*redis.AutoPipeliner, error) {
	return c.stickyClient().AsyncAutoPipeline()
}

// AsyncAutoPipelineWithOptions is AsyncAutoPipeline with explicit options.
func (c *ClusterClient) AsyncAutoPipelineWithOptions(o *redis.AutoPipelineOptions) (*redis.AutoPipeliner, error) {
	return c.stickyClient().AsyncAutoPipelineWithOptions(o)
}

// Do sends any command (see redis.ClusterClient.Do).
func (c *ClusterClient) Do(ctx context.Context, args ...any) *redis.Cmd {
	return c.rdb.Do(ctx, args...)
}

// Process runs cmd (see redis.ClusterClient.Process).
func (c *ClusterClient) Process(ctx context.Context, cmd redis.Cmder) error {
	return c.rdb.Process(ctx, cmd)
}

// Subscribe subscribes to channels (see redis.ClusterClient.Subscribe).
func (c *ClusterClient) Subscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.rdb.Subscribe(ctx, channels...)
}

// PSubscribe subscribes to channel patterns.
func (c *ClusterClient) PSubscribe(ctx context.Context, patterns ...string) *redis.PubSub {
	return c.rdb.PSubscribe(ctx, patterns...)
}

// SSubscribe subscribes to shard channels.
func (c *ClusterClient) SSubscribe(ctx context.Context, channels ...string) *redis.PubSub {
	return c.rdb.SSubscribe(ctx, channels...)
}

// AddHook adds a go-redis hook to the cluster client, the
// once-authenticated one included.
func (c *ClusterClient) AddHook(h redis.Hook) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.rdb.AddHook(h)
	c.hooks = append(c.hooks, h)
	if c.sticky != nil && c.sticky != c.rdb {
		c.sticky.AddHook(h)
	}
}

// PoolStats returns the summed statistics of the node pools (the
// re-authenticated ones).
func (c *ClusterClient) PoolStats() *redis.PoolStats { return c.rdb.PoolStats() }

// Options returns the client's go-redis cluster options, read-only.
func (c *ClusterClient) Options() *redis.ClusterOptions { return c.rdb.Options() }

// ReloadState reloads the cluster's slot layout (see
// redis.ClusterClient.ReloadState).
func (c *ClusterClient) ReloadState(ctx context.Context) { c.rdb.ReloadState(ctx) }

func (c *ClusterClient) stickyClient() *redis.ClusterClient {
	if c.scp == nil {
		return c.rdb
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.sticky == nil {
		c.sticky = redis.NewClusterClient(c.stickyOpts)
		hook := InvalidateOnWrongPass(c.src)
		c.sticky.OnNewNode(func(node *redis.Client) { node.AddHook(hook) })
		for _, h := range c.hooks {
			c.sticky.AddHook(h)
		}
		if c.closed {
			c.sticky.Close()
		}
	}
	return c.sticky
}

// TokenSource returns the client's token source.
func (c *ClusterClient) TokenSource() *TokenSource { return c.src }

// StreamingCredentialsProvider returns the provider re-authenticating live
// connections, or nil with ClientOptions.DisableReauth.
func (c *ClusterClient) StreamingCredentialsProvider() *StreamingCredentialsProvider { return c.scp }

// Close closes the go-redis clients, then the token machinery.
func (c *ClusterClient) Close() error {
	c.mu.Lock()
	c.closed = true
	sticky := c.sticky
	c.mu.Unlock()
	first := c.rdb.Close()
	if sticky != nil && sticky != c.rdb {
		first = errors.Join(first, sticky.Close())
	}
	return closeAll(first, c.scp, c.src)
}

func closeAll(first error, scp *StreamingCredentialsProvider, src *TokenSource) error {
	errs := []error{first}
	if scp != nil {
		errs = append(errs, scp.Close())
	}
	errs = append(errs, src.Close())
	return errors.Join(errs...)
}

type setup struct {
	lifetime time.Duration
	src      *TokenSource
	scp      *StreamingCredentialsProvider
	tls      *tls.Config
	o        ClientOptions
	logger   *slog.Logger
}

// NewClient returns a go-redis client for a cluster-mode-disabled cache at
// addr (host:port, e.g. the primary endpoint) that authenticates as userID
// with IAM tokens signed with cfg's credentials, over TLS, and
// re-authenticates live connections before ElastiCache's 12-hour cut.
// cacheName is the replication group id; empty derives it from addr's
// endpoint name (ParseEndpoint). ctx bounds minting the first token, which
// surfaces credential problems now rather than at the first command.
// Serverless caches speak the cluster protocol: use NewClusterClient.
func NewClient(ctx context.Context, addr, cacheName, userID string, cfg aws.Config, optFns ...func(*ClientOptions)) (*Client, error) {
	s, err := prepare(addr, cacheName, userID, cfg, optFns)
	if err != nil {
		return nil, err
	}
	if s.src.serverless {
		s.close()
		return nil, fmt.Errorf("%w: %s is serverless; use NewClusterClient", ErrServerlessNeedsCluster, addr)
	}
	ro := &redis.Options{Addr: addr, TLSConfig: s.tls, ConnMaxLifetime: s.lifetime, MaintNotificationsConfig: noMaintNotifications()}
	if s.o.Redis != nil {
		s.o.Redis(ro)
	}
	if err := secureTransport(&s.o, "ClientOptions.Redis", ro.TLSConfig, &ro.Dialer); err != nil {
		s.close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	once := *ro // Conn, Watch, AutoPipeline: authenticate once per connection
	once.CredentialsProviderContext = CredentialsProviderContext(s.src)
	if s.scp != nil {
		once.CredentialsProviderContext = s.scp.credentialsContext
		ro.StreamingCredentialsProvider = s.scp
	} else {
		ro.CredentialsProviderContext = once.CredentialsProviderContext
	}
	rdb := redis.NewClient(ro)
	rdb.AddHook(InvalidateOnWrongPass(s.src))
	return &Client{Cmdable: commands{rdb}, rdb: rdb, src: s.src, scp: s.scp, stickyOpts: &once}, nil
}

// NewClusterClient is NewClient for cluster mode: a cluster-mode-enabled
// replication group (addr = its configuration endpoint) or a serverless
// cache (addr = its endpoint; ResourceType=ServerlessCache is added to the
// tokens when the endpoint name says serverless or Options.Serverless is
// set).
func NewClusterClient(ctx context.Context, addr, cacheName, userID string, cfg aws.Config, optFns ...func(*ClientOptions)) (*ClusterClient, error) {
	s, err := prepare(addr, cacheName, userID, cfg, optFns)
	if err != nil {
		return nil, err
	}
	co := &redis.ClusterOptions{Addrs: []string{addr}, TLSConfig: s.tls, ConnMaxLifetime: s.lifetime, MaintNotificationsConfig: noMaintNotifications()}
	if s.o.Cluster != nil {
		s.o.Cluster(co)
	}
	if err := secureTransport(&s.o, "ClientOptions.Cluster", co.TLSConfig, &co.Dialer); err != nil {
		s.close()
		return nil, err
	}
	if err := s.start(ctx); err != nil {
		return nil, err
	}
	once := *co
	once.CredentialsProviderContext = CredentialsProviderContext(s.src)
	if s.scp != nil {
		once.CredentialsProviderContext = s.scp.credentialsContext
		co.StreamingCredentialsProvider = s.scp
	} else {
		co.CredentialsProviderContext = once.CredentialsProviderContext
	}
	rdb := redis.NewClusterClient(co)
	hook := InvalidateOnWrongPass(s.src)
	rdb.OnNewNode(func(node *redis.Client) { node.AddHook(hook) })
	return &ClusterClient{Cmdable: commands{rdb}, rdb: rdb, src: s.src, scp: s.scp, stickyOpts: &once}, nil
}

// noMaintNotifications turns off go-redis's maintenance-notification
// handshake (CLIENT MAINT_NOTIFICATIONS), a Redis Enterprise feature
// ElastiCache does not have: it saves a round trip per connection, and in
// go-redis v9.22 its fallback races on connections opened through Conn.
func noMaintNotifications() *maintnotifications.Config {
	return &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
}

func (s *setup) close() {
	if s.scp != nil {
		s.scp.Close()
	}
	s.src.Close()
}

// prepare checks the arguments and options and makes the token source;
// nothing in it does I/O.
func prepare(addr, cacheName, userID string, cfg aws.Config, optFns []func(*ClientOptions)) (*setup, error) {
	var o ClientOptions
	for _, fn := range optFns {
		fn(&o)
	}
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%w: %q must be host:port (ElastiCache listens on 6379: %q)", ErrInvalidEndpoint, addr, addr+":6379")
	}
	if p, err := strconv.Atoi(portStr); err != nil || p <= 0 || p > 65535 {
		return nil, fmt.Errorf("%w: %q: bad port", ErrInvalidEndpoint, addr)
	}
	var to Options
	ep, epErr := ParseEndpoint(host)
	if epErr == nil {
		to.Serverless, to.MemoryDB = ep.Serverless, ep.MemoryDB
	}
	if o.Token != nil {
		o.Token(&to)
	}
	if to.Region, err = clientRegion(host, ep, epErr, to.Region, cfg.Region); err != nil {
		return nil, err
	}
	switch {
	case cacheName == "" && epErr != nil:
		return nil, fmt.Errorf("%w: no cache name given and %s", ErrInvalidCacheName, epErr)
	case cacheName == "":
		cacheName = ep.CacheName
	case epErr == nil:
		if n, err := checkCacheName(cacheName); err == nil && n != ep.CacheName {
			return nil, fmt.Errorf("%w: cache name %q, but endpoint %q belongs to %q", ErrCacheNameMismatch, cacheName, host, ep.CacheName)
		}
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("%w: the aws.Config has no credentials (load it with irsa.Load or config.LoadDefaultConfig)", ErrNoCredentials)
	}
	tlsConf, err := tlsFor(&o)
	if err != nil {
		return nil, err
	}
	src, err := NewTokenSource(cacheName, userID, cfg.Credentials, func(x *Options) { *x = to })
	if err != nil {
		return nil, err
	}
	s := &setup{src: src, o: o, tls: tlsConf, logger: to.Logger}
	switch {
	case o.MaxConnLifetime == 0:
		s.lifetime = 11*time.Hour + time.Duration(rand.Int64N(int64(30*time.Minute)))
	case o.MaxConnLifetime > 0:
		s.lifetime = o.MaxConnLifetime
	}
	return s, nil
}

// start mints the first token, which surfaces credential problems now
// rather than at the first command, and starts the re-authentication.
func (s *setup) start(ctx context.Context) error {
	if _, err := s.src.Token(ctx); err != nil {
		s.close()
		return fmt.Errorf("elasticacheauth: first token for %s@%s: %w", s.src.user, s.src.cacheName, err)
	}
	if !s.o.DisableReauth {
		s.scp = NewStreamingCredentialsProvider(s.src, func(so *StreamingOptions) {
			so.Interval = s.o.ReauthInterval
			so.Logger = s.logger
		})
	}
	return nil
}
