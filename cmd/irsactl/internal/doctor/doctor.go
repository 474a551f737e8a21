package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/irsakit/irsakit/elasticacheauth"
	"github.com/irsakit/irsakit/irsa"
	"github.com/irsakit/irsakit/rdsauth"
)

// DefaultGlobalSTSEndpoint is the global STS endpoint. aws-sdk-go-v2, and so
// irsakit, never calls it: its STS client always uses the regional one.
const DefaultGlobalSTSEndpoint = "https://sts.amazonaws.com"

// DefaultTimeout bounds each network check unless Options.Timeout says
// otherwise: an unreachable endpoint is reported within it.
const DefaultTimeout = 3 * time.Second

// Options configure [Run]. Every field has a usable zero value.
type Options struct {
	// Audience the token must carry. Default irsa.DefaultAudience.
	Audience string
	// Now is the clock for token expiry. Default time.Now.
	Now func() time.Time
	// ReadFile reads the token file. Default os.ReadFile; tests inject
	// failures root cannot otherwise see.
	ReadFile func(string) ([]byte, error)
	// Dial opens every network connection doctor makes: the AWS API calls
	// (STS, S3, Secrets Manager), the database and the cache. The instance
	// metadata service, contacted only when the credential chain itself
	// ends there (a pod without IRSA and AllowNodeRole), uses the SDK's own
	// dialer. Default: a net.Dialer.
	Dial func(ctx context.Context, network, addr string) (net.Conn, error)
	// GlobalSTS also probes the global STS endpoint (GlobalSTSEndpoint,
	// default DefaultGlobalSTSEndpoint) for reachability. Off by default:
	// doctor contacts only the endpoints the environment names.
	GlobalSTS         bool
	GlobalSTSEndpoint string
	// Timeout bounds each network check. Default DefaultTimeout.
	Timeout time.Duration
	// AllowNodeRole lets doctor use the node's instance role in a pod
	// without IRSA (it still reports the fallback).
	AllowNodeRole bool
	// AssumeRole, if set, checks a role assumed with the base credentials
	// (sts:AssumeRole, e.g. a role of another account) once STS accepted
	// them.
	AssumeRole *AssumeRoleProbe
	// Optional dependency probes.
	RDS    *RDSProbe
	Redis  *RedisProbe
	S3     *S3Probe
	Secret *SecretProbe

	// beforeAssume runs between the STS check and sts:AssumeRole (tests).
	beforeAssume func()
}

// state is one run's findings so far.
type state struct {
	o       Options
	env     irsa.Environment
	claims  irsa.Claims
	tokenOK bool
	hc      aws.HTTPClient // every AWS call, through o.Dial
	sess    *irsa.Session  // the session STS accepted
	loaded  *irsa.Session  // the session loaded, accepted or not
	assumed *irsa.Session  // the --assume session
	rep     Report
}

// Run diagnoses the process environment (the SDK reads the same variables)
// and returns the report. It never returns an error: every problem is a
// failed check.
func Run(ctx context.Context, optFns ...func(*Options)) Report {
	o := Options{}
	for _, fn := range optFns {
		fn(&o)
	}
	if o.Audience == "" {
		o.Audience = irsa.DefaultAudience
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.ReadFile == nil {
		o.ReadFile = os.ReadFile
	}
	if o.GlobalSTSEndpoint == "" {
		o.GlobalSTSEndpoint = DefaultGlobalSTSEndpoint
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultTimeout
	}
	if o.Dial == nil {
		o.Dial = (&net.Dialer{}).DialContext
	}
	s := &state{o: o, env: irsa.Detect(os.Getenv)}
	// A BuildableClient, so AWS_CA_BUNDLE / ca_bundle still apply. (The
	// instance metadata client replaces its dialer: it is kept off below
	// unless the credential chain itself would use it.)
	s.hc = awshttp.NewBuildableClient().
		WithTimeout(o.Timeout).
		WithTransportOptions(func(tr *http.Transport) {
			tr.DialContext = o.Dial
			tr.TLSHandshakeTimeout = o.Timeout
		})
	s.checkEnvironment()
	if s.env.Mode == irsa.WebIdentity {
		s.checkTokenFile()
	}
	s.checkSTS(ctx)
	if o.GlobalSTS {
		s.checkGlobalSTS(ctx)
	}
	if o.AssumeRole != nil {
		s.rep.add(s.checkAssumeRole(ctx, *o.AssumeRole))
	}
	if o.RDS != nil {
		s.rep.add(s.checkRDS(ctx, *o.RDS))
	}
	if o.Redis != nil {
		s.rep.add(s.checkRedis(ctx, *o.Redis))
	}
	if o.S3 != nil {
		s.rep.add(s.checkS3(ctx, *o.S3))
	}
	if o.Secret != nil {
		s.rep.add(s.checkSecret(ctx, *o.Secret))
	}
	if s.loaded != nil {
		s.rep.Stats.Session = sessionStats(s.loaded.Stats())
	}
	if s.assumed != nil {
		s.rep.Stats.AssumedRole = sessionStats(s.assumed.Stats())
	}
	s.rep.Status = s.rep.overall()
	return s.rep
}

func (s *state) checkEnvironment() {
	e := s.env
	s.rep.Mode = e.Mode.String()
	s.rep.Env = map[string]string{}
	for _, k := range envOrder {
		v, ok := os.LookupEnv(k)
		if !ok {
			continue
		}
		switch k {
		case "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_ACCESS_KEY_ID":
			v = "(set)"
		}
		s.rep.Env[k] = v
	}
	c := Check{Name: CheckCredentialMode, Status: Pass}
	switch e.Mode {
	case irsa.WebIdentity:
		s.rep.Why = "AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE are set: IRSA (injected by the EKS pod identity webhook from the service account's eks.amazonaws.com/role-arn annotation)"
		c.Detail = "IRSA web identity, role " + e.RoleARN
	case irsa.PodIdentity:
		s.rep.Why = "AWS_CONTAINER_CREDENTIALS_FULL_URI is set: EKS Pod Identity (the node's agent serves the credentials)"
		c.Detail = "EKS Pod Identity via " + e.PodIdentityURI
	case irsa.EnvKeys:
		s.rep.Why = "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are set: static keys take precedence over every role"
		c.Detail = "static access keys from the environment"
		if e.InPod {
			c.Status, c.Cause = Warn, CauseStaticKeys
			c.Fix = "use IRSA: annotate the service account with eks.amazonaws.com/role-arn and remove the keys from the pod spec"
		}
	case irsa.Profile:
		s.rep.Why = fmt.Sprintf("%s=%s selects a shared config profile (local development)", e.ProfileSource, e.Profile)
		c.Detail = "shared profile " + e.Profile
	case irsa.Container:
		s.rep.Why = "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (or a non-EKS AWS_CONTAINER_CREDENTIALS_FULL_URI) is set: container credentials"
		c.Detail = "container credentials"
	case irsa.InstanceRole:
		if !e.InPod {
			s.rep.Why = "no credential source configured (outside a pod): the SDK would ask the instance metadata service"
			c.Status, c.Cause = Warn, CauseNoCredentials
			c.Detail = "no AWS credentials configured in the environment or the shared config files"
			c.Fix = "in a pod: use a service account annotated with eks.amazonaws.com/role-arn; locally: set AWS_PROFILE, or run irsactl sandbox and export its environment"
			break
		}
		s.rep.Why = "in a pod (KUBERNETES_SERVICE_HOST set) with neither AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE nor AWS_CONTAINER_CREDENTIALS_FULL_URI: the SDK would fall back to the node's instance role"
		c.Status, c.Cause = Fail, CauseNodeRole
		c.Detail = "no IRSA or Pod Identity environment in this pod: every AWS call would use the node's instance role, shared by all pods on the node"
		c.Fix = "annotate the service account with eks.amazonaws.com/role-arn: arn:aws:iam::ACCOUNT:role/ROLE, check spec.serviceAccountName, then recreate the pod (kubectl rollout restart): pods created before the annotation are not mutated"
		if s.o.AllowNodeRole {
			c.Status = Warn
		}
	default:
		s.rep.Why = "the AWS SDK cannot build its credential chain from this environment"
		c.Status, c.Cause = Fail, CauseEnvMisconfigured
		c.Detail = "no usable credential source"
		if e.Err != nil && len(e.Problems) > 0 {
			c.Detail, c.Fix = e.Problems[0].Message, e.Problems[0].Fix
		}
	}
	s.rep.add(c)
	for _, p := range e.Problems {
		if e.Mode == irsa.InstanceRole && p.Var == "AWS_ROLE_ARN" && e.RoleARN == "" {
			continue // the node-role finding above
		}
		pc := Check{Name: EnvCheckPrefix + p.Var, Status: Fail, Cause: CauseEnvMisconfigured, Detail: p.Message, Fix: p.Fix}
		switch p.Var {
		case "AWS_REGION":
			pc.Cause = CauseNoRegion
			pc.Fix = "set AWS_REGION (the EKS pod identity webhook sets it in pods)"
		case "AWS_ACCESS_KEY_ID", "AWS_PROFILE":
			pc.Status, pc.Cause = Warn, CauseStaticKeys
		}
		s.rep.add(pc)
	}
	if e.Region != "" {
		// Only read from the environment: STS, below, is what proves it.
		s.rep.add(Check{Name: CheckRegion, Status: Info, Detail: fmt.Sprintf("%s (from %s)", e.Region, e.RegionSource)})
	}
}

func (s *state) checkTokenFile() {
	path := s.env.TokenFile
	c := Check{Name: CheckTokenFile}
	var perm string
	if fi, err := os.Stat(path); err == nil {
		perm = fmt.Sprintf("mode %s", fi.Mode().Perm())
		if st, ok := fi.Sys().(*syscall.Stat_t); ok {
			perm += fmt.Sprintf(", owner %d:%d", st.Uid, st.Gid)
		}
	}
	b, err := s.o.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		c.Status, c.Cause = Fail, CauseTokenMissing
		c.Detail = path + " does not exist"
		c.Fix = "the EKS pod identity webhook did not mount the projected token: check the service account's eks.amazonaws.com/role-arn annotation and recreate the pod"
	case errors.Is(err, fs.ErrPermission):
		c.Status, c.Cause = Fail, CauseTokenUnreadable
		c.Detail = fmt.Sprintf("%s cannot be read by uid %d gid %d: permission denied", path, os.Geteuid(), os.Getegid())
		if perm != "" {
			c.Detail += " (" + perm + ")"
		}
		c.Fix = "the container user cannot read the projected token: set spec.securityContext.fsGroup (e.g. fsGroup: 65534, or your runAsGroup) so the token volume is group-readable, and keep runAsUser non-root"
	case err != nil:
		c.Status, c.Cause = Fail, CauseTokenUnreadable
		c.Detail = fmt.Sprintf("%s: %v", path, err)
		c.Fix = "check the projected volume mount of the token (/var/run/secrets/eks.amazonaws.com/serviceaccount)"
	case strings.TrimSpace(string(b)) == "":
		c.Status, c.Cause = Fail, CauseTokenEmpty
		c.Detail = path + " is empty"
		c.Fix = "the kubelet has not written the projected token; check the pod's events"
	default:
		c.Status = Pass
		c.Detail = path + " is readable"
		if perm != "" {
			c.Detail += " (" + perm + ")"
		}
	}
	s.rep.add(c)
	if c.Status != Pass {
		return
	}
	s.checkClaims(strings.TrimSpace(string(b)))
}

func (s *state) checkClaims(tok string) {
	c := Check{Name: CheckTokenClaims, Status: Pass}
	claims, err := irsa.ParseTokenClaims(tok)
	if err != nil {
		c.Status, c.Cause = Fail, CauseTokenMalformed
		c.Detail = err.Error()
		c.Fix = "AWS_WEB_IDENTITY_TOKEN_FILE must point at the projected service-account token, normally /var/run/secrets/eks.amazonaws.com/serviceaccount/token"
		s.rep.add(c)
		return
	}
	s.claims = claims
	now := s.o.Now()
	c.Detail = fmt.Sprintf("iss=%s sub=%s aud=%s", claims.Issuer, claims.Subject, strings.Join(claims.Audience, ","))
	if !claims.Expiry.IsZero() {
		c.Detail += fmt.Sprintf(" exp=%s", claims.Expiry.Format(time.RFC3339))
		if left := claims.Expiry.Sub(now); left > 0 {
			c.Detail += fmt.Sprintf(" (%s left)", left.Round(time.Second))
		}
	}
	switch {
	case !claims.Expiry.IsZero() && !now.Before(claims.Expiry):
		c.Status, c.Cause = Fail, CauseTokenExpired
		c.Detail += fmt.Sprintf(": the token expired %s ago", now.Sub(claims.Expiry).Round(time.Second))
		c.Fix = "the kubelet rotates projected tokens before they expire: an expired file is a copy or a stale mount; mount the projected volume directly (do not copy the token into the image or a secret) and check the node's kubelet and clock"
	case !claims.NotBefore.IsZero() && now.Add(time.Minute).Before(claims.NotBefore):
		c.Status, c.Cause = Fail, CauseTokenNotYetValid
		c.Detail += fmt.Sprintf(": not valid before %s", claims.NotBefore.Format(time.RFC3339))
		c.Fix = "check this host's clock (NTP)"
	case !claims.HasAudience(s.o.Audience):
		c.Status, c.Cause = Fail, CauseTokenAudience
		c.Detail += fmt.Sprintf(": audience %q does not include %q", claims.Audience, s.o.Audience)
		c.Fix = fmt.Sprintf("the token's audience must be %s: remove a custom eks.amazonaws.com/audience annotation (or add that audience as a client ID of the IAM OIDC provider) and recreate the pod", s.o.Audience)
	default:
		if _, _, ok := claims.ServiceAccount(); !ok {
			c.Status, c.Cause = Warn, CauseTokenSubject
			c.Detail += ": sub is not system:serviceaccount:NAMESPACE:NAME"
			c.Fix = "this is not a Kubernetes service-account token; point AWS_WEB_IDENTITY_TOKEN_FILE at the projected token"
		}
	}
	s.rep.add(c)
	s.tokenOK = c.Status != Fail
	if s.tokenOK {
		s.rep.add(s.trustCondition())
	}
}

// trustCondition states the trust-policy condition this token needs. It
// verifies nothing (Info) until STS accepts the token (checkSTS).
func (s *state) trustCondition() Check {
	c := Check{Name: CheckTrustPolicy, Status: Info}
	host := strings.TrimPrefix(s.claims.Issuer, "https://")
	account := "ACCOUNT"
	partition := "aws"
	if a, _, err := irsa.ParseRoleARN(s.env.RoleARN); err == nil {
		account, partition = a.AccountID, a.Partition
	}
	provider := fmt.Sprintf("arn:%s:iam::%s:oidc-provider/%s", partition, account, host)
	c.Detail = fmt.Sprintf("the role needs Principal.Federated %s, Action sts:AssumeRoleWithWebIdentity, StringEquals %s:sub = %q and %s:aud = %q",
		provider, host, s.claims.Subject, host, s.o.Audience)
	if ns, sa, ok := s.claims.ServiceAccount(); ok {
		c.Fix = fmt.Sprintf("irsactl policy trust --oidc-provider-arn %s --namespace %s --service-account %s prints it", provider, ns, sa)
	}
	return c
}

func (s *state) checkSTS(ctx context.Context) {
	c := Check{Name: CheckSTS}
	switch s.env.Mode {
	case irsa.InstanceRole, irsa.None:
		if !s.o.AllowNodeRole || s.env.Mode == irsa.None {
			c.Status, c.Detail = Skip, "no credentials to ask STS about (the instance metadata service is not contacted)"
			s.rep.add(c)
			return
		}
	case irsa.WebIdentity:
		if !s.tokenOK {
			c.Status, c.Detail = Skip, "not asked: fix the token first (STS would refuse it)"
			s.rep.add(c)
			return
		}
	}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	sess, err := irsa.Load(ctx, func(lo *irsa.Options) {
		lo.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
		lo.AllowNodeRole = s.o.AllowNodeRole
		lo.Audience = s.o.Audience
		lo.RoleSessionName = "irsactl-doctor"
		lo.HTTPClient = s.hc
		// One attempt: a diagnosis reports the first failure as it is,
		// within the timeout, instead of retrying into it.
		lo.ConfigOptions = append(lo.ConfigOptions, config.WithRetryMaxAttempts(1))
		if s.env.Mode != irsa.InstanceRole {
			// The chain of this environment does not end at the instance
			// metadata service: never contact it.
			lo.ConfigOptions = append(lo.ConfigOptions, config.WithEC2IMDSClientEnableState(imds.ClientDisabled))
		}
	})
	if err != nil {
		c.Status, c.Cause, c.Detail = Fail, CauseEnvMisconfigured, err.Error()
		var tfe *irsa.TokenFileError
		switch {
		case errors.Is(err, irsa.ErrNoRegion):
			c.Cause, c.Detail = CauseNoRegion, "no AWS region configured"
			c.Fix = "set AWS_REGION (the EKS pod identity webhook sets it in pods)"
		case errors.Is(err, irsa.ErrNodeRole):
			c.Cause, c.Detail = CauseNodeRole, "refused: the node's instance role would be used"
		case errors.As(err, &tfe):
			c.Cause = CauseTokenUnreadable
		}
		s.rep.add(c)
		return
	}
	s.loaded = sess
	endpoint := stsEndpoint(ctx, sess.Config())
	id, err := sess.Identity(ctx)
	if err != nil {
		c.Status = Fail
		c.Cause, c.Detail, c.Fix = explainSTS(err, endpoint, s.o.Timeout)
		s.rep.add(c)
		return
	}
	s.sess = sess
	s.rep.Identity = id.Arn
	c.Status = Pass
	c.Detail = fmt.Sprintf("STS %s answered: %s (account %s)", endpoint, id.Arn, id.Account)
	if s.env.Mode == irsa.WebIdentity {
		if a, name, err := irsa.ParseRoleARN(s.env.RoleARN); err == nil && !strings.Contains(id.Arn, ":assumed-role/"+name+"/") {
			c.Status = Warn
			c.Detail += fmt.Sprintf(" — not the role %s", a)
		} else if i := s.rep.index(CheckTrustPolicy); i >= 0 {
			tp := &s.rep.Checks[i]
			tp.Status = Pass
			tp.Detail = "STS accepted this token for " + s.env.RoleARN + ": " + tp.Detail
		}
	}
	s.rep.add(c)
}

// stsEndpoint is the URL the SDK's STS client resolves for cfg: the
// endpoint doctor's STS calls go to (AWS_ENDPOINT_URL_STS when set).
func stsEndpoint(ctx context.Context, cfg aws.Config) string {
	o := sts.NewFromConfig(cfg).Options()
	params := sts.EndpointParameters{
		Region:       aws.String(o.Region),
		Endpoint:     o.BaseEndpoint,
		UseFIPS:      aws.Bool(o.EndpointOptions.UseFIPSEndpoint == aws.FIPSEndpointStateEnabled),
		UseDualStack: aws.Bool(o.EndpointOptions.UseDualStackEndpoint == aws.DualStackEndpointStateEnabled),
	}
	ep, err := o.EndpointResolverV2.ResolveEndpoint(ctx, params)
	if err != nil {
		return "(no endpoint: " + err.Error() + ")"
	}
	u := ep.URI.String()
	if o.BaseEndpoint != nil {
		u += " (AWS_ENDPOINT_URL_STS)"
	}
	return u
}

// netFailure describes a failure to reach a server: "connection refused",
// "DNS lookup of HOST failed: ...", "no answer within 3s (timeout)", or ""
// when err is not a network failure.
func netFailure(err error, timeout time.Duration) string {
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var ne net.Error
	switch {
	case errors.As(err, &dnsErr):
		reason := dnsErr.Err
		if dnsErr.IsNotFound {
			reason = "no such host"
		}
		return fmt.Sprintf("DNS failure: the name %s does not resolve (%s)", dnsErr.Name, reason)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("timeout: no answer within %s", timeout)
	case errors.Is(err, syscall.EHOSTUNREACH), errors.Is(err, syscall.ENETUNREACH):
		return "no route to the host"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "the connection was closed before an answer"
	case errors.As(err, &opErr):
		return "network error: " + opErr.Err.Error()
	}
	return ""
}

// tlsFailure describes a failed TLS handshake, or "".
func tlsFailure(err error) string {
	var uae x509.UnknownAuthorityError
	var hne x509.HostnameError
	var cie x509.CertificateInvalidError
	var rhe tls.RecordHeaderError
	var ve *tls.CertificateVerificationError
	switch {
	case errors.As(err, &uae), errors.As(err, &hne), errors.As(err, &cie), errors.As(err, &ve):
		return "TLS: the server's certificate is not trusted: " + errors.Unwrap(err).Error()
	case errors.As(err, &rhe):
		return "TLS: the server does not speak TLS (is the endpoint http://, or the port wrong?)"
	}
	return ""
}

// explainSTS maps a credential error to a cause, a detail naming the
// endpoint tried, and a fix.
func explainSTS(err error, endpoint string, timeout time.Duration) (Cause, string, string) {
	var ce *irsa.CredentialError
	fix := ""
	if errors.As(err, &ce) {
		fix = ce.Fix
	}
	code, msg := "", ""
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code, msg = ae.ErrorCode(), ae.ErrorMessage()
	}
	detail := msg
	if code != "" {
		detail = code + ": " + msg
	}
	at := "STS " + endpoint + ": "
	if code == "" {
		if nf := netFailure(err, timeout); nf != "" {
			return CauseSTSUnreachable, at + "unreachable: " + nf,
				"allow egress from the pod to this endpoint (security groups, network policies, proxy), or create an STS interface VPC endpoint with private DNS; check AWS_ENDPOINT_URL_STS if it is set"
		}
		if tf := tlsFailure(err); tf != "" {
			return CauseSTSTLS, at + tf, "check the endpoint's URL and the CA certificates in the image (a TLS-intercepting proxy needs its CA in the trust store)"
		}
		return CauseSTSFailed, at + err.Error(), fix
	}
	switch {
	case errors.Is(err, irsa.ErrTrustPolicy):
		return CauseTrustPolicy, at + "AssumeRoleWithWebIdentity refused (" + detail + "): the role's trust policy does not admit this token's sub/aud", fix
	case errors.Is(err, irsa.ErrOIDCProvider):
		return CauseOIDCProvider, at + "AssumeRoleWithWebIdentity refused (" + detail + "): the token's issuer is not an IAM OIDC provider of the role's account", fix
	case errors.Is(err, irsa.ErrTokenExpired):
		return CauseTokenExpired, at + "the token expired (" + detail + ")", fix
	case errors.Is(err, irsa.ErrInvalidToken):
		return CauseInvalidToken, at + "the token was rejected (" + detail + ")", fix
	case errors.Is(err, irsa.ErrIDPCommunication):
		return CauseIDPCommunication, at + detail, fix
	}
	return CauseSTSFailed, at + detail, fix
}

func (s *state) checkGlobalSTS(ctx context.Context) {
	c := Check{Name: CheckSTSGlobal}
	ctx, cancel := context.WithTimeout(ctx, s.o.Timeout)
	defer cancel()
	endpoint := strings.TrimRight(s.o.GlobalSTSEndpoint, "/")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/", nil)
	var probeErr error
	if err != nil {
		probeErr = err
	} else if resp, err := s.hc.Do(req); err != nil {
		probeErr = err
	} else {
		resp.Body.Close()
	}
	why := ""
	if probeErr != nil {
		if why = netFailure(probeErr, s.o.Timeout); why == "" {
			if why = tlsFailure(probeErr); why == "" {
				why = probeErr.Error()
			}
		}
	}
	stsCheck, _ := s.rep.Check(CheckSTS)
	switch {
	case probeErr == nil:
		c.Status = Pass
		c.Detail = "global endpoint " + endpoint + " reachable"
		if stsCheck.Cause == CauseSTSUnreachable {
			c.Status, c.Cause = Warn, CauseSTSUnreachable
			c.Detail += " while the regional one is not"
			c.Fix = "allow egress to sts." + s.env.Region + ".amazonaws.com or create an STS interface VPC endpoint with private DNS"
		}
	case stsCheck.Status == Pass || stsCheck.Status == Warn:
		c.Status, c.Cause = Warn, CauseSTSGlobalDown
		c.Detail = fmt.Sprintf("global endpoint %s unreachable (%s) while the regional endpoint works: irsakit (aws-sdk-go-v2) always calls the regional endpoint, so this does not affect it", endpoint, why)
		c.Fix = "nothing to do for irsakit; other tools in this pod that call sts.amazonaws.com need egress to it (private clusters reach only the regional STS VPC endpoint)"
	default:
		c.Status, c.Cause = Warn, CauseSTSGlobalDown
		c.Detail = fmt.Sprintf("global endpoint %s unreachable (%s)", endpoint, why)
	}
	s.rep.add(c)
}

// config returns the session's aws.Config for the dependency probes.
func (s *state) config() (aws.Config, bool) {
	if s.sess == nil {
		return aws.Config{}, false
	}
	return s.sess.Config(), true
}

// cliNames are the Go options the library's messages name, and the
// irsactl flags that set the same thing.
var cliNames = strings.NewReplacer(
	"Options.Region", "--region",
	"irsa.RoleTrustPolicy writes it", "irsactl policy trust --assumed-by prints it",
	"set AssumeRoleOptions.ExternalID", "pass --external-id",
	"AssumeRoleOptions.ExternalID", "--external-id",
	"irsa: AssumeRole: ", "",
)

// cliText rewrites a library message for a person at a shell: the options
// it names become irsactl's flags.
func cliText(msg string) string { return cliNames.Replace(msg) }

// sessionStats are a session's credential counters.
func sessionStats(st irsa.Stats) *CacheStats {
	return &CacheStats{Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

// rdsStats are an RDS / Aurora DSQL token source's counters.
func rdsStats(st rdsauth.Stats) *CacheStats {
	return &CacheStats{Entries: &st.Entries, Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

// elastiCacheStats are an ElastiCache token source's counters.
func elastiCacheStats(st elasticacheauth.Stats) *CacheStats {
	return &CacheStats{Entries: &st.Entries, Fetches: st.Fetches, EarlyRefreshes: st.EarlyRefreshes, Failures: st.Failures, ServedStale: st.ServedStale,
		LastErrorClass: st.LastErrorClass, LastRefresh: st.LastRefresh, LastFailure: st.LastFailure, Expires: st.Expires}
}

func skipNoCreds(name string) Check {
	return Check{Name: name, Status: Skip, Detail: "not probed: no working credentials (see the checks above)"}
}
