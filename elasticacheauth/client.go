package elasticacheauth

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/irsakit/irsakit/internal/clock"
)

// ClientOptions configure NewClient and NewClusterClient. Every field has a
// usable zero value.
type ClientOptions struct {
	// Token configures the TokenSource (Region, Serverless, MemoryDB, cache
	// knobs). Region defaults to the endpoint name's region, else the
	// aws.Config's; Serverless and MemoryDB default to what the endpoint
	// name says.
	Token func(*Options)

	// DisableTLS connects in plaintext. ElastiCache refuses IAM
	// authentication without in-transit encryption, and a token is a bearer
	// credential for 15 minutes, so this is only for local servers.
	// Default false: TLS 1.2 or later, certificates verified against the
	// endpoint host.
	DisableTLS bool
	// RootCAs verify the server certificate. Default: the system pool
	// (which trusts ElastiCache's certificates).
	RootCAs *x509.CertPool
	// TLSConfig replaces the default TLS configuration (it is cloned).
	TLSConfig *tls.Config

	// ReauthInterval is how often live connections are re-authenticated with
	// a current token (StreamingOptions.Interval). Default 15 minutes.
	ReauthInterval time.Duration
	// DisableReauth authenticates each connection once, at connect
	// (CredentialsProviderContext), instead of streaming tokens to live
	// connections; ElastiCache then closes connections 12 hours after they
	// opened. Default false.
	DisableReauth bool

	// MaxConnLifetime is go-redis's ConnMaxLifetime: connections are
	// replaced after it, a safety net under re-authentication (go-redis
	// re-authenticates a connection only when it goes back to the pool, so
	// one held by a PubSub or a blocking command is not). Default 11 hours
	// with up to 30 minutes of jitter, inside ElastiCache's 12-hour cut;
	// negative keeps go-redis's default (none).
	MaxConnLifetime time.Duration

	// Redis edits the go-redis options last (NewClient): pool sizes,
	// timeouts, Protocol, ... .
	Redis func(*redis.Options)
	// Cluster edits the go-redis cluster options last (NewClusterClient).
	Cluster func(*redis.ClusterOptions)

	// clock is the time source of the token cache and the pushes; tests
	// set it through export_test.go.
	clock clock.Clock
}

// Client is a go-redis client authenticating with IAM tokens. Close closes
// the client, its StreamingCredentialsProvider and its TokenSource.
//
// go-redis v9.22 dereferences a nil pointer when Conn or Watch (both run on a
// sticky connection) must open a new connection on a client with a
// StreamingCredentialsProvider. Client therefore serves Conn and Watch from
// a second, lazily created go-redis client that authenticates each
// connection once (CredentialsProviderContext, same token source) and
// replaces connections after MaxConnLifetime. Call them on the Client, not
// on the embedded *redis.Client.
type Client struct {
	*redis.Client
	src *TokenSource
	scp *StreamingCredentialsProvider

	stickyOnce sync.Once
	sticky     *redis.Client
	stickyOpts *redis.Options
}

// Conn returns a connection pinned for the caller's exclusive use (see
// redis.Client.Conn).
func (c *Client) Conn() *redis.Conn { return c.stickyClient().Conn() }

// Watch runs fn in a WATCH transaction on keys (see redis.Client.Watch).
func (c *Client) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	return c.stickyClient().Watch(ctx, fn, keys...)
}

func (c *Client) stickyClient() *redis.Client {
	if c.scp == nil {
		return c.Client
	}
	c.stickyOnce.Do(func() {
		c.sticky = redis.NewClient(c.stickyOpts)
		c.sticky.AddHook(InvalidateOnWrongPass(c.src))
	})
	return c.sticky
}

// TokenSource returns the client's token source.
func (c *Client) TokenSource() *TokenSource { return c.src }

// StreamingCredentialsProvider returns the provider re-authenticating live
// connections, or nil with ClientOptions.DisableReauth.
func (c *Client) StreamingCredentialsProvider() *StreamingCredentialsProvider { return c.scp }

// Close closes the go-redis client, then the token machinery.
func (c *Client) Close() error {
	first := c.Client.Close()
	c.stickyOnce.Do(func() {}) // no sticky client after Close
	if c.sticky != nil {
		first = errors.Join(first, c.sticky.Close())
	}
	return closeAll(first, c.scp, c.src)
}

// ClusterClient is a go-redis cluster client authenticating with IAM
// tokens. Close closes the client, its StreamingCredentialsProvider and its
// TokenSource. Like [Client], it serves Watch from a second cluster client
// without streaming credentials (go-redis v9.22 panics otherwise); call it
// on the ClusterClient, not on the embedded *redis.ClusterClient.
type ClusterClient struct {
	*redis.ClusterClient
	src *TokenSource
	scp *StreamingCredentialsProvider

	stickyOnce sync.Once
	sticky     *redis.ClusterClient
	stickyOpts *redis.ClusterOptions
}

// Watch runs fn in a WATCH transaction on keys (see redis.ClusterClient.Watch).
func (c *ClusterClient) Watch(ctx context.Context, fn func(*redis.Tx) error, keys ...string) error {
	if c.scp == nil {
		return c.ClusterClient.Watch(ctx, fn, keys...)
	}
	c.stickyOnce.Do(func() {
		c.sticky = redis.NewClusterClient(c.stickyOpts)
		hook := InvalidateOnWrongPass(c.src)
		c.sticky.OnNewNode(func(node *redis.Client) { node.AddHook(hook) })
	})
	return c.sticky.Watch(ctx, fn, keys...)
}

// TokenSource returns the client's token source.
func (c *ClusterClient) TokenSource() *TokenSource { return c.src }

// StreamingCredentialsProvider returns the provider re-authenticating live
// connections, or nil with ClientOptions.DisableReauth.
func (c *ClusterClient) StreamingCredentialsProvider() *StreamingCredentialsProvider { return c.scp }

// Close closes the go-redis client, then the token machinery.
func (c *ClusterClient) Close() error {
	first := c.ClusterClient.Close()
	c.stickyOnce.Do(func() {})
	if c.sticky != nil {
		first = errors.Join(first, c.sticky.Close())
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
	s, err := prepare(ctx, addr, cacheName, userID, cfg, optFns)
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
	once := *ro // Conn and Watch: authenticate once per connection
	once.CredentialsProviderContext = CredentialsProviderContext(s.src)
	if s.scp != nil {
		ro.StreamingCredentialsProvider = s.scp
	} else {
		ro.CredentialsProviderContext = once.CredentialsProviderContext
	}
	rdb := redis.NewClient(ro)
	rdb.AddHook(InvalidateOnWrongPass(s.src))
	return &Client{Client: rdb, src: s.src, scp: s.scp, stickyOpts: &once}, nil
}

// NewClusterClient is NewClient for cluster mode: a cluster-mode-enabled
// replication group (addr = its configuration endpoint) or a serverless
// cache (addr = its endpoint; ResourceType=ServerlessCache is added to the
// tokens when the endpoint name says serverless or Options.Serverless is
// set).
func NewClusterClient(ctx context.Context, addr, cacheName, userID string, cfg aws.Config, optFns ...func(*ClientOptions)) (*ClusterClient, error) {
	s, err := prepare(ctx, addr, cacheName, userID, cfg, optFns)
	if err != nil {
		return nil, err
	}
	co := &redis.ClusterOptions{Addrs: []string{addr}, TLSConfig: s.tls, ConnMaxLifetime: s.lifetime, MaintNotificationsConfig: noMaintNotifications()}
	if s.o.Cluster != nil {
		s.o.Cluster(co)
	}
	once := *co
	once.CredentialsProviderContext = CredentialsProviderContext(s.src)
	if s.scp != nil {
		co.StreamingCredentialsProvider = s.scp
	} else {
		co.CredentialsProviderContext = once.CredentialsProviderContext
	}
	rdb := redis.NewClusterClient(co)
	hook := InvalidateOnWrongPass(s.src)
	rdb.OnNewNode(func(node *redis.Client) { node.AddHook(hook) })
	return &ClusterClient{ClusterClient: rdb, src: s.src, scp: s.scp, stickyOpts: &once}, nil
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

func prepare(ctx context.Context, addr, cacheName, userID string, cfg aws.Config, optFns []func(*ClientOptions)) (*setup, error) {
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
		to.Serverless, to.MemoryDB, to.Region = ep.Serverless, ep.MemoryDB, ep.Region
	}
	if to.Region == "" {
		to.Region = cfg.Region
	}
	to.clock = o.clock
	if o.Token != nil {
		o.Token(&to)
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
	src, err := NewTokenSource(cacheName, userID, cfg.Credentials, func(x *Options) { *x = to })
	if err != nil {
		return nil, err
	}
	s := &setup{src: src, o: o}
	if _, err := src.Token(ctx); err != nil {
		src.Close()
		return nil, fmt.Errorf("elasticacheauth: first token for %s@%s: %w", userID, src.cacheName, err)
	}
	switch {
	case o.TLSConfig != nil:
		s.tls = o.TLSConfig.Clone()
	case !o.DisableTLS:
		s.tls = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
	}
	switch {
	case o.MaxConnLifetime == 0:
		s.lifetime = 11*time.Hour + time.Duration(rand.Int64N(int64(30*time.Minute)))
	case o.MaxConnLifetime > 0:
		s.lifetime = o.MaxConnLifetime
	}
	if !o.DisableReauth {
		s.scp = NewStreamingCredentialsProvider(src, func(so *StreamingOptions) {
			so.Interval = o.ReauthInterval
			so.clock = o.clock
		})
	}
	return s, nil
}
