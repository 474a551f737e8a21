// Package doctor is irsactl's diagnosis as a library of checks. [Run]
// looks at the credential environment, the projected token, STS (regional
// and global endpoints) and, optionally, RDS, ElastiCache, S3 and Secrets
// Manager, and returns a [Report]: one [Check] per finding, each with a
// status, a machine-readable [Cause] when something is wrong, a detail and
// a fix, and the counters of the caches the run used ([Stats]). Nothing it
// reports holds a token, key or secret value.
package doctor

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
)

// Status is a check's outcome.
type Status string

const (
	// Pass: the check verified something and it held.
	Pass Status = "pass"
	// Warn: it works, but not the way it should.
	Warn Status = "warn"
	// Fail: it does not work.
	Fail Status = "fail"
	// Skip: not checked (the detail says why).
	Skip Status = "skip"
	// Info: a statement that verified nothing (for example the trust-policy
	// condition a token needs, before STS has judged it).
	Info Status = "info"
)

// The overall outcome of a report, Report.Status.
const (
	StatusOK   = "ok"   // no check failed or warned, and at least one passed
	StatusWarn = "warn" // no check failed; one warned, or none verified anything
	StatusFail = "fail" // a check failed
)

// Check names. They are stable: scripts may key on them. A check about an
// environment variable is named EnvCheckPrefix + the variable.
const (
	CheckCredentialMode = "credential-mode"
	CheckRegion         = "region"
	CheckTokenFile      = "token-file"
	CheckTokenClaims    = "token-claims"
	CheckTrustPolicy    = "trust-policy"
	CheckSTS            = "sts"
	CheckSTSGlobal      = "sts-global"
	CheckAssumeRole     = "assume-role"
	CheckRDS            = "rds"
	CheckElastiCache    = "elasticache"
	CheckS3             = "s3"
	CheckSecret         = "secret"
	EnvCheckPrefix      = "env:"
)

// Cause names a diagnosed problem, stable for scripts and tests.
type Cause string

// The causes doctor names.
const (
	CauseNoCredentials         Cause = "no-credentials"
	CauseNodeRole              Cause = "node-role-fallback"
	CauseEnvMisconfigured      Cause = "env-misconfigured"
	CauseNoRegion              Cause = "no-region"
	CauseStaticKeys            Cause = "static-keys"
	CauseTokenMissing          Cause = "token-missing"
	CauseTokenUnreadable       Cause = "token-unreadable"
	CauseTokenEmpty            Cause = "token-empty"
	CauseTokenMalformed        Cause = "token-malformed"
	CauseTokenExpired          Cause = "token-expired"
	CauseTokenNotYetValid      Cause = "token-not-yet-valid"
	CauseTokenAudience         Cause = "token-audience"
	CauseTokenSubject          Cause = "token-subject"
	CauseTrustPolicy           Cause = "trust-policy"          // AccessDenied on AssumeRoleWithWebIdentity
	CauseOIDCProvider          Cause = "oidc-provider-unknown" // InvalidIdentityToken: no OpenIDConnect provider
	CauseInvalidToken          Cause = "invalid-token"         // InvalidIdentityToken, other reasons
	CauseIDPCommunication      Cause = "idp-communication"
	CauseSTSUnreachable        Cause = "sts-unreachable"              // connection refused, DNS failure or timeout
	CauseSTSTLS                Cause = "sts-tls"                      // the TLS handshake with STS failed
	CauseSTSFailed             Cause = "sts-failed"                   // STS answered with another error
	CauseSTSGlobalDown         Cause = "sts-global-unreachable"       // global endpoint unreachable while the regional one works
	CauseAssumeRoleDenied      Cause = "assume-role-denied"           // sts:AssumeRole refused: trust policy, identity policy, external id
	CauseRoleChainLimit        Cause = "assume-role-chain-limit"      // a chained role's session asked for more than an hour
	CauseAssumeBaseCredentials Cause = "assume-role-base-credentials" // STS refused the credentials calling sts:AssumeRole
	CauseAssumeRoleInvalid     Cause = "assume-role-invalid"          // the role ARN or external id is malformed
	CauseAssumeRoleFailed      Cause = "assume-role-failed"           // STS answered with another error
	CauseAssumeRoleAccount     Cause = "assume-role-account-mismatch" // the assumed credentials belong to another account
	CauseRDSNoPort             Cause = "rds-endpoint-no-port"
	CauseRDSBadEndpoint        Cause = "rds-endpoint-invalid"
	CauseRDSNoTLS              Cause = "rds-iam-without-tls"
	CauseRDSUnverifiedTLS      Cause = "rds-tls-unverified" // sslmode=require: TLS that checks no certificate
	CauseRDSTLSUntrusted       Cause = "rds-tls-untrusted"  // the server's certificate did not verify
	CauseRDSAuth               Cause = "rds-auth-failed"
	CauseRDSUnreachable        Cause = "rds-unreachable"
	CauseRedisBadEndpoint      Cause = "elasticache-endpoint-invalid"
	CauseRedisTokenExpired     Cause = "elasticache-token-expired"
	CauseRedisWrongUser        Cause = "elasticache-wrong-user"
	CauseRedisWrongCache       Cause = "elasticache-wrong-cache"
	CauseRedisWrongPass        Cause = "elasticache-wrongpass"
	CauseRedisNoTLS            Cause = "elasticache-iam-without-tls"
	CauseRedisUnreachable      Cause = "elasticache-unreachable"
	CauseS3Denied              Cause = "s3-access-denied"
	CauseS3NotFound            Cause = "s3-bucket-not-found"
	CauseS3Failed              Cause = "s3-failed"
	CauseS3Unreachable         Cause = "s3-unreachable"
	CauseSecretDenied          Cause = "secret-access-denied"
	CauseSecretNotFound        Cause = "secret-not-found"
	CauseSecretFailed          Cause = "secret-failed"
	CauseSecretUnreachable     Cause = "secret-unreachable"
)

// Check is one finding.
type Check struct {
	Name   string `json:"name"`
	Status Status `json:"status"`
	Cause  Cause  `json:"cause,omitempty"`
	Detail string `json:"detail"`
	Fix    string `json:"fix,omitempty"`
	// Policy is an IAM policy document the fix refers to: the trust
	// policy a role assumed with the base credentials needs.
	Policy json.RawMessage `json:"policy,omitempty"`
}

// Report is the outcome of [Run].
type Report struct {
	// Status is the overall outcome: StatusOK, StatusWarn or StatusFail.
	Status string `json:"status"`
	// Mode is how the AWS SDK would get credentials: web-identity,
	// pod-identity, env-keys, profile, instance-role or none.
	Mode string `json:"mode"`
	// Why explains Mode.
	Why string `json:"why"`
	// Env holds the credential-related variables; secrets only as "(set)".
	Env map[string]string `json:"env"`
	// Identity is the caller ARN STS reported, if it was reached.
	Identity string  `json:"identity,omitempty"`
	Checks   []Check `json:"checks"`
	// Stats are the counters of the caches doctor used.
	Stats Stats `json:"stats"`
}

// Stats are the counters of the caches a run used: the session's
// credentials (irsa Session.Stats), the assumed role's (--assume), and the
// token sources of the database and cache probes. A cache the run did not
// use is absent. They hold no credential, token or secret.
type Stats struct {
	Session     *CacheStats `json:"session,omitempty"`
	AssumedRole *CacheStats `json:"assumed_role,omitempty"`
	RDS         *CacheStats `json:"rds,omitempty"`
	ElastiCache *CacheStats `json:"elasticache,omitempty"`
}

// CacheStats are one cache's counters. The JSON field names are stable.
type CacheStats struct {
	// Entries is the number of tokens cached (token sources only).
	Entries *int `json:"entries,omitempty"`
	// Fetches counts fetches (credentials) or mints (tokens) started.
	Fetches int64 `json:"fetches"`
	// EarlyRefreshes counts those started while the cached value was
	// still served.
	EarlyRefreshes int64 `json:"early_refreshes"`
	// Failures counts failed fetches or mints.
	Failures int64 `json:"failures"`
	// ServedStale counts answers from the cache after a refresh failed.
	ServedStale int64 `json:"served_stale"`
	// LastErrorClass labels the last failure when nothing succeeded
	// since (network, timeout, throttled, access-denied, credentials, ...).
	LastErrorClass string `json:"last_error_class,omitempty"`
	// LastRefresh, LastFailure and Expires are absent when zero.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	LastFailure time.Time `json:"last_failure,omitzero"`
	Expires     time.Time `json:"expires,omitzero"`
}

// text is the one-line account of the counters.
func (c CacheStats) text() string {
	var b strings.Builder
	if c.Entries != nil {
		fmt.Fprintf(&b, "%d cached, ", *c.Entries)
	}
	fmt.Fprintf(&b, "%d fetch(es), %d early refresh(es), %d failure(s), %d served stale", c.Fetches, c.EarlyRefreshes, c.Failures, c.ServedStale)
	if c.LastErrorClass != "" {
		fmt.Fprintf(&b, ", last error: %s", c.LastErrorClass)
	}
	for _, t := range []struct {
		name string
		at   time.Time
	}{{"last refresh", c.LastRefresh}, {"last failure", c.LastFailure}, {"expires", c.Expires}} {
		if !t.at.IsZero() {
			fmt.Fprintf(&b, "; %s %s", t.name, t.at.UTC().Format(time.RFC3339))
		}
	}
	return b.String()
}

// Failed reports whether any check failed.
func (r Report) Failed() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return true
		}
	}
	return false
}

// index returns the position of the check named name, or -1.
func (r Report) index(name string) int {
	for i, c := range r.Checks {
		if c.Name == name {
			return i
		}
	}
	return -1
}

// Check returns the check named name.
func (r Report) Check(name string) (Check, bool) {
	for _, c := range r.Checks {
		if c.Name == name {
			return c, true
		}
	}
	return Check{}, false
}

// Causes lists the causes of failed and warned checks, in order.
func (r Report) Causes() []Cause {
	var out []Cause
	for _, c := range r.Checks {
		if c.Cause != "" && (c.Status == Fail || c.Status == Warn) {
			out = append(out, c.Cause)
		}
	}
	return out
}

// HasCause reports whether a failed or warned check names cause.
func (r Report) HasCause(cause Cause) bool {
	for _, c := range r.Causes() {
		if c == cause {
			return true
		}
	}
	return false
}

func (r *Report) add(c Check) { r.Checks = append(r.Checks, c) }

// overall computes Status from the checks.
func (r Report) overall() string {
	passed, warned := false, false
	for _, c := range r.Checks {
		switch c.Status {
		case Fail:
			return StatusFail
		case Warn:
			warned = true
		case Pass:
			passed = true
		}
	}
	if warned || !passed {
		return StatusWarn
	}
	return StatusOK
}

// WriteJSON writes the report as indented JSON.
func (r Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}

var envOrder = []string{
	"AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_STS_REGIONAL_ENDPOINTS", "AWS_REGION", "AWS_DEFAULT_REGION",
	"AWS_CONTAINER_CREDENTIALS_FULL_URI", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_ROLE_SESSION_NAME",
	"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
	"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS", "KUBERNETES_SERVICE_HOST",
}

// WriteText writes the report for people.
func (r Report) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "Credential mode: %s\n  %s\n", r.Mode, r.Why)
	if r.Identity != "" {
		fmt.Fprintf(&b, "Identity: %s\n", r.Identity)
	}
	b.WriteString("\nEnvironment:\n")
	for _, k := range envOrder {
		if v, ok := r.Env[k]; ok {
			fmt.Fprintf(&b, "  %s=%s\n", k, v)
		}
	}
	b.WriteString("\nChecks:\n")
	var fails, warns int
	for _, c := range r.Checks {
		mark := map[Status]string{Pass: "[ ok ]", Warn: "[warn]", Fail: "[FAIL]", Skip: "[skip]", Info: "[info]"}[c.Status]
		fmt.Fprintf(&b, "%s %s: %s\n", mark, c.Name, c.Detail)
		problem := c.Status == Fail || c.Status == Warn
		if c.Cause != "" && problem {
			fmt.Fprintf(&b, "       cause: %s\n", c.Cause)
		}
		if c.Fix != "" && problem {
			fmt.Fprintf(&b, "       fix: %s\n", c.Fix)
		} else if c.Fix != "" {
			fmt.Fprintf(&b, "       %s\n", c.Fix)
		}
		if len(c.Policy) > 0 {
			var doc bytes.Buffer
			if json.Indent(&doc, c.Policy, "         ", "  ") == nil {
				fmt.Fprintf(&b, "       policy:\n         %s\n", strings.TrimSpace(doc.String()))
			}
		}
		switch c.Status {
		case Fail:
			fails++
		case Warn:
			warns++
		}
	}
	caches := []struct {
		name string
		st   *CacheStats
	}{
		{"session credentials", r.Stats.Session}, {"assumed role credentials", r.Stats.AssumedRole},
		{"rds tokens", r.Stats.RDS}, {"elasticache tokens", r.Stats.ElastiCache},
	}
	header := false
	for _, c := range caches {
		if c.st == nil {
			continue
		}
		if !header {
			b.WriteString("\nCaches:\n")
			header = true
		}
		fmt.Fprintf(&b, "  %s: %s\n", c.name, c.st.text())
	}
	switch r.Status {
	case StatusFail:
		fmt.Fprintf(&b, "\nResult: FAIL: %d check(s) failed, %d warning(s)\n", fails, warns)
	case StatusWarn:
		if warns == 0 {
			fmt.Fprint(&b, "\nResult: WARN: no check verified anything\n")
		} else {
			fmt.Fprintf(&b, "\nResult: WARN: %d warning(s)\n", warns)
		}
	default:
		fmt.Fprint(&b, "\nResult: OK\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}
