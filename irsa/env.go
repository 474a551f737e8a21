package irsa

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
)

// Mode is how the process gets its AWS credentials: the source the AWS
// SDK's default credential chain ends on.
type Mode int

const (
	// None: the SDK cannot build its credential chain from this
	// environment (config.LoadDefaultConfig fails; see Environment.Err), or
	// the credentials come from a provider given in code.
	None Mode = iota
	// WebIdentity: IRSA. AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, set by
	// the EKS pod identity webhook from the service account's
	// eks.amazonaws.com/role-arn annotation.
	WebIdentity
	// PodIdentity: EKS Pod Identity. AWS_CONTAINER_CREDENTIALS_FULL_URI and
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, served on the node at
	// 169.254.170.23 (or [fd00:ec2::23]).
	PodIdentity
	// EnvKeys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	EnvKeys
	// Profile: a shared config/credentials profile (keys, role_arn with
	// source_profile or credential_source, web_identity_token_file,
	// credential_process, sso, login).
	Profile
	// InstanceRole: the EC2 instance role from the metadata service — in a
	// pod, the node's role, shared by every pod on the node.
	InstanceRole
	// Container: container credentials that are not EKS Pod Identity: the
	// ECS task role (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI), or a full URI
	// without a token file on a host other than the EKS Pod Identity
	// addresses.
	Container
)

// String returns the mode's name as logged.
func (m Mode) String() string {
	switch m {
	case WebIdentity:
		return "web-identity"
	case PodIdentity:
		return "pod-identity"
	case EnvKeys:
		return "env-keys"
	case Profile:
		return "profile"
	case InstanceRole:
		return "instance-role"
	case Container:
		return "container"
	default:
		return "none"
	}
}

// PodIdentityAudience is the audience of the service-account token EKS
// projects for Pod Identity (AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE).
const PodIdentityAudience = "pods.eks.amazonaws.com"

// Environment is what the process environment and the shared config files
// say about credentials. It never holds a secret: keys are only noted as
// present.
type Environment struct {
	// Mode is the source the SDK's default chain ends on.
	Mode Mode
	// Sources is the chain of credential sources the SDK's default chain
	// builds, exactly as the resulting aws.CredentialsCache reports them in
	// ProviderSources (for example [CredentialSourceProfileSourceProfile
	// CredentialSourceProfile CredentialSourceSTSAssumeRole] for a profile
	// with role_arn and source_profile). Empty when Err is set.
	Sources []aws.CredentialSource
	// Err is set when config.LoadDefaultConfig fails for this environment
	// (a selected profile that does not exist, a malformed shared file,
	// AWS_WEB_IDENTITY_TOKEN_FILE without AWS_ROLE_ARN, a container URI
	// on a host the SDK refuses, ...). Mode is then None and Problems[0]
	// names the variable and the fix.
	Err error

	RoleARN   string // AWS_ROLE_ARN
	TokenFile string // AWS_WEB_IDENTITY_TOKEN_FILE
	// RoleSessionName is AWS_ROLE_SESSION_NAME, if set.
	RoleSessionName string
	// Region is AWS_REGION, else AWS_DEFAULT_REGION, else the selected
	// profile's region: the SDK's order.
	Region string
	// RegionSource names where Region came from (a variable, or
	// "profile NAME").
	RegionSource string
	// Profile is the shared config profile selected explicitly:
	// DetectOptions.Profile (a profile chosen in code), else AWS_PROFILE,
	// else AWS_DEFAULT_PROFILE. Empty: the SDK reads the "default"
	// profile, if there is one.
	Profile string
	// ProfileSource names where Profile came from: "AWS_PROFILE",
	// "AWS_DEFAULT_PROFILE" or "code".
	ProfileSource string
	// ProfileExists reports whether the profile the SDK reads (Profile, or
	// "default") is in the shared config or credentials file.
	ProfileExists bool
	// PodIdentityURI is AWS_CONTAINER_CREDENTIALS_FULL_URI.
	PodIdentityURI string
	// PodIdentityTokenFile is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
	PodIdentityTokenFile string
	// ContainerRelativeURI is AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS).
	ContainerRelativeURI string
	// HasEnvKeys reports an access key (AWS_ACCESS_KEY_ID or
	// AWS_ACCESS_KEY) and a secret key (AWS_SECRET_ACCESS_KEY or
	// AWS_SECRET_KEY) both set.
	HasEnvKeys bool
	// STSRegionalEndpoints is AWS_STS_REGIONAL_ENDPOINTS. aws-sdk-go-v2
	// ignores it: its STS client always calls the regional endpoint.
	STSRegionalEndpoints string
	// STSEndpoint is AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL).
	STSEndpoint string
	// InPod reports KUBERNETES_SERVICE_HOST set: the process runs in a pod.
	InPod bool
	// Problems are the misconfigurations Detect found.
	Problems []Problem
}

// UsesInstanceRole reports whether the credentials the SDK ends on come
// from the instance metadata service — in a pod, the node's role — either
// directly or as the source credentials of a profile's role.
func (e Environment) UsesInstanceRole() bool {
	return slices.Contains(e.Sources, aws.CredentialSourceIMDS)
}

// Problem is one misconfiguration Detect found.
type Problem struct {
	Var     string // the variable concerned
	Message string // what is wrong
	Fix     string // what to do
}

func (p Problem) String() string { return p.Var + ": " + p.Message + " — " + p.Fix }

// DetectOptions configure Detect. Every field has a safe zero value.
type DetectOptions struct {
	// Profile is a shared config profile chosen in code
	// (irsa.Options.Profile, config.WithSharedConfigProfile): the SDK
	// reads it before any environment source. Default: none.
	Profile string
	// LookupHost resolves a host name in AWS_CONTAINER_CREDENTIALS_FULL_URI
	// (http), which the SDK accepts only if every address is a loopback or
	// container address. Default net.LookupHost, as the SDK.
	LookupHost func(host string) ([]string, error)
}

// Detect decides which source the AWS SDK's default credential chain
// (config.LoadDefaultConfig, aws-sdk-go-v2) takes for the environment read
// through getenv (os.Getenv in production), in the SDK's order:
//
//  1. a profile chosen in code (DetectOptions.Profile);
//  2. static keys in the environment;
//  3. web identity (AWS_WEB_IDENTITY_TOKEN_FILE, with AWS_ROLE_ARN): IRSA;
//  4. the profile named by AWS_PROFILE, else AWS_DEFAULT_PROFILE, else
//     "default": its source_profile, static keys, credential_source,
//     web_identity_token_file, sso, login or credential_process;
//  5. container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI (ECS),
//     then AWS_CONTAINER_CREDENTIALS_FULL_URI (EKS Pod Identity);
//  6. the instance metadata service (IMDS) — in a pod, the node's role.
//
// A profile's role_arn then assumes a role with those credentials. A
// profile named by AWS_PROFILE (or in code) that does not exist makes the
// SDK fail; one named by AWS_DEFAULT_PROFILE is ignored.
//
// To see profiles as the SDK does, Detect reads the shared config and
// credentials files (AWS_CONFIG_FILE and AWS_SHARED_CREDENTIALS_FILE, else
// the SDK's default ~/.aws/config and ~/.aws/credentials) with the SDK's own
// loader, and, for an http AWS_CONTAINER_CREDENTIALS_FULL_URI naming a host
// rather than an address, resolves it as the SDK does. It reads no token
// and calls no AWS service. The result is checked against the SDK's own
// chain, in the same run, by the package's tests.
func Detect(getenv func(string) string, optFns ...func(*DetectOptions)) Environment {
	var o DetectOptions
	for _, fn := range optFns {
		fn(&o)
	}
	if o.LookupHost == nil {
		o.LookupHost = net.LookupHost
	}
	first := func(keys ...string) string {
		for _, k := range keys {
			if v := getenv(k); v != "" {
				return v
			}
		}
		return ""
	}
	e := Environment{
		RoleARN:              getenv("AWS_ROLE_ARN"),
		TokenFile:            getenv("AWS_WEB_IDENTITY_TOKEN_FILE"),
		RoleSessionName:      getenv("AWS_ROLE_SESSION_NAME"),
		PodIdentityURI:       getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
		PodIdentityTokenFile: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
		ContainerRelativeURI: getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
		HasEnvKeys:           first("AWS_ACCESS_KEY_ID", "AWS_ACCESS_KEY") != "" && first("AWS_SECRET_ACCESS_KEY", "AWS_SECRET_KEY") != "",
		STSRegionalEndpoints: getenv("AWS_STS_REGIONAL_ENDPOINTS"),
		STSEndpoint:          first("AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"),
		InPod:                getenv("KUBERNETES_SERVICE_HOST") != "",
	}
	if r := getenv("AWS_REGION"); r != "" {
		e.Region, e.RegionSource = r, "AWS_REGION"
	} else if r := getenv("AWS_DEFAULT_REGION"); r != "" {
		e.Region, e.RegionSource = r, "AWS_DEFAULT_REGION"
	}
	switch {
	case o.Profile != "":
		e.Profile, e.ProfileSource = o.Profile, "code"
	case getenv("AWS_PROFILE") != "":
		e.Profile, e.ProfileSource = getenv("AWS_PROFILE"), "AWS_PROFILE"
	case getenv("AWS_DEFAULT_PROFILE") != "":
		e.Profile, e.ProfileSource = getenv("AWS_DEFAULT_PROFILE"), "AWS_DEFAULT_PROFILE"
	}

	d := &detector{e: &e, getenv: getenv, lookupHost: o.LookupHost}
	d.resolve()
	d.explain()
	return e
}

type detector struct {
	e          *Environment
	getenv     func(string) string
	lookupHost func(string) ([]string, error)
	shared     config.SharedConfig
	files      []string
	// profileUsed: the chain took its credentials from the profile.
	profileUsed bool
}

func (d *detector) add(v, msg, fix string) {
	d.e.Problems = append(d.e.Problems, Problem{v, msg, fix})
}

// fail records that config.LoadDefaultConfig fails, with the problem that
// explains it.
func (d *detector) fail(err error, v, msg, fix string) {
	d.e.Err = err
	d.e.Mode = None
	d.e.Sources = nil
	d.add(v, msg, fix)
}

// resolve mirrors config.LoadDefaultConfig's loaders and
// resolveCredentialChain.
func (d *detector) resolve() {
	e := d.e
	configFiles, credsFiles := config.DefaultSharedConfigFiles, config.DefaultSharedCredentialsFiles
	if v := d.getenv("AWS_CONFIG_FILE"); v != "" {
		configFiles = []string{v}
	}
	if v := d.getenv("AWS_SHARED_CREDENTIALS_FILE"); v != "" {
		credsFiles = []string{v}
	}
	d.files = append(append([]string(nil), configFiles...), credsFiles...)
	name := e.Profile
	if name == "" {
		name = "default"
	}
	// The SDK insists on a profile named in code or by AWS_PROFILE; one
	// named by AWS_DEFAULT_PROFILE, or "default", may be missing.
	strict := e.ProfileSource == "code" || e.ProfileSource == "AWS_PROFILE"
	sc, err := config.LoadSharedConfigProfile(context.Background(), name, func(lo *config.LoadSharedConfigOptions) {
		lo.ConfigFiles = configFiles
		lo.CredentialsFiles = credsFiles
	})
	var notExist config.SharedConfigProfileNotExistError
	switch {
	case err == nil:
		e.ProfileExists = true
		d.shared = sc
	case errors.As(err, &notExist) && !strict:
		// Ignored by the SDK: an empty shared config.
	case errors.As(err, &notExist):
		d.fail(err, e.ProfileSource, fmt.Sprintf("profile %q is not in %s: the AWS SDK fails to load its configuration", name, strings.Join(d.files, " or ")),
			d.profileFix())
		return
	default:
		d.fail(err, "AWS_CONFIG_FILE", fmt.Sprintf("profile %q cannot be loaded from %s: %v", name, strings.Join(d.files, " or "), err),
			"fix the profile in the shared config or credentials file (or point AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at correct files)")
		return
	}
	if e.Region == "" && d.shared.Region != "" {
		e.Region, e.RegionSource = d.shared.Region, "profile "+name
	}

	switch {
	case e.ProfileSource == "code":
		_, err = d.profile(&d.shared, nil)
	case e.HasEnvKeys:
		e.Sources, e.Mode = []aws.CredentialSource{aws.CredentialSourceEnvVars}, EnvKeys
		return
	case e.TokenFile != "":
		if e.RoleARN == "" {
			d.fail(errors.New("role ARN is not set"), "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not: the AWS SDK fails to load its configuration",
				"set AWS_ROLE_ARN to the role to assume (the webhook copies it from the eks.amazonaws.com/role-arn annotation)")
			return
		}
		e.Sources, e.Mode = []aws.CredentialSource{aws.CredentialSourceEnvVarsSTSWebIDToken}, WebIdentity
		return
	default:
		_, err = d.profile(&d.shared, nil)
	}
	if err != nil {
		return
	}
	switch {
	case d.profileUsed:
		e.Mode = Profile
	case slices.Contains(e.Sources, aws.CredentialSourceHTTP):
		e.Mode = d.containerMode()
	default:
		e.Mode = InstanceRole
	}
}

func (d *detector) profileFix() string {
	switch d.e.ProfileSource {
	case "code":
		return "add the profile to the shared config file or pass another irsa.Options.Profile"
	default:
		if d.e.InPod {
			return "unset " + d.e.ProfileSource + " in the pod spec: profiles are for local development, the pod's role comes from its service account"
		}
		return "add the profile to ~/.aws/config (aws configure --profile " + d.e.Profile + "), or unset " + d.e.ProfileSource
	}
}

// profile mirrors config's resolveCredsFromProfile: ctx is the chain of
// sources recorded so far; it sets e.Sources to the sources of the
// provider the SDK ends with and returns the recorded chain.
func (d *detector) profile(sc *config.SharedConfig, ctx []aws.CredentialSource) ([]aws.CredentialSource, error) {
	e := d.e
	var err error
	switch {
	case sc.Source != nil:
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfileSourceProfile)
		if ctx, err = d.profile(sc.Source, ctx); err != nil {
			return ctx, err
		}
	case sc.Credentials.HasKeys():
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfile)
		e.Sources = clone(ctx)
	case sc.CredentialSource != "":
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfileNamedProvider)
		if ctx, err = d.credentialSource(sc, ctx); err != nil {
			return ctx, err
		}
	case sc.WebIdentityTokenFile != "":
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfileSTSWebIDToken)
		e.Sources = clone(ctx)
		return ctx, nil // the SDK returns here: no further role assumption
	case sc.SSOSessionName != "" || sc.SSORegion != "" || sc.SSOAccountID != "" || sc.SSOStartURL != "" || sc.SSORoleName != "":
		d.profileUsed = true
		if sc.SSORegion != "" || sc.SSOAccountID != "" || sc.SSOStartURL != "" || sc.SSORoleName != "" {
			ctx = append(ctx, aws.CredentialSourceProfileSSOLegacy, aws.CredentialSourceSSOLegacy)
		} else {
			ctx = append(ctx, aws.CredentialSourceSSO)
		}
		if sc.SSOSession != nil {
			ctx = append(ctx, aws.CredentialSourceProfileSSO)
		}
		if err := validateSSO(sc); err != nil {
			d.fail(err, "AWS_CONFIG_FILE", fmt.Sprintf("profile %q: %v", sc.Profile, err), "complete the profile's sso settings (aws configure sso)")
			return ctx, err
		}
		e.Sources = clone(ctx)
	case sc.LoginSession != "":
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfileLogin, aws.CredentialSourceLogin)
		e.Sources = clone(ctx)
	case sc.CredentialProcess != "":
		d.profileUsed = true
		ctx = append(ctx, aws.CredentialSourceProfileProcess, aws.CredentialSourceProcess)
		e.Sources = clone(ctx)
	case d.e.ContainerRelativeURI != "":
		ctx = append(ctx, aws.CredentialSourceHTTP)
		e.Sources = clone(ctx)
	case d.e.PodIdentityURI != "":
		ctx = append(ctx, aws.CredentialSourceHTTP)
		if err := d.checkFullURI(); err != nil {
			return ctx, err
		}
		e.Sources = clone(ctx)
	default:
		ctx = append(ctx, aws.CredentialSourceIMDS)
		e.Sources = clone(ctx)
	}
	if sc.RoleARN != "" {
		d.profileUsed = true
		if sc.MFASerial != "" {
			err := errors.New("assume role with MFA enabled, but AssumeRoleTokenProvider session option not set")
			d.fail(err, "AWS_CONFIG_FILE", fmt.Sprintf("profile %q assumes %s with mfa_serial: the AWS SDK fails to load its configuration without a token provider", sc.Profile, sc.RoleARN),
				"remove mfa_serial from the profile, or pass config.WithAssumeRoleCredentialOptions with a TokenProvider in irsa.Options.ConfigOptions")
			return ctx, err
		}
		e.Sources = append(clone(ctx), aws.CredentialSourceSTSAssumeRole)
	}
	return ctx, nil
}

// credentialSource mirrors config's resolveCredsFromSource.
func (d *detector) credentialSource(sc *config.SharedConfig, ctx []aws.CredentialSource) ([]aws.CredentialSource, error) {
	e := d.e
	switch sc.CredentialSource {
	case "Ec2InstanceMetadata":
		ctx = append(ctx, aws.CredentialSourceIMDS)
	case "Environment":
		ctx = append(ctx, aws.CredentialSourceHTTP) // sic: the SDK records HTTP here
	case "EcsContainer":
		ctx = append(ctx, aws.CredentialSourceHTTP)
		switch {
		case e.ContainerRelativeURI != "":
		case e.PodIdentityURI != "":
			if err := d.checkFullURI(); err != nil {
				return ctx, err
			}
		default:
			err := errors.New("EcsContainer was specified as the credential_source, but neither 'AWS_CONTAINER_CREDENTIALS_RELATIVE_URI' or AWS_CONTAINER_CREDENTIALS_FULL_URI' was set")
			d.fail(err, "AWS_CONFIG_FILE", fmt.Sprintf("profile %q has credential_source = EcsContainer but no container credentials variable is set", sc.Profile),
				"run where AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or AWS_CONTAINER_CREDENTIALS_FULL_URI is set, or change the profile's credential_source")
			return ctx, err
		}
	default:
		err := errors.New("credential_source values must be EcsContainer, Ec2InstanceMetadata, or Environment")
		d.fail(err, "AWS_CONFIG_FILE", fmt.Sprintf("profile %q has credential_source = %q", sc.Profile, sc.CredentialSource),
			"set credential_source to EcsContainer, Ec2InstanceMetadata or Environment")
		return ctx, err
	}
	e.Sources = clone(ctx)
	return ctx, nil
}

// checkFullURI mirrors config's resolveLocalHTTPCredProvider: an http URI
// must name a loopback, ECS (169.254.170.2) or EKS (169.254.170.23,
// fd00:ec2::23) address.
func (d *detector) checkFullURI() error {
	raw := d.e.PodIdentityURI
	fix := "AWS_CONTAINER_CREDENTIALS_FULL_URI must be http://169.254.170.23/v1/credentials (EKS Pod Identity, set by the EKS webhook), another loopback or container address, or an https URL"
	u, err := url.Parse(raw)
	if err != nil {
		err = fmt.Errorf("invalid URL, %w", err)
		d.fail(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI", fmt.Sprintf("%q is not a URL: the AWS SDK fails to load its configuration", raw), fix)
		return err
	}
	host := u.Hostname()
	if host == "" {
		err := errors.New("unable to parse host from local HTTP cred provider URL")
		d.fail(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI", fmt.Sprintf("%q has no host: the AWS SDK fails to load its configuration", raw), fix)
		return err
	}
	if u.Scheme != "http" {
		return nil
	}
	allowed := true
	if ip := net.ParseIP(host); ip != nil {
		allowed = containerIPAllowed(ip)
	} else {
		addrs, err := d.lookupHost(host)
		if err != nil {
			err = fmt.Errorf("failed to resolve host %q, %v", host, err)
			d.fail(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI", fmt.Sprintf("host %q of %s does not resolve: the AWS SDK fails to load its configuration", host, raw), fix)
			return err
		}
		for _, a := range addrs {
			if ip := net.ParseIP(a); ip == nil || !containerIPAllowed(ip) {
				allowed = false
			}
		}
	}
	if !allowed {
		err := fmt.Errorf("invalid endpoint host, %q, only loopback/ecs/eks hosts are allowed", host)
		d.fail(err, "AWS_CONTAINER_CREDENTIALS_FULL_URI", fmt.Sprintf("host %q of %s is not a loopback or container address: the AWS SDK refuses it", host, raw), fix)
		return err
	}
	return nil
}

var (
	ecsContainerIPv4 = net.IPv4(169, 254, 170, 2)
	eksContainerIPv4 = net.IPv4(169, 254, 170, 23)
	eksContainerIPv6 = net.ParseIP("fd00:ec2::23")
)

func containerIPAllowed(ip net.IP) bool {
	return ip.IsLoopback() || ip.Equal(ecsContainerIPv4) || ip.Equal(eksContainerIPv4) || ip.Equal(eksContainerIPv6)
}

// containerMode tells EKS Pod Identity from other container credentials.
func (d *detector) containerMode() Mode {
	e := d.e
	if e.ContainerRelativeURI != "" {
		return Container
	}
	if e.PodIdentityTokenFile != "" {
		return PodIdentity
	}
	if u, err := url.Parse(e.PodIdentityURI); err == nil {
		if ip := net.ParseIP(u.Hostname()); ip != nil && (ip.Equal(eksContainerIPv4) || ip.Equal(eksContainerIPv6)) {
			return PodIdentity
		}
	}
	return Container
}

// validateSSO mirrors the SDK's SharedConfig.validateSSOConfiguration.
func validateSSO(sc *config.SharedConfig) error {
	var missing []string
	if sc.SSOSessionName != "" {
		if sc.SSOSession == nil {
			missing = append(missing, "sso-session")
		} else {
			if sc.SSOSession.SSORegion == "" {
				missing = append(missing, "sso_region")
			}
			if sc.SSOSession.SSOStartURL == "" {
				missing = append(missing, "sso_start_url")
			}
		}
		if len(missing) > 0 {
			return fmt.Errorf("profile %q is configured to use SSO but is missing required configuration: %s", sc.Profile, strings.Join(missing, ", "))
		}
		if sc.SSORegion != "" && sc.SSORegion != sc.SSOSession.SSORegion {
			return fmt.Errorf("sso_region in profile %q must match sso_region in sso-session", sc.Profile)
		}
		if sc.SSOStartURL != "" && sc.SSOStartURL != sc.SSOSession.SSOStartURL {
			return fmt.Errorf("sso_start_url in profile %q must match sso_start_url in sso-session", sc.Profile)
		}
		return nil
	}
	for _, f := range []struct{ v, name string }{{sc.SSORegion, "sso_region"}, {sc.SSOStartURL, "sso_start_url"}, {sc.SSOAccountID, "sso_account_id"}, {sc.SSORoleName, "sso_role_name"}} {
		if f.v == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("profile %q is configured to use SSO but is missing required configuration: %s", sc.Profile, strings.Join(missing, ", "))
	}
	return nil
}

func clone(s []aws.CredentialSource) []aws.CredentialSource {
	return append([]aws.CredentialSource(nil), s...)
}

// explain adds the problems a user should hear about.
func (d *detector) explain() {
	e := d.e
	add := d.add
	webIdentity := e.RoleARN != "" && e.TokenFile != ""

	if e.RoleARN != "" && e.TokenFile == "" {
		add("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not",
			"let the EKS pod identity webhook inject both (annotate the service account with eks.amazonaws.com/role-arn and recreate the pod), or set both by hand")
	}
	if e.RoleARN != "" {
		if _, _, err := ParseRoleARN(strings.TrimSpace(e.RoleARN)); err != nil {
			add("AWS_ROLE_ARN", fmt.Sprintf("%q is not a valid IAM role ARN", e.RoleARN),
				"fix the eks.amazonaws.com/role-arn annotation: arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME")
		}
	}
	if e.TokenFile != "" && !filepath.IsAbs(strings.TrimSpace(e.TokenFile)) {
		add("AWS_WEB_IDENTITY_TOKEN_FILE", fmt.Sprintf("token path %q is relative", e.TokenFile),
			"use the absolute path of the projected token, normally /var/run/secrets/eks.amazonaws.com/serviceaccount/token")
	}
	if e.Err != nil {
		if e.Region == "" {
			add("AWS_REGION", "no region set", "set AWS_REGION (the EKS webhook sets it in pods) or pass irsa.Options.Region")
		}
		return
	}
	used := e.Mode
	if e.HasEnvKeys && used == EnvKeys && (webIdentity || e.PodIdentityURI != "") {
		add("AWS_ACCESS_KEY_ID", "static keys in the environment take precedence over IRSA/Pod Identity",
			"remove AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the pod spec so the role is used")
	}
	if e.HasEnvKeys && e.InPod {
		add("AWS_ACCESS_KEY_ID", "static access keys in a pod", "use IRSA: annotate the service account with eks.amazonaws.com/role-arn and delete the keys")
	}
	if webIdentity && e.PodIdentityURI != "" {
		winner := "IRSA (web identity) is used, because the AWS SDK's default chain reads AWS_ROLE_ARN/AWS_WEB_IDENTITY_TOKEN_FILE before container credentials"
		switch used {
		case EnvKeys:
			winner = "neither is used: the static keys in the environment come first"
		case Profile:
			winner = fmt.Sprintf("neither is used: profile %q is read first", e.Profile)
		}
		add("AWS_CONTAINER_CREDENTIALS_FULL_URI", "both IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE) and EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI) are configured: "+winner,
			"keep one: delete the pod identity association of this service account, or remove its eks.amazonaws.com/role-arn annotation; then recreate the pod")
	}
	if e.Profile != "" {
		switch {
		case !e.ProfileExists:
			add(e.ProfileSource, fmt.Sprintf("profile %q is not in %s: the AWS SDK ignores %s and uses %s", e.Profile, strings.Join(d.files, " or "), e.ProfileSource, describe(used)),
				"unset "+e.ProfileSource+" or add the profile")
		case e.InPod && d.profileUsed:
			add(e.ProfileSource, fmt.Sprintf("profile %q selected in a pod: the AWS SDK takes its credentials from the profile", e.Profile),
				"unset "+e.ProfileSource+" in the pod spec; profiles are for local development, the pod's role comes from its service account")
		case !d.profileUsed && e.ProfileSource != "code" && (used == EnvKeys || used == WebIdentity):
			if e.InPod {
				add(e.ProfileSource, fmt.Sprintf("profile %q is set but the AWS SDK takes credentials from %s first", e.Profile, describe(used)),
					"unset "+e.ProfileSource+" in the pod spec; only a profile passed in code (irsa.Options.Profile) comes before the environment")
			}
		case !d.profileUsed:
			add(e.ProfileSource, fmt.Sprintf("profile %q has no credentials: the AWS SDK goes on to %s", e.Profile, describe(used)),
				"add credentials to the profile (keys, role_arn with source_profile or credential_source, credential_process, sso) or unset "+e.ProfileSource)
		}
	}
	if e.PodIdentityURI != "" && e.PodIdentityTokenFile == "" && e.Mode == PodIdentity {
		add("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI is set without its token file",
			"let the EKS Pod Identity webhook inject both; check the pod identity association for this service account")
	}
	if e.InPod && e.UsesInstanceRole() {
		msg := "no IRSA or Pod Identity environment in this pod: the SDK would fall back to the node's instance role"
		if d.profileUsed {
			msg = fmt.Sprintf("profile %q takes its credentials from the instance metadata service: in this pod that is the node's instance role", d.shared.Profile)
		} else if e.Profile != "" && e.ProfileExists {
			msg = fmt.Sprintf("profile %q has no credentials and this pod has no IRSA or Pod Identity environment: the AWS SDK would fall back to the node's instance role", e.Profile)
		}
		add("AWS_ROLE_ARN", msg,
			"annotate the service account with eks.amazonaws.com/role-arn (or create a pod identity association) and recreate the pod")
	}
	if e.Region == "" {
		add("AWS_REGION", "no region set", "set AWS_REGION (the EKS webhook sets it in pods) or pass irsa.Options.Region")
	}
}

// describe names a mode for messages.
func describe(m Mode) string {
	switch m {
	case WebIdentity:
		return "IRSA (AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE)"
	case PodIdentity:
		return "EKS Pod Identity (AWS_CONTAINER_CREDENTIALS_FULL_URI)"
	case Container:
		return "container credentials (AWS_CONTAINER_CREDENTIALS_*)"
	case EnvKeys:
		return "the static keys in the environment"
	case Profile:
		return "a shared config profile"
	case InstanceRole:
		return "the instance metadata service (in a pod: the node's instance role)"
	default:
		return "nothing"
	}
}
