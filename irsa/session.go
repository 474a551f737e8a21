package irsa

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/irsakit/irsakit/internal/clock"
	"github.com/irsakit/irsakit/internal/redact"
)

// Options configure Load. Every field has a safe zero value.
type Options struct {
	// Region overrides AWS_REGION / AWS_DEFAULT_REGION / the profile's region.
	Region string
	// Profile selects a shared config profile, for local development. Like
	// config.WithSharedConfigProfile it comes before every environment
	// source (keys, IRSA, Pod Identity). Default: none; the SDK's chain then
	// reads the profile named by AWS_PROFILE or AWS_DEFAULT_PROFILE after
	// environment keys and IRSA.
	Profile string
	// RoleSessionName names the STS session (visible in CloudTrail).
	// Default: AWS_ROLE_SESSION_NAME, else the pod's host name, sanitised to
	// STS's charset and length.
	RoleSessionName string
	// Duration of assumed-role credentials, 15 min to 12 h.
	// Default: STS's default (1 h).
	Duration time.Duration
	// AllowNodeRole permits, in a pod, credentials from the instance
	// metadata service: the node's instance role. Default false: Load fails
	// with ErrNodeRole whenever the SDK's chain would end there.
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
	// StartJitter delays the session's first credential fetch by a random
	// time in [0, StartJitter). Set it for fleets that start thousands of
	// pods at once against one account's STS rate limit (about N pods ÷
	// the rate, e.g. 10 s for 2,000 pods at 200 requests/s): the first
	// fetches then arrive spread out instead of together, and nearly every
	// pod gets its credentials with one STS call. Refreshes are never
	// delayed. Default 0: the first fetch starts at once, and a throttled
	// one is retried with spread-out back-off.
	StartJitter time.Duration
	// ConfigOptions are passed to config.LoadDefaultConfig after irsakit's
	// own; an escape hatch.
	ConfigOptions []func(*config.LoadOptions) error

	// clock is the time source of token checks and of the stale-credential
	// fallback; tests inject a fake one through export_test.go.
	clock clock.Clock
	// retryDelays replaces the backoff of credential fetches; tests set it
	// through export_test.go.
	retryDelays retry.BackoffDelayer
}

// Session is one credential source and aws.Config for the process: every
// client built from it shares a single aws.CredentialsCache, so one STS call
// serves the whole process per credential lifetime. Safe for concurrent use.
type Session struct {
	// cfg is held out of every printer's reach: its ConfigSources hold
	// environment keys when the session uses them.
	cfg     redact.Held[*aws.Config]
	env     Environment
	mode    Mode
	roleARN string
	sources []aws.CredentialSource
	// stats counts the fetches of the provider irsakit wraps; nil for the
	// SDK's own providers (keys, profiles, instance role).
	stats *counters
	// base is the session an assumed role is chained on; nil for Load's.
	base *Session
	// settings chained sessions inherit.
	sessionName string
	logger      *slog.Logger
	window      time.Duration
	clk         clock.Clock
	retryDelays retry.BackoffDelayer
}

// Config returns a copy of the session's aws.Config, for any SDK client.
func (s *Session) Config() aws.Config { return s.cfg.Get().Copy() }

// Credentials returns the session's (cached) credentials provider.
func (s *Session) Credentials() aws.CredentialsProvider { return s.cfg.Get().Credentials }

// Mode reports how the session gets its credentials.
func (s *Session) Mode() Mode { return s.mode }

// Region returns the session's region.
func (s *Session) Region() string { return s.cfg.Get().Region }

// RoleARN returns the role assumed (web identity, or the target role of
// [Session.AssumeRole]), or "".
func (s *Session) RoleARN() string { return s.roleARN }

// Base returns the session whose credentials a session made by
// [Session.AssumeRole] assumes its role with, or nil.
func (s *Session) Base() *Session { return s.base }

// CredentialSources returns the chain of credential sources the SDK's
// default chain built, as aws.CredentialsCache.ProviderSources reports it
// (Environment().Sources is Detect's account of the same chain).
func (s *Session) CredentialSources() []aws.CredentialSource { return slices.Clone(s.sources) }

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
	out, err := sts.NewFromConfig(*s.cfg.Get()).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return Identity{}, fmt.Errorf("irsa: GetCallerIdentity: %w", err)
	}
	return Identity{Account: aws.ToString(out.Account), Arn: aws.ToString(out.Arn), UserID: aws.ToString(out.UserId)}, nil
}

// Load builds the session from the SDK's default credential chain
// (config.LoadDefaultConfig) and reports the source that chain ends on;
// [Detect] explains the same decision.
//
// With IRSA (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE, when nothing
// earlier in the chain wins) it checks the token file first, so a missing,
// unreadable, expired or wrong-audience token is reported with its fix
// instead of as an STS error, then assumes the role through the SDK's STS
// client (AWS_ENDPOINT_URL_STS and the other standard settings apply).
// With EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI +
// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE) it checks that token file the
// same way, then fetches credentials from the node's Pod Identity endpoint
// as the SDK does. For both, and for ECS container credentials, a failed
// refresh keeps serving the cached credentials until they expire.
//
// When the source the chain ends on is the instance metadata service in a
// pod — no IRSA or Pod Identity, a profile without credentials, a profile
// whose credential_source is Ec2InstanceMetadata — it fails with
// ErrNodeRole unless Options.AllowNodeRole. Environment keys and profiles
// are for development and are logged as such.
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
	clk := clock.Or(o.clock)
	if o.Duration != 0 && (o.Duration < 15*time.Minute || o.Duration > 12*time.Hour) {
		return nil, fmt.Errorf("%w: Options.Duration %s must be between 15m and 12h", ErrMisconfigured, o.Duration)
	}
	env := Detect(os.Getenv, func(d *DetectOptions) { d.Profile = o.Profile })

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
	webOpts := func(w *stscreds.WebIdentityRoleOptions) {
		w.RoleSessionName = sessionName
		w.Duration = o.Duration
	}
	loadOpts := []func(*config.LoadOptions) error{
		config.WithCredentialsCacheOptions(windowFn),
		config.WithWebIdentityRoleCredentialOptions(webOpts),
	}
	if o.Region != "" {
		loadOpts = append(loadOpts, config.WithRegion(o.Region))
	}
	if o.HTTPClient != nil {
		loadOpts = append(loadOpts, config.WithHTTPClient(o.HTTPClient))
	}
	if o.Profile != "" {
		loadOpts = append(loadOpts, config.WithSharedConfigProfile(o.Profile))
	}
	loadOpts = append(loadOpts, o.ConfigOptions...)

	// The SDK's own chain decides; Detect's view explains it.
	cfg, err := config.LoadDefaultConfig(ctx, loadOpts...)
	if err != nil {
		if env.Err != nil && len(env.Problems) > 0 {
			p := env.Problems[0]
			return nil, fmt.Errorf("%w: %s: %s — %s: %w", ErrMisconfigured, p.Var, p.Message, p.Fix, err)
		}
		return nil, fmt.Errorf("irsa: loading AWS config: %w", err)
	}
	var sources []aws.CredentialSource
	if src, ok := cfg.Credentials.(aws.CredentialProviderSource); ok {
		sources = src.ProviderSources()
	}
	mode := modeFromSources(sources, env)

	if env.InPod && slices.Contains(sources, aws.CredentialSourceIMDS) && !o.AllowNodeRole {
		why := "this pod has no AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE (IRSA) nor AWS_CONTAINER_CREDENTIALS_FULL_URI (Pod Identity)"
		for _, p := range env.Problems {
			if p.Var == "AWS_ROLE_ARN" && strings.Contains(p.Message, "profile") {
				why = p.Message
			}
		}
		return nil, fmt.Errorf("%w: %s: "+
			"its service account lacks the eks.amazonaws.com/role-arn annotation (or a pod identity association), or the pod was created before it was added (recreate it: kubectl rollout restart); "+
			"set irsa.Options.AllowNodeRole to use the node role on purpose", ErrNodeRole, why)
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
	if cfg.Region == "" {
		return nil, noRegion()
	}

	s := &Session{env: env, mode: mode, sources: sources, sessionName: sessionName, logger: o.Logger, window: o.ExpiryWindow, clk: clk, retryDelays: o.retryDelays}
	var podSA string
	switch mode {
	case WebIdentity:
		roleARN, tokenFile := strings.TrimSpace(env.RoleARN), strings.TrimSpace(env.TokenFile)
		claims, err := CheckTokenFile(tokenFile, TokenCheck{Audience: o.Audience, Now: clk.Now()})
		if err != nil {
			return nil, err
		}
		stsCfg := cfg.Copy()
		stsCfg.Credentials = aws.AnonymousCredentials{}
		policy := newRetryPolicy(cfg, o.retryDelays)
		client := stsCredentialClient{client: sts.NewFromConfig(stsCfg), policy: policy}
		web := stscreds.NewWebIdentityRoleProvider(client, roleARN, stscreds.IdentityTokenFile(tokenFile),
			webOpts, func(w *stscreds.WebIdentityRoleOptions) { w.CredentialSources = sources })
		w := &webIdentityExplainer{roleARN: roleARN, tokenFile: tokenFile, audience: o.Audience, clk: clk, claims: claims}
		rp := &resilientProvider{
			inner: web, mode: WebIdentity, roleARN: roleARN, explain: w.explain, sources: sources,
			fix:    "STS did not answer while the credentials were valid: check egress to STS (or the STS VPC endpoint) and the role's trust policy",
			logger: o.Logger, clk: clk, startJitter: o.StartJitter,
		}
		policy.warm = rp.hasValid
		cfg.Credentials = aws.NewCredentialsCache(rp, windowFn)
		s.roleARN, s.stats = roleARN, &rp.stats
	case PodIdentity, Container:
		endpoint := env.PodIdentityURI
		if env.ContainerRelativeURI != "" {
			endpoint = ecsContainerEndpoint + env.ContainerRelativeURI
		}
		var claims Claims
		if mode == PodIdentity && env.PodIdentityTokenFile != "" {
			if claims, err = CheckTokenFile(env.PodIdentityTokenFile, TokenCheck{Mode: PodIdentity, Now: clk.Now()}); err != nil {
				return nil, err
			}
			if ns, sa, ok := claims.ServiceAccount(); ok {
				podSA = ns + "/" + sa
			}
		}
		p := &containerExplainer{mode: mode, endpoint: endpoint, tokenFile: env.PodIdentityTokenFile, clk: clk, claims: claims}
		fix := "the ECS credentials endpoint did not answer while the credentials were valid: check the task's network and role"
		if mode == PodIdentity {
			fix = fmt.Sprintf("the EKS Pod Identity endpoint %s did not answer while the credentials were valid: check that the eks-pod-identity-agent add-on runs on this node (kubectl -n kube-system get pods -l app.kubernetes.io/name=eks-pod-identity-agent -o wide)", endpoint)
		}
		rp := &resilientProvider{
			inner: newContainerProvider(cfg, endpoint, sources), mode: mode, explain: p.explain, sources: sources,
			fix: fix, logger: o.Logger, clk: clk, startJitter: o.StartJitter,
		}
		cfg.Credentials = aws.NewCredentialsCache(rp, windowFn)
		s.stats = &rp.stats
	}
	s.cfg = redact.Hold(&cfg)
	for _, p := range env.Problems {
		if p.Var == "AWS_REGION" {
			continue
		}
		o.Logger.LogAttrs(ctx, slog.LevelWarn, "irsa: credential environment problem",
			slog.String("var", p.Var), slog.String("problem", p.Message), slog.String("fix", p.Fix))
	}

	attrs := []slog.Attr{slog.String("mode", mode.String()), slog.String("region", cfg.Region)}
	switch mode {
	case WebIdentity:
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using IRSA authentication for AWS services", append(attrs, slog.String("role_arn", s.roleARN))...)
	case PodIdentity:
		attrs = append(attrs, slog.String("endpoint", env.PodIdentityURI))
		if podSA != "" {
			attrs = append(attrs, slog.String("service_account", podSA))
		}
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using EKS Pod Identity for AWS services", attrs...)
	case Container:
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using container credentials for AWS services (not IRSA)", attrs...)
	case InstanceRole:
		o.Logger.LogAttrs(ctx, slog.LevelWarn, "Using the instance role for AWS services (not IRSA)", append(attrs, slog.Bool("in_pod", env.InPod))...)
	case EnvKeys, Profile:
		attrs = append(attrs, slog.String("profile", firstNonEmpty(o.Profile, env.Profile)))
		if env.InPod {
			o.Logger.LogAttrs(ctx, slog.LevelWarn, "Using static or profile credentials in a pod for AWS services (not IRSA)", attrs...)
		} else {
			o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using local development credentials for AWS services (not IRSA)", attrs...)
		}
	default:
		o.Logger.LogAttrs(ctx, slog.LevelInfo, "Using the credentials provider given in irsa.Options.ConfigOptions (not IRSA)", attrs...)
	}
	return s, nil
}

// ecsContainerEndpoint is where the SDK sends
// AWS_CONTAINER_CREDENTIALS_RELATIVE_URI.
const ecsContainerEndpoint = "http://169.254.170.2"

// newContainerProvider builds the container credentials provider as the
// SDK's resolveHTTPCredProvider does: AWS_CONTAINER_AUTHORIZATION_TOKEN,
// or the token file re-read on every retrieval, in the Authorization
// header.
func newContainerProvider(cfg aws.Config, endpoint string, sources []aws.CredentialSource) aws.CredentialsProvider {
	return endpointcreds.New(endpoint, func(eo *endpointcreds.Options) {
		if tok := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN"); tok != "" {
			eo.AuthorizationToken = tok
		}
		if path := os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"); path != "" {
			eo.AuthorizationTokenProvider = endpointcreds.TokenProviderFunc(func() (string, error) {
				b, err := os.ReadFile(path)
				if err != nil {
					return "", fmt.Errorf("failed to read authorization token from %v: %v", path, err)
				}
				return string(b), nil
			})
		}
		eo.APIOptions = cfg.APIOptions
		if cfg.Retryer != nil {
			eo.Retryer = cfg.Retryer()
		}
		eo.CredentialSources = sources
	})
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

// modeFromSources names the source a chain of credential sources (as
// aws.CredentialsCache.ProviderSources reports it) ends on.
func modeFromSources(src []aws.CredentialSource, env Environment) Mode {
	if len(src) == 0 {
		return None
	}
	switch src[0] {
	case aws.CredentialSourceEnvVars:
		return EnvKeys
	case aws.CredentialSourceEnvVarsSTSWebIDToken:
		return WebIdentity
	case aws.CredentialSourceHTTP:
		if env.Mode == PodIdentity || env.Mode == Container {
			return env.Mode
		}
		if env.ContainerRelativeURI != "" {
			return Container
		}
		return PodIdentity
	case aws.CredentialSourceIMDS:
		return InstanceRole
	case aws.CredentialSourceProfile, aws.CredentialSourceProfileSourceProfile, aws.CredentialSourceProfileNamedProvider,
		aws.CredentialSourceProfileSTSWebIDToken, aws.CredentialSourceProfileSSO, aws.CredentialSourceSSO,
		aws.CredentialSourceProfileSSOLegacy, aws.CredentialSourceSSOLegacy, aws.CredentialSourceProfileProcess,
		aws.CredentialSourceProcess, aws.CredentialSourceProfileLogin, aws.CredentialSourceLogin:
		return Profile
	}
	return None
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

// resilientProvider wraps a refreshing credentials provider (web identity,
// EKS Pod Identity, ECS container credentials, an assumed role): it
// explains failures, and when a refresh fails it keeps serving the last
// credentials until they really expire (aws.CredentialsCache's window would
// otherwise drop them early), then reports ErrCredentialsExpired naming the
// source and the fix. It counts fetches for Stats and logs each failure
// (Warn) and the first success after failures (Info), with the error's
// class and message but never a credential or token.
type resilientProvider struct {
	inner   aws.CredentialsProvider
	mode    Mode
	roleARN string
	// explain turns a failed retrieval into an error naming the cause.
	explain func(error) error
	// fix is what to do when the credentials expired unrefreshed.
	fix     string
	sources []aws.CredentialSource
	logger  *slog.Logger
	clk     clock.Clock
	// startJitter bounds the random delay of the first fetch
	// (Options.StartJitter).
	startJitter time.Duration

	stats   counters
	started atomic.Bool // a fetch has been made

	mu       sync.Mutex
	last     aws.Credentials
	fallback bool
}

var (
	_ aws.CredentialsProvider                       = (*resilientProvider)(nil)
	_ aws.CredentialProviderSource                  = (*resilientProvider)(nil)
	_ aws.HandleFailRefreshCredentialsCacheStrategy = (*resilientProvider)(nil)
	_ aws.AdjustExpiresByCredentialsCacheStrategy   = (*resilientProvider)(nil)
)

func (p *resilientProvider) Retrieve(ctx context.Context) (aws.Credentials, error) {
	if !p.started.Swap(true) && p.startJitter > 0 {
		if err := p.sleep(ctx, time.Duration(rand.Int64N(int64(p.startJitter)))); err != nil {
			p.started.Store(false)
			return aws.Credentials{}, fmt.Errorf("irsa: waiting out Options.StartJitter before the first credential fetch: %w", err)
		}
	}
	p.stats.fetches.Add(1)
	if p.hasValid() {
		p.stats.early.Add(1)
	}
	c, err := p.inner.Retrieve(ctx)
	if err != nil {
		err = p.explain(err)
		p.stats.failed(p.clk.Now(), err)
		return aws.Credentials{}, err
	}
	p.mu.Lock()
	p.last = c
	p.mu.Unlock()
	var expires time.Time
	if c.CanExpire {
		expires = c.Expires
	}
	if n := p.stats.succeeded(p.clk.Now(), expires); n > 0 {
		p.logger.LogAttrs(ctx, slog.LevelInfo, "irsa: credential refresh works again", append(p.attrs(), slog.Int("failures", n))...)
	}
	return c, nil
}

// hasValid reports whether the last credentials fetched are still valid.
func (p *resilientProvider) hasValid() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last.HasKeys() && (!p.last.CanExpire || p.clk.Now().Before(p.last.Expires))
}

// attrs name the source in log lines.
func (p *resilientProvider) attrs() []slog.Attr {
	attrs := []slog.Attr{slog.String("mode", p.mode.String())}
	if p.roleARN != "" {
		attrs = append(attrs, slog.String("role_arn", p.roleARN))
	}
	return attrs
}

// ProviderSources reports the SDK's chain of sources for this provider.
func (p *resilientProvider) ProviderSources() []aws.CredentialSource { return p.sources }

// sleep waits d on the provider's clock, or until ctx ends.
func (p *resilientProvider) sleep(ctx context.Context, d time.Duration) error {
	done := make(chan struct{})
	t := p.clk.AfterFunc(d, func() { close(done) })
	defer t.Stop()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// While a refresh fails and cached credentials are still valid, the next
// refresh is tried after staleRetry, doubling with each failure in a row
// up to maxStaleRetry, at a random point in the second half of that
// interval: a fleet waiting out an STS outage sends a trickle of retries,
// spread out, instead of every pod every few seconds.
const (
	staleRetry    = 10 * time.Second
	maxStaleRetry = 2 * time.Minute
)

// staleRetryAfter is the pause before the next refresh after the n-th
// failure in a row.
func staleRetryAfter(n int) time.Duration {
	d := staleRetry
	for i := 1; i < n && d < maxStaleRetry; i++ {
		d *= 2
	}
	d = min(d, maxStaleRetry)
	return d/2 + time.Duration(rand.Int64N(int64(d/2)+1))
}

func (p *resilientProvider) HandleFailToRefresh(ctx context.Context, _ aws.Credentials, err error) (aws.Credentials, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.clk.Now()
	attrs := append(p.attrs(), slog.String("error_class", classify(err)), slog.Int("failures", p.stats.inARow()), slog.String("error", err.Error()))
	if p.last.HasKeys() && p.last.CanExpire && now.Add(time.Second).Before(p.last.Expires) {
		c := p.last
		if next := now.Add(staleRetryAfter(p.stats.inARow())); next.Before(c.Expires) {
			c.Expires = next
		}
		p.fallback = true
		p.stats.servedStale.Add(1)
		p.logger.LogAttrs(ctx, slog.LevelWarn, "irsa: credential refresh failed; serving cached credentials until they expire", append(attrs, slog.Time("expires", p.last.Expires))...)
		return c, nil
	}
	if p.last.HasKeys() {
		p.logger.LogAttrs(ctx, slog.LevelWarn, "irsa: credential refresh failed and the cached credentials expired", append(attrs, slog.Time("expired", p.last.Expires))...)
		return aws.Credentials{}, &CredentialError{Mode: p.mode, RoleARN: p.roleARN, Reason: ErrCredentialsExpired,
			Fix: fmt.Sprintf("the cached credentials expired at %s; %s", p.last.Expires.UTC().Format(time.RFC3339), p.fix), Err: err}
	}
	p.logger.LogAttrs(ctx, slog.LevelWarn, "irsa: fetching credentials failed", attrs...)
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
	if life := c.Expires.Sub(p.clk.Now()); -d > life/2 {
		d = -life / 2
	}
	c.Expires = c.Expires.Add(d)
	return c, nil
}

// webIdentityExplainer explains AssumeRoleWithWebIdentity failures with the
// token's current claims (the kubelet rotates the file).
type webIdentityExplainer struct {
	roleARN, tokenFile, audience string
	clk                          clock.Clock

	mu     sync.Mutex
	claims Claims
}

func (w *webIdentityExplainer) explain(err error) error {
	claims, terr := CheckTokenFile(w.tokenFile, TokenCheck{Audience: w.audience, Now: w.clk.Now()})
	if terr != nil {
		return errors.Join(terr, explainWebIdentity(err, w.roleARN, claims))
	}
	w.mu.Lock()
	w.claims = claims
	w.mu.Unlock()
	return explainWebIdentity(err, w.roleARN, claims)
}

// containerExplainer explains failures of the container credentials
// endpoint (EKS Pod Identity, ECS).
type containerExplainer struct {
	mode      Mode
	endpoint  string
	tokenFile string
	clk       clock.Clock

	mu     sync.Mutex
	claims Claims
}

func (c *containerExplainer) explain(err error) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.mode == PodIdentity && c.tokenFile != "" {
		claims, terr := CheckTokenFile(c.tokenFile, TokenCheck{Mode: PodIdentity, Now: c.clk.Now()})
		if terr != nil {
			return errors.Join(terr, explainContainer(err, c.mode, c.endpoint, c.claims))
		}
		c.claims = claims
	}
	return explainContainer(err, c.mode, c.endpoint, c.claims)
}
