// Package sigv4 is the credentials registry of the AWS stand-ins and a
// Signature Version 4 verifier written from the AWS documentation
// ("Create a signed AWS API request", "Authenticating requests: using query
// parameters"), independent of the SDK's signer. Every stand-in checks
// requests and presigned tokens with it, so a token signed with the wrong
// key, for the wrong service, region or host, or with expired credentials is
// rejected as AWS rejects it.
package sigv4

import (
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/irsakit/irsakit/internal/clock"
)

// DefaultAccount is the account id the stand-ins live in.
const DefaultAccount = "111122223333"

// Credentials are issued credentials as the registry knows them.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
	SessionToken    string // empty for long-term user keys
	// Arn is the caller identity (GetCallerIdentity's Arn): an assumed-role
	// ARN for session credentials, a user ARN for long-term keys.
	Arn     string
	UserID  string
	Account string
	// RoleARN is the IAM role whose policies apply; empty for users.
	RoleARN string
	// Expires is zero for long-term keys.
	Expires time.Time
}

// Registry records every credential a stand-in has issued. It is safe for
// concurrent use.
type Registry struct {
	clk   clock.Clock
	mu    sync.RWMutex
	byKey map[string]Credentials
}

// NewRegistry returns an empty registry using clk (nil: the system clock).
func NewRegistry(clk clock.Clock) *Registry {
	return &Registry{clk: clock.Or(clk), byKey: map[string]Credentials{}}
}

// Clock returns the registry's clock.
func (r *Registry) Clock() clock.Clock { return r.clk }

func randID(prefix string, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	s := base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b)
	return prefix + s
}

// IssueSession records new temporary credentials for roleARN (an
// arn:PARTITION:iam::ACCOUNT:role/NAME) valid for ttl.
func (r *Registry) IssueSession(roleARN, sessionName string, ttl time.Duration) (Credentials, error) {
	parts := strings.SplitN(roleARN, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[2] != "iam" || !strings.HasPrefix(parts[5], "role/") {
		return Credentials{}, fmt.Errorf("sigv4: not a role ARN: %q", roleARN)
	}
	name := parts[5][strings.LastIndex(parts[5], "/")+1:]
	roleID := randID("AROA", 12)[:21]
	c := Credentials{
		AccessKeyID:     randID("ASIA", 10)[:20],
		SecretAccessKey: randID("", 25)[:40],
		SessionToken:    randID("IQoJb3JpZ2luX2Vj", 60),
		Arn:             fmt.Sprintf("arn:%s:sts::%s:assumed-role/%s/%s", parts[1], parts[4], name, sessionName),
		UserID:          roleID + ":" + sessionName,
		Account:         parts[4],
		RoleARN:         roleARN,
		Expires:         r.clk.Now().Add(ttl).Truncate(time.Second),
	}
	r.mu.Lock()
	r.byKey[c.AccessKeyID] = c
	r.mu.Unlock()
	return c, nil
}

// AddUser records long-term keys for an IAM user of account.
func (r *Registry) AddUser(account, name string) Credentials {
	c := Credentials{
		AccessKeyID:     randID("AKIA", 10)[:20],
		SecretAccessKey: randID("", 25)[:40],
		Arn:             fmt.Sprintf("arn:aws:iam::%s:user/%s", account, name),
		UserID:          randID("AIDA", 12)[:21],
		Account:         account,
	}
	r.mu.Lock()
	r.byKey[c.AccessKeyID] = c
	r.mu.Unlock()
	return c
}

// Lookup returns the credentials issued under accessKeyID.
func (r *Registry) Lookup(accessKeyID string) (Credentials, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.byKey[accessKeyID]
	return c, ok
}

// Revoke forgets accessKeyID: later requests signed with it are refused.
func (r *Registry) Revoke(accessKeyID string) {
	r.mu.Lock()
	delete(r.byKey, accessKeyID)
	r.mu.Unlock()
}

// Len reports how many credentials have been issued and not revoked.
func (r *Registry) Len() int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return len(r.byKey)
}
