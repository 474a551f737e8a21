package irsa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/aws-sdk-go-v2/service/sts/types"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/redact"
)

// ChainedSessionLimit is the longest session AWS grants a role assumed with
// another role's credentials (role chaining): an AssumeRole asking for more
// is refused.
const ChainedSessionLimit = time.Hour

// AssumeRoleOptions configure [Session.AssumeRole]. Every field has a safe
// zero value.
type AssumeRoleOptions struct {
	// RoleSessionName names the assumed role's session (CloudTrail,
	// sts:RoleSessionName). Default: the base session's name
	// (Options.RoleSessionName, AWS_ROLE_SESSION_NAME or the host name).
	RoleSessionName string
	// Duration of the assumed role's credentials, 15 minutes to 1 hour
	// when the base session's credentials are a role's (IRSA, EKS Pod
	// Identity, container credentials, the instance role, an assumed
	// role): AWS limits role chaining to one hour. Up to 12 hours (the
	// role's MaxSessionDuration) on environment keys or a profile.
	// Default: one hour.
	Duration time.Duration
	// ExternalID is passed as sts:ExternalId, for a trust policy that
	// requires one (2 to 1224 characters of letters, digits and
	// +=,.@:/-). Default: none.
	ExternalID string
	// SourceIdentity is set on the session (sts:SourceIdentity, 2 to 64
	// characters of letters, digits and +=,.@-); the trust policy must
	// allow sts:SetSourceIdentity. Default: none.
	SourceIdentity string
	// Tags are session tags (aws:RequestTag/KEY, at most 50); the trust
	// policy must allow sts:TagSession. Default: none.
	Tags map[string]string
	// TransitiveTagKeys are the keys of Tags that pass on to roles assumed
	// from this one. Default: none.
	TransitiveTagKeys []string
	// ExpiryWindow: the credentials are refreshed this long (minus up to
	// half of it, as jitter) before they expire. Default: the base
	// session's (Options.ExpiryWindow).
	ExpiryWindow time.Duration
	// Logger receives the line AssumeRole logs and the refresh failures.
	// Default: the base session's (Options.Logger).
	Logger *slog.Logger
}

// AssumeRole returns a session whose credentials come from sts:AssumeRole
// on roleARN (any partition), called with this session's credentials: a
// role of another account, say, trusted by this session's role. The new
// session has its own aws.CredentialsCache — one STS call per credential
// lifetime, refreshed ahead of expiry, the cached credentials served until
// they truly expire when STS fails — and the same region, HTTP client and
// endpoints; every client built from its Config works unchanged. Its Mode
// is [AssumedRole], its RoleARN roleARN, its Base this session.
//
// AssumeRole makes no AWS call: the role is assumed on first use. It
// checks its inputs first: a malformed role ARN, a Duration above the
// one-hour limit of role chaining ([ErrRoleChainLimit]) or outside 15
// minutes to 12 hours, or a malformed ExternalID, SourceIdentity, tag or
// session name is an error naming the option and the fix. STS refusals
// surface from credential retrieval as [*CredentialError]:
// [ErrAssumeRoleDenied] (trust policy, identity policy, ExternalId, tags),
// [ErrRoleChainLimit], [ErrBaseCredentials] (this session has no
// credentials to call with), [ErrSTSUnavailable].
//
// The target role's trust policy must name this session's role in
// Principal.AWS for sts:AssumeRole ([RoleTrustPolicy] writes it), and this
// session's role needs an identity policy allowing sts:AssumeRole on
// roleARN (plus sts:TagSession with Tags, sts:SetSourceIdentity with a
// SourceIdentity).
func (s *Session) AssumeRole(roleARN string, optFns ...func(*AssumeRoleOptions)) (*Session, error) {
	o := AssumeRoleOptions{RoleSessionName: s.sessionName, ExpiryWindow: s.window, Logger: s.logger}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = 5 * time.Minute
	}
	if _, _, err := ParseRoleARN(roleARN); err != nil {
		return nil, fmt.Errorf("irsa: AssumeRole: %w", err)
	}
	if err := checkAssumeRoleOptions(&o, s.chains()); err != nil {
		return nil, err
	}
	clk := clock.Or(s.clk)
	base := s.cfg.Get().Copy()
	policy := newRetryPolicy(base, s.retryDelays)
	client := stsCredentialClient{client: sts.NewFromConfig(base), policy: policy}
	sources := append(slices.Clone(s.sources), aws.CredentialSourceSTSAssumeRole)
	provider := stscreds.NewAssumeRoleProvider(client, roleARN, func(ao *stscreds.AssumeRoleOptions) {
		ao.RoleSessionName = o.RoleSessionName
		ao.Duration = o.Duration
		if o.ExternalID != "" {
			ao.ExternalID = aws.String(o.ExternalID)
		}
		if o.SourceIdentity != "" {
			ao.SourceIdentity = aws.String(o.SourceIdentity)
		}
		for _, k := range sortedKeys(o.Tags) {
			ao.Tags = append(ao.Tags, types.Tag{Key: aws.String(k), Value: aws.String(o.Tags[k])})
		}
		ao.TransitiveTagKeys = slices.Clone(o.TransitiveTagKeys)
		ao.CredentialSources = slices.Clone(s.sources)
	})
	x := assumeExplainer{roleARN: roleARN, base: s, opts: o}
	rp := &resilientProvider{
		inner: provider, mode: AssumedRole, roleARN: roleARN, explain: x.explain, sources: sources,
		fix:    "STS did not answer while the credentials were valid: check egress to STS (or the STS VPC endpoint) and that the base session still gets credentials",
		logger: o.Logger, clk: clk,
	}
	policy.warm = rp.hasValid
	cfg := s.cfg.Get().Copy()
	cfg.Credentials = aws.NewCredentialsCache(rp, func(co *aws.CredentialsCacheOptions) {
		co.ExpiryWindow = o.ExpiryWindow
		co.ExpiryWindowJitterFrac = 0.5
	})
	chained := &Session{
		cfg: redact.Hold(&cfg), env: s.env, mode: AssumedRole, roleARN: roleARN, sources: sources, stats: &rp.stats, base: s,
		sessionName: o.RoleSessionName, logger: o.Logger, window: o.ExpiryWindow, clk: clk, retryDelays: s.retryDelays,
	}
	attrs := []slog.Attr{
		slog.String("mode", AssumedRole.String()), slog.String("role_arn", roleARN), slog.String("region", cfg.Region),
		slog.String("base_mode", s.mode.String()),
	}
	if s.roleARN != "" {
		attrs = append(attrs, slog.String("base_role_arn", s.roleARN))
	}
	o.Logger.LogAttrs(context.Background(), slog.LevelInfo, "Using an assumed role for AWS services", attrs...)
	return chained, nil
}

// chains reports whether AssumeRole on this session's credentials is role
// chaining: they are a role's.
func (s *Session) chains() bool {
	switch s.mode {
	case EnvKeys, Profile, None:
		return false
	}
	return true
}

// checkAssumeRoleOptions validates o and sets its defaults.
func checkAssumeRoleOptions(o *AssumeRoleOptions, chained bool) error {
	limit := 12 * time.Hour
	if chained {
		limit = ChainedSessionLimit
	}
	switch {
	case o.Duration == 0:
		o.Duration = time.Hour
	case o.Duration > limit && chained:
		return fmt.Errorf("%w: AssumeRoleOptions.Duration is %s; the base session's credentials are a role's, so set 1h or less (the default)", ErrRoleChainLimit, o.Duration)
	case o.Duration < 15*time.Minute || o.Duration > limit:
		return fmt.Errorf("irsa: AssumeRole: AssumeRoleOptions.Duration %s must be between 15m and %s", o.Duration, limit)
	}
	if o.RoleSessionName == "" {
		o.RoleSessionName = SanitizeSessionName("")
	} else if SanitizeSessionName(o.RoleSessionName) != o.RoleSessionName {
		return fmt.Errorf("irsa: AssumeRole: AssumeRoleOptions.RoleSessionName %q: STS allows 2-64 characters of letters, digits and +=,.@_-", o.RoleSessionName)
	}
	if o.ExternalID != "" && (len(o.ExternalID) < 2 || len(o.ExternalID) > 1224 || !validChars(o.ExternalID, "+=,.@:/-_")) {
		return fmt.Errorf("irsa: AssumeRole: AssumeRoleOptions.ExternalID must be 2-1224 characters of letters, digits and +=,.@:/-_ (the value the role's trust policy names in sts:ExternalId)")
	}
	if si := o.SourceIdentity; si != "" && (len(si) < 2 || len(si) > 64 || !validChars(si, "+=,.@-_") || strings.HasPrefix(strings.ToLower(si), "aws:")) {
		return fmt.Errorf("irsa: AssumeRole: AssumeRoleOptions.SourceIdentity %q must be 2-64 characters of letters, digits and +=,.@-_, not starting with \"aws:\"", si)
	}
	if len(o.Tags) > 50 {
		return fmt.Errorf("irsa: AssumeRole: AssumeRoleOptions.Tags has %d tags; STS accepts at most 50", len(o.Tags))
	}
	seen := map[string]string{}
	for k, v := range o.Tags {
		if k == "" || len(k) > 128 || !tagChars(k) || strings.HasPrefix(strings.ToLower(k), "aws:") {
			return fmt.Errorf("irsa: AssumeRole: tag key %q must be 1-128 letters, digits, spaces or _.:/=+-@, not starting with \"aws:\"", k)
		}
		if len(v) > 256 || !tagChars(v) {
			return fmt.Errorf("irsa: AssumeRole: the value of tag %q must be at most 256 letters, digits, spaces or _.:/=+-@", k)
		}
		if other, dup := seen[strings.ToLower(k)]; dup {
			return fmt.Errorf("irsa: AssumeRole: tag keys %q and %q differ only in case; STS compares tag keys case-insensitively", other, k)
		}
		seen[strings.ToLower(k)] = k
	}
	for _, k := range o.TransitiveTagKeys {
		if _, ok := o.Tags[k]; !ok {
			return fmt.Errorf("irsa: AssumeRole: transitive tag key %q is not a key of AssumeRoleOptions.Tags; add the tag or drop the key", k)
		}
	}
	return nil
}

// tagChars reports whether s holds only what STS allows in session tags:
// letters, digits, white space and _.:/=+-@.
func tagChars(s string) bool {
	for _, r := range s {
		if !unicode.IsLetter(r) && !unicode.IsDigit(r) && !unicode.IsSpace(r) && !strings.ContainsRune("_.:/=+-@", r) {
			return false
		}
	}
	return true
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// assumeExplainer turns AssumeRole failures into errors naming the cause
// and the fix.
type assumeExplainer struct {
	roleARN string
	base    *Session
	opts    AssumeRoleOptions
}

func (x assumeExplainer) explain(err error) error {
	if err == nil {
		return nil
	}
	var rce *aws.RequestCanceledError
	if errors.As(err, &rce) {
		return err
	}
	ce := &CredentialError{Mode: AssumedRole, RoleARN: x.roleARN, Err: err}
	baseRole := "the base session's role"
	if x.base.roleARN != "" {
		baseRole = x.base.roleARN
	}
	// The base session could not sign: its own error explains why.
	var baseErr *CredentialError
	var tfe *TokenFileError
	if errors.As(err, &baseErr) || errors.As(err, &tfe) {
		ce.Reason = ErrBaseCredentials
		ce.Fix = fmt.Sprintf("the base session (%s) has no credentials to call sts:AssumeRole with; fix it first", x.base.mode)
		return ce
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		ce.Reason = ErrSTSUnavailable
		ce.Fix = "cannot reach STS: check network egress to the regional STS endpoint or the STS interface VPC endpoint"
		return ce
	}
	ce.Code = ae.ErrorCode()
	msg := ae.ErrorMessage()
	switch ce.Code {
	case "AccessDenied":
		ce.Reason = ErrAssumeRoleDenied
		var need []string
		trust := fmt.Sprintf("the trust policy of %s must allow sts:AssumeRole for Principal.AWS %q", x.roleARN, baseRole)
		if x.opts.ExternalID != "" {
			trust += " with the sts:ExternalId this session sends"
		} else {
			trust += " (if it requires sts:ExternalId, set AssumeRoleOptions.ExternalID)"
		}
		identity := []string{"sts:AssumeRole"}
		if len(x.opts.Tags) > 0 {
			need = append(need, "sts:TagSession for the tags sent")
			identity = append(identity, "sts:TagSession")
		}
		if x.opts.SourceIdentity != "" {
			need = append(need, "sts:SetSourceIdentity for the source identity sent")
			identity = append(identity, "sts:SetSourceIdentity")
		}
		if len(need) > 0 {
			trust += " and " + strings.Join(need, " and ")
		}
		ce.Fix = fmt.Sprintf("%s (irsa.RoleTrustPolicy writes it), and the identity policy of %s must allow %s on %s",
			trust, baseRole, strings.Join(identity, ", "), x.roleARN)
	case "ValidationError":
		if strings.Contains(msg, "role chaining") {
			ce.Reason = ErrRoleChainLimit
			ce.Fix = "the base session's credentials are a role's: set AssumeRoleOptions.Duration to 1h or less"
		} else {
			ce.Reason = ErrAssumeRoleDenied
			ce.Fix = "STS refused the request's parameters: " + msg
		}
	case "ExpiredToken", "InvalidClientTokenId", "SignatureDoesNotMatch":
		ce.Reason = ErrBaseCredentials
		ce.Fix = fmt.Sprintf("STS refused the base session's (%s) credentials: they expired or were not issued by this partition's STS", x.base.mode)
	case "RegionDisabledException":
		ce.Reason = ErrSTSUnavailable
		ce.Fix = "activate STS in this region (IAM account settings) or set AWS_REGION to an enabled region"
	default:
		ce.Reason = ErrSTSUnavailable
	}
	return ce
}
