package main

import (
	"expvar"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
	"github.com/irsakit/irsakit/secrets"
)

// CacheStats are one cache's counters, as /debug/irsa and /debug/vars
// serve them. The field names are stable; irsactl doctor --json uses the
// same ones.
type CacheStats struct {
	// Entries is the number of tokens or secret versions cached (not for
	// the session's credentials).
	Entries *int `json:"entries,omitempty"`
	// Fetches counts fetches (credentials, secrets) or mints (tokens)
	// started; EarlyRefreshes those started while the cached value was
	// still served; Failures the failed ones; ServedStale the answers
	// from the cache after a refresh failed.
	Fetches        int64 `json:"fetches"`
	EarlyRefreshes int64 `json:"early_refreshes"`
	Failures       int64 `json:"failures"`
	ServedStale    int64 `json:"served_stale"`
	// LastErrorClass labels the last failure when nothing succeeded
	// since: network, timeout, throttled, access-denied, credentials, ...
	LastErrorClass string `json:"last_error_class,omitempty"`
	// LastRefresh, LastFailure and Expires are absent when zero.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	Expires     time.Time `json:"expires,omitzero"`
}

// DebugStats is the /debug/irsa body (and /debug/vars' "irsa"): the
// counters of every cache the App holds, never a credential, token or
// secret. A dependency that is not configured is absent.
type DebugStats struct {
	Mode    string      `json:"mode"`
	Session CacheStats  `json:"session"`
	DB      *CacheStats `json:"database,omitempty"`
	Cache   *CacheStats `json:"cache,omitempty"`
	Secrets *CacheStats `json:"secrets,omitempty"`
}

// Stats snapshots the counters of the App's caches: the IRSA session's
// credentials, the database's and the cache's IAM tokens, the secrets.
// Cheap and safe to call concurrently.
func (a *App) Stats() DebugStats {
	st := a.sess.Stats()
	d := DebugStats{Mode: a.sess.Mode().String(), Session: sessionStats(st)}
	if a.dbTokens != nil {
		d.DB = rdsStats(a.dbTokens.Stats())
	}
	if a.cacheTokens != nil {
		d.Cache = cacheStats(a.cacheTokens.Stats())
	}
	if a.secrets != nil {
		d.Secrets = secretsStats(a.secrets.Stats())
	}
	return d
}

func sessionStats(st irsa.Stats) CacheStats {
	return CacheStats{Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

func rdsStats(st rdsauth.Stats) *CacheStats {
	return &CacheStats{Entries: &st.Entries, Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

func cacheStats(st elasticacheauth.Stats) *CacheStats {
	return &CacheStats{Entries: &st.Entries, Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

func secretsStats(st secrets.Stats) *CacheStats {
	return &CacheStats{Entries: &st.Entries, Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

// debugIRSA serves the App's cache counters.
func (a *App) debugIRSA(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, a.Stats())
}

// expvar's registry belongs to the process and Publish panics on a name
// published twice, so "irsa" is published once and shows the App the
// router serves at the time (null before one is connected and after it
// is closed).
var (
	expvarOnce sync.Once
	expvarApp  atomic.Pointer[App]
)

func publishExpvar(a *App) {
	expvarApp.Store(a)
	expvarOnce.Do(func() {
		expvar.Publish("irsa", expvar.Func(func() any {
			if a := expvarApp.Load(); a != nil {
				return a.Stats()
			}
			return nil
		}))
	})
}

// unpublishExpvar stops /debug/vars showing a, when it still does.
func unpublishExpvar(a *App) { expvarApp.CompareAndSwap(a, nil) }
