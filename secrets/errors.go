package secrets

import (
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/aws/smithy-go"
)

var (
	// ErrNotFound: the secret, or the requested version or staging label of
	// it, does not exist (Secrets Manager's ResourceNotFoundException).
	ErrNotFound = errors.New("secrets: secret not found")
	// ErrAccessDenied: the caller's IAM policies do not allow the call
	// (AccessDeniedException). See the package documentation for the
	// permissions to grant.
	ErrAccessDenied = errors.New("secrets: access denied")
	// ErrStale: refreshing a cached secret has failed for longer than
	// [Options.MaxStaleness], so the last good value is no longer served.
	ErrStale = errors.New("secrets: cached value too stale")
	// ErrBinary: [Cache.String] or [JSON] was asked for a secret that holds
	// SecretBinary; read it with [Cache.Bytes] or [Cache.Get].
	ErrBinary = errors.New("secrets: secret holds SecretBinary, not SecretString")
	// ErrClosed is returned by every method of a closed [Cache].
	ErrClosed = errors.New("secrets: cache closed")
)

// accessDeniedCode is matched by string because Secrets Manager's API model
// has no AccessDeniedException shape: the SDK surfaces it as a
// smithy.GenericAPIError.
const accessDeniedCode = "AccessDeniedException"

// Error reports a failed read of a secret. It never contains the secret's
// value. errors.Is matches it against [ErrNotFound], [ErrAccessDenied],
// [ErrStale] and [ErrBinary]; the SDK's error (a smithy.APIError such as
// *types.ResourceNotFoundException) stays reachable with errors.As.
type Error struct {
	// SecretID is the name or ARN as the caller gave it.
	SecretID string
	// VersionID and VersionStage are the requested version, if any.
	VersionID, VersionStage string
	// StaleFor is how long past its TTL the cached value was when the
	// refresh failed; zero when nothing was cached.
	StaleFor time.Duration
	// MaxStaleness is the bound in force.
	MaxStaleness time.Duration
	// ServedStale is true when the cache answered with the stale value
	// anyway; such errors reach only [Options.OnError] and
	// [Options.Logger].
	ServedStale bool
	// Err is the cause: the SDK's error, a context error, or [ErrBinary].
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("secrets: ")
	b.WriteString(strconv.Quote(e.SecretID))
	if e.VersionID != "" {
		b.WriteString(" version ")
		b.WriteString(e.VersionID)
	}
	if e.VersionStage != "" {
		b.WriteString(" stage ")
		b.WriteString(e.VersionStage)
	}
	switch {
	case e.ServedStale:
		b.WriteString(": refresh failed, serving the cached value (")
		b.WriteString(e.StaleFor.String())
		b.WriteString(" past its TTL, MaxStaleness ")
		b.WriteString(e.MaxStaleness.String())
		b.WriteString(")")
	case e.StaleFor > 0:
		b.WriteString(": refresh failed and the cached value is ")
		b.WriteString(e.StaleFor.String())
		b.WriteString(" past its TTL, beyond MaxStaleness ")
		b.WriteString(e.MaxStaleness.String())
		b.WriteString(", so it is no longer served")
	}
	if e.Err != nil {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether e is an instance of one of the package's sentinels.
func (e *Error) Is(target error) bool {
	switch target {
	case ErrNotFound:
		var nf *types.ResourceNotFoundException
		return errors.As(e.Err, &nf)
	case ErrAccessDenied:
		var ae smithy.APIError
		return errors.As(e.Err, &ae) && ae.ErrorCode() == accessDeniedCode
	case ErrStale:
		return e.StaleFor > 0 && !e.ServedStale
	}
	return false
}
