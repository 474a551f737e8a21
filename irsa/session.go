package irsa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

// Options configure Load. Every field has a safe zero value.
type Options struct {
	// Region overrides AWS_REGION / AWS_DEFAULT_REGION / the profile's region.
	Region string
	// Profile selects a shared config profile, for local development.
	// Default: AWS_PROFILE, if set.
	Profile string
	// RoleSessionName names the STS session (visible in CloudTrail).
	// Default: AWS_ROLE_SESSION_NAME, else the pod's host name, sanitised to
	// STS's charset and length.
	RoleSessionName string
	// Duration of assumed-role credentials, 15 min to 12 h.
	// Default: STS's default (1 h).
	Duration time.Duration
	// AllowNodeRole permits, in a pod without IRSA or Pod Identity, the node's
	// instance role. Default false: Load fails with ErrNodeRole.
	AllowNodeRole bool
	// Logger receives the one line Load logs. Default slog.Default().
	Logger *slog.Logger
	// HTTPClient for every AWS call made with the session. Default: the SDK's.
	HTTPClient aws.HTTPClient
	// ExpiryWindow: credentials are refreshed this long (minus up to half of
	// it, as jitter) before they expire, capped at half their lifetime.
	// Default 5 minutes.
	ExpiryWindow time.Duration
	// Audience the web identity token must carry. Default DefaultAudience.
	Audience string
	// ConfigOptions are passed to config.LoadDefaultConfig after irsakit's
	// own; an escape hatch.
	ConfigOptions []func(*config.LoadOptions) error
}

// Session is one credential source and aws.Config for the process: every
// client built from it shares a single aws.CredentialsCache, so one STS call
// serves the whole process per credential lifetime. Safe for concurrent use.
type Session struct {
	cfg     aws.Config
	env     Environment
	mode    Mode
	roleARN string
	sources []aws.CredentialSource
}

// Config returns a copy of the session's aws.Config, for any SDK client.
func (s *Session) Config() aws.Config { return s.cfg.Copy() }

// Credentials returns the session's (cached) credentials provider.
func (s *Session) Credentials() aws.CredentialsProvider { return s.cfg.Credentials }

// Mode reports how the session gets its credentials.
func (s *Session) Mode() Mode { return s.mode }

// Region returns the session's region.
func (s *Session) Region() string { return s.cfg.Region }

// RoleARN returns the role assumed (web identity), or "".
func (s *Session) RoleARN() string { return s.roleARN }

// Environment returns what Detect saw when the session was loaded.
func (s *Session) Environment() Environment { return s.env }

// Identity is the caller identity STS reports.
type Identity struct {
	Account string
	Arn     string
	UserID  string
}

// Identity calls STS GetCallerIdentity with the session's credentials.
func (s *Session) Identity(ctx context.Context) (Identity, error) {
	out, err := sts.NewFromConfig(s.cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("irsa: GetCallerIdentity: %w", err)
	}
	return Identity{Account: aws.ToString(out.Account), Arn: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}, nil
}

// Load detects the credential environment and builds the session.
//
// With IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE) it checks the token
// file first, so a missing, unreadable, expired or wrong-audience token is
// reported with its fix instead of as an STS error, then assumes the role
// through the SDK's STS client (AWS_ENDPOINT_URL_STS and the other standard
// settings apply). In a pod with neither IRSA nor Pod Identity it fails
// with ErrNodeRole unless Options.AllowNodeRole. Outside a pod it falls back
// to environment keys or a shared profile, for development, and says so in
// its log line.
//
// Load makes no AWS call: credentials are fetched on first use.
func Load(ctx context.Context, optFns ...func(*Options)) (*Session, error) {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.ExpiryWindow <= 0 {
		o.ExpiryWindow = 5 * time.Minute
	}
	if o.Audience == "" {
		o.Audience = DefaultAudience
	}
	if o.Duration != 0 && (o.Duration < 15*time.Minute || o.Duration > 12*time.Hour) {
		return nil, fmt.Errorf("%w: Options.Duration %s must be between 15m and 12h", ErrMisconfigured, o.Duration)
	}
	env := Detect(os.Getenv)
	mode := env.Mode
	if o.Profile != "" {
		mode = Profile
	}

	if env.InPod && mode == InstanceRole && !o.AllowNodeRole {
		return nil, fmt.Errorf("%w: this pod has no AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) nor AWS_CONTAINER_CREDENTIALS_FULL_URI (Pod Identity): "+
			"its service account lacks the eks.amazonaws.com/role-arn annotation, or the pod was created before the annotation was added (recreate it: kubectl rollout restart); "+
			"set irsa.Options.AllowNodeRole to use the node role on purpose", ErrNodeRole)
	}
	if mode == WebIdentity || (mode != Profile && mode != EnvKeys && (env.RoleARN != "" || env.TokenFile != "")) {
		for _, p := range env.Problems {
			if p.Var == "AWS_ROLE_ARN" || p.Var == "AWS_WEB_IDENTITY_TOKEN_FILE" {
				if p.Var == "AWS_ROLE_ARN" && env.InPod && env.RoleARN == "" && env.TokenFile == "" {
					continue
				}
				return nil, fmt.Errorf("%w: %s: %s — %s", ErrMisconfigured, p.Var, p.Message, p.Fix)
			}
		}
	}

	loadOpts := []func(*config.LoadOptions) error{}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	if o.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(o.HTTPClient))
	}
	if o.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(o.Profile))
	}
	sessionName := o.RoleSessionName
	if sessionName == "" {
		sessionName = env.RoleSessionName
	}
	if sessionName == "" {
		host, _ := os.Hostname()
		sessionName = SanitizeSessionName(host)
	} else if s := SanitizeSessionName(sessionName); s != sessionName {
		return nil, fmt.Errorf("%w: role session name %q: STS allows 2-64 characters of letters, digits and +=,.@_-", ErrMisconfigured, sessionName)
	}
	windowFn := func(co *aws.CredentialsCacheOptions) {
		co.ExpiryWindow = o.ExpiryWindow
		co.ExpiryWindowJitterFrac = 0.5
	}

	s := &Session{env: env, mode: mode}
	var cfg aws.Config
	var err error
	if mode == WebIdentity {
		claims, err := CheckTokenFile(env.TokenFile, TokenCheck{Audience: o.Audience})
		if err != nil {
			return nil, err
		}
		base := append([]func(*config.LoadOptions) error{config.WithCredentialsProvider(aws.AnonymousCredentials{})}, loadOpts...)
		base = append(base, o.ConfigOptions...)
		cfg, err = config.LoadDefaultConfig(ctx, base...)
		if err != nil {
			return nil, fmt.Errorf("irsa: loading AWS config: %w", err)
		}
		if cfg.Region == "" {
			return nil, noRegion()
		}
		web := stscreds.NewWebIdentityRoleProvider(sts.NewFromConfig(cfg), env.RoleARN, stscreds.IdentityTokenFile(env.TokenFile),
			func(w *stscreds.WebIdentityRoleOptions) {
				w.RoleSessionName = sessionName
				w.Duration = o.Duration
			})
		p := &resilientProvider{inner: web, roleARN: env.RoleARN, tokenFile: env.TokenFile, audience: o.Audience, claims: claims, logger: o.Logger, now: time.Now}
		cfg.Credentials = aws.NewCredentialsCache(p, windowFn)
		s.roleARN = env.RoleARN
	} else {
		opts := append(loadOpts, config.WithCredentialsCacheOptions(windowFn),
			config.WithWebIdentityRoleCredentialOptions(func(w *stscreds.WebIdentityRoleOptions) {
				w.RoleSessionName = sessionName
				w.Duration = o.Duration
			}))
		opts = append(opts, o.ConfigOptions...)
		cfg, err = config.LoadDefaultConfig(ctx, opts...)
		if err != nil {
			return nil, fmt.Errorf("irsa: loading AWS config (mode %s): %w", mode, err)
		}
		if cfg.Region == "" {
			return nil, noRegion()
		}
		if cc, ok := cfg.Credentials.(*aws.CredentialsCache); ok {
			s.sources = cc.ProviderSources()
		}
		if mode == None {
			mode = modeFromSources(s.sources)
			s.mode = mode
		}
	}
	s.cfg = cfg
	for _, p := range env.Problems {
		if p.Var == "AWS_REGION" {
			continue
		}
		o.Logger.LogAttrs(ctx, slog.LevelWarn, "irsa: credential environment problem",
			slog.String("var", p.Var), slog.String("problem", p.Message), slog.String("fix", p.Fix))
	}

	switch mode {
	case WebIdentity, PodIdentity:
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using IRSA authentication for AWS services",
			slog.String("mode", mode.String()), slog.String("role_arn", s.roleARN), slog.String("region", cfg.Region))
	case InstanceRole:
		o.Logger.LogAttrs(ctx, slog.LevelWarn, "Using the instance role for AWS services (not IRSA)",
			slog.String("mode", mode.String()), slog.String("region", cfg.Region), slog.Bool("in_pod", env.InPod))
	default:
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using local development credentials for AWS services (not IRSA)",
			slog.String("mode", mode.String()), slog.String("profile", firstNonEmpty(o.Profile, env.Profile)), slog.String("region", cfg.Region))
	}
	return s, nil
}

func noRegion() error {
	return fmt.Errorf("%w: set AWS_REGION (the EKS pod identity webhook sets it in pods), a region in the profile, or irsa.Options.Region", ErrNoRegion)
}

func firstNonEmpty(a ...string) string {
	for _, s := range a {
		if s != "" {
			return s
		}
	}
	return ""
}

func modeFromSources(src []aws.CredentialSource) Mode {
	for _, s := range src {
		switch s {
		case aws.CredentialSourceEnvVars, aws.CredentialSourceEnvVarsSTSWebIDToken:
			return EnvKeys
		case aws.CredentialSourceProfile, aws.CredentialSourceSSO, aws.CredentialSourceProfileSSO, aws.CredentialSourceProcess, aws.CredentialSourceProfileProcess:
			return Profile
		case aws.CredentialSourceHTTP:
			return PodIdentity
		case aws.CredentialSourceIMDS:
			return InstanceRole
		}
	}
	return InstanceRole
}

// SanitizeSessionName maps s to STS's role-session-name rules: characters
// [A-Za-z0-9+=,.@_-], 2 to 64 long. Others become '-'.
func SanitizeSessionName(s string) string {
	var b strings.Builder
	for _, r := range s {
		if validChars(string(r), "+=,.@_-") {
			b.WriteRune(r)
		} else {
			b.WriteByte('-')
		}
		if b.Len() >= 64 {
			break
		}
	}
	out := b.String()
	if len(out) < 2 {
		out = fmt.Sprintf("irsakit-%d", time.Now().Unix())
	}
	return out
}

// resilientProvider wraps the web identity provider: it explains failures,
// and when a refresh fails it keeps serving the last credentials until they
// really expire (aws.CredentialsCache's window would otherwise drop them
// early), then reports ErrCredentialsExpired.
type resilientProvider struct {
	inner     aws.CredentialsProvider
	roleARN   string
	tokenFile string
	audience  string
	logger    *slog.Logger
	now       func() time.Time

	mu       sync.Mutex
	claims   Claims
	last     aws.Credentials
	fallback bool
}

var (
	_ aws.CredentialsProvider                       = (*resilientProvider)(nil)
	_ aws.HandleFailRefreshCredentialsCacheStrategy = (*resilientProvider)(nil)
	_ aws.AdjustExpiresByCredentialsCacheStrategy   = (*resilientProvider)(nil)
)

func (p *resilientProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	c, err := p.inner.Retrieve(ctx)
	if err != nil {
		// Re-read the claims for the explanation: the kubelet rotates the file.
		claims, terr := CheckTokenFile(p.tokenFile, TokenCheck{Audience: p.audience, Now: p.now()})
		if terr != nil {
			return aws.Credentials{}, errors.Join(terr, explainWebIdentity(err, p.roleARN, claims))
		}
		p.mu.Lock()
		p.claims = claims
		p.mu.Unlock()
		return aws.Credentials{}, explainWebIdentity(err, p.roleARN, claims)
	}
	p.mu.Lock()
	p.last = c
	p.mu.Unlock()
	return c, nil
}

// staleRetry is how soon a refresh is retried while serving old credentials.
const staleRetry = 10 * time.Second

func (p *resilientProvider) HandleFailToRefresh(ctx context.Context, _ aws.Credentials, err error) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.now()
	if p.last.HasKeys() && p.last.CanExpire && now.Add(time.Second).Before(p.last.Expires) {
		c := p.last
		if next := now.Add(staleRetry); next.Before(c.Expires) {
			c.Expires = next
		}
		p.fallback = true
		p.logger.LogAttrs(ctx, slog.LevelWarn, "irsa: credential refresh failed; serving cached credentials until they expire",
			slog.String("role_arn", p.roleARN), slog.Time("expires", p.last.Expires), slog.String("error", err.Error()))
		return c, nil
	}
	if p.last.HasKeys() {
		return aws.Credentials{}, fmt.Errorf("%w (expired at %s): %w", ErrCredentialsExpired, p.last.Expires.UTC().Format(time.RFC3339), err)
	}
	return aws.Credentials{}, err
}

func (p *resilientProvider) AdjustExpiresBy(c aws.Credentials, d time.Duration) (aws.Credentials, error) {
	p.mu.Lock()
	fb := p.fallback
	p.fallback = false
	p.mu.Unlock()
	if fb || !c.CanExpire {
		return c, nil
	}
	if life := c.Expires.Sub(p.now()); -d > life/2 {
		d = -life / 2
	}
	c.Expires = c.Expires.Add(d)
	return c, nil
}
