package elasticacheauth_test

import (
	"context"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/internal/awstest/redisfront"
)

// warnings records the time of every warning logged through it.
type warnings struct {
	mu    sync.Mutex
	times []time.Time
}

func (w *warnings) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelWarn }
func (w *warnings) Handle(_ context.Context, r slog.Record) error {
	w.mu.Lock()
	w.times = append(w.times, r.Time)
	w.mu.Unlock()
	return nil
}
func (w *warnings) WithAttrs([]slog.Attr) slog.Handler { return w }
func (w *warnings) WithGroup(string) slog.Handler      { return w }

func (w *warnings) since(t time.Time) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
	for _, at := range w.times {
		if at.After(t) {
			n++
		}
	}
	return n
}

// namedClients returns the ids of the real server's client connections
// named name (CLIENT LIST on the server itself, behind the front).
func namedClients(t *testing.T, admin *redis.Client, name string) map[string]bool {
	t.Helper()
	list, err := admin.ClientList(context.Background()).Result()
	require.NoError(t, err)
	ids := map[string]bool{}
	for _, line := range strings.Split(list, "\n") {
		var id string
		named := false
		for _, f := range strings.Fields(line) {
			if v, ok := strings.CutPrefix(f, "id="); ok {
				id = v
			}
			if f == "name="+name {
				named = true
			}
		}
		if named {
			ids[id] = true
		}
	}
	return ids
}

// An STS outage while the credentials are still valid. The SDK's credential
// cache refreshes ahead of expiry (ExpiryWindow, commonly set through
// config.WithCredentialsCacheOptions): it reports the credentials' expiry
// that much early, and once there, with STS unreachable, it answers with an
// error although the credentials it holds are good for the whole window
// more. From then on no token can be minted and several re-authentication
// rounds in a row get none; the live pool must not notice: no command fails
// and every authenticated connection stays open. When STS is back, the
// connections are re-authenticated with a fresh token.
func TestSTSOutageKeepsAuthenticatedConnections(t *testing.T) {
	if testing.Short() {
		t.Skip("runs for about 11 s")
	}
	ctx := context.Background()
	const (
		credTTL  = 14 * time.Second
		window   = 6 * time.Second // the SDK refreshes credentials 6 s before they expire
		margin   = 2 * time.Second // tokens stop being served 2 s before they expire
		interval = 300 * time.Millisecond
		conns    = 4
	)
	env.STS.SetCredentialTTL(credTTL)
	t.Cleanup(func() {
		env.STS.SetDown(false)
		env.STS.SetCredentialTTL(time.Hour)
	})
	base, err := env.Config(ctx)
	require.NoError(t, err)
	// One attempt per refresh: the outage is seen at once, not after the
	// SDK's retry back-off.
	stsClient := sts.NewFromConfig(base, func(o *sts.Options) { o.Retryer = aws.NopRetryer{} })
	c := base.Copy()
	c.Credentials = aws.NewCredentialsCache(
		stscreds.NewWebIdentityRoleProvider(stsClient, env.RoleARN, stscreds.IdentityTokenFile(env.TokenFile)),
		func(o *aws.CredentialsCacheOptions) { o.ExpiryWindow = window })

	stsCalls := env.STS.Calls("AssumeRoleWithWebIdentity")
	front, err := redisfront.Start(standalone.Redis.Addr, redisfront.Options{
		Registry: env.Registry, IAM: env.IAM, Region: env.Region, Users: []string{userID},
		CacheName: "orders", CA: standalone.CA(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { front.Close() })
	admin := redis.NewClient(&redis.Options{Addr: standalone.Redis.Addr})
	t.Cleanup(func() { admin.Close() })

	name := "sts-outage-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	warn := &warnings{}
	rdb := newClient(t, front.Addr(), "orders", c, func(o *elasticacheauth.ClientOptions) {
		o.ReauthInterval = interval
		o.Token = func(to *elasticacheauth.Options) {
			to.Margin = margin
			to.RefreshBefore = time.Second
			to.JitterFrac = -1
			to.Logger = slog.New(warn)
		}
		o.Redis = func(ro *redis.Options) {
			ro.PoolSize = conns
			ro.ClientName = name
		}
	})
	tok, err := rdb.TokenSource().Token(ctx)
	require.NoError(t, err)
	// The token's expiry is capped by the credentials' expiry as the SDK
	// reports it: window early. They stay valid window longer.
	sdkExpiry := tok.Expires()
	credsExpire := sdkExpiry.Add(window)
	require.Less(t, time.Until(sdkExpiry), credTTL-window+time.Second, "the token outlives the credentials")

	// Open the pool's connections: conns blocking commands at once.
	var wg sync.WaitGroup
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			assert.Equal(t, redis.Nil, rdb.BLPop(ctx, 300*time.Millisecond, name+"-empty-"+strconv.Itoa(i)).Err())
		}()
	}
	wg.Wait()
	baseline := namedClients(t, admin, name)
	require.Len(t, baseline, conns, "server-side connections of the pool")

	// Commands run all along.
	var (
		stop     = make(chan struct{})
		failed   atomic.Int64
		ok       atomic.Int64
		firstErr atomic.Pointer[error]
	)
	for w := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := name + "-" + strconv.Itoa(w)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := rdb.Incr(ctx, key).Err(); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, &err)
				} else {
					ok.Add(1)
				}
				time.Sleep(2 * time.Millisecond) // pace, not synchronisation
			}
		}()
	}
	stopWorkers := func() {
		select {
		case <-stop:
		default:
			close(stop)
		}
		wg.Wait()
	}
	t.Cleanup(stopWorkers)

	// STS goes down. Tokens are minted with the cached credentials until
	// sdkExpiry; after that every round gets no token, while the credentials
	// stay valid until credsExpire.
	before := front.Stats()
	env.STS.SetDown(true)
	dead := sdkExpiry
	outage := func() bool {
		// Every connection the pool had is still open on the server.
		now := namedClients(t, admin, name)
		for id := range baseline {
			if !now[id] {
				return true // checked below, with the failure count
			}
		}
		// Rounds are timer-driven: several intervals must pass.
		return time.Now().After(dead.Add(6*interval)) && warn.since(dead) >= 5
	}
	require.Eventually(t, outage, credTTL, 20*time.Millisecond, "rounds without a token")
	t.Logf("%d warnings since the SDK declared the credentials expired", warn.since(dead))
	require.True(t, time.Now().Before(credsExpire), "the outage test ran past the credentials' expiry; the machine is too slow for it")
	during := namedClients(t, admin, name)
	for id := range baseline {
		assert.True(t, during[id], "connection %s closed during the STS outage", id)
	}
	var first error
	if e := firstErr.Load(); e != nil {
		first = *e
	}
	require.Zero(t, failed.Load(), "commands failed during the STS outage (of %d); first: %v", failed.Load()+ok.Load(), first)
	assert.Equal(t, before.AuthFailed, front.Stats().AuthFailed, "the front refused authentications")

	// STS is back (with long-lived credentials): the connections are
	// re-authenticated with a fresh token.
	env.STS.SetCredentialTTL(time.Hour)
	up := front.Stats()
	env.STS.SetDown(false)
	require.Eventually(t, func() bool {
		return front.Stats().Reauths-up.Reauths >= int64(len(baseline))
	}, 20*time.Second, 20*time.Millisecond, "re-authentications after STS came back")
	stopWorkers()
	after := namedClients(t, admin, name)
	for id := range baseline {
		assert.True(t, after[id], "connection %s closed", id)
	}
	assert.Len(t, after, len(baseline), "server-side connections after the outage")
	assert.Zero(t, failed.Load(), "commands failed")
	assert.Equal(t, before.AuthFailed, front.Stats().AuthFailed, "the front refused authentications")
	fresh, err := rdb.TokenSource().Token(ctx)
	require.NoError(t, err)
	assert.True(t, fresh.Expires().After(credsExpire), "no token from the new credentials")
	assert.Equal(t, int64(2), env.STS.Calls("AssumeRoleWithWebIdentity")-stsCalls, "STS calls answered: the first credentials and the ones after the outage")
	t.Logf("%d commands, %d connections kept, %d re-auths after recovery, %d pushes", ok.Load(), len(after),
		front.Stats().Reauths-up.Reauths, rdb.StreamingCredentialsProvider().Pushes())
}
