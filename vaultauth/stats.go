package vaultauth

import "time"

// Stats describes a TokenSource's token cache, for operators: how often it
// logs in or renews, whether it refreshes ahead of the lease's end, and
// whether it had to keep serving a token because a refresh failed. It
// holds no token.
type Stats struct {
	// Entries is the number of tokens held (0 or 1).
	Entries int
	// Fetches counts refreshes started (logins and renewals).
	Fetches int64
	// EarlyRefreshes counts the refreshes that started ahead of the end of
	// serving, while the token was still being handed out.
	EarlyRefreshes int64
	// Failures counts failed refreshes.
	Failures int64
	// ServedStale counts Token calls answered with the current token after
	// its refresh failed (the token was still valid).
	ServedStale int64
	// LastRefresh is when the last refresh succeeded; zero if none.
	LastRefresh time.Time
	// LastFailure is when a refresh last failed; zero if none.
	LastFailure time.Time
	// LastErrorClass labels the last failure when no refresh has succeeded
	// since: "network", "timeout" or "other" (Vault's refusals); "" otherwise.
	LastErrorClass string
	// Expires is when the current token stops being handed out (its
	// lease's end less the margin); zero when none is held.
	Expires time.Time
}
