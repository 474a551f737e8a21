package irsa

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Mode is how the process gets its AWS credentials.
type Mode int

const (
	// None: nothing in the environment says where credentials come from.
	None Mode = iota
	// WebIdentity: IRSA. AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, set by
	// the EKS pod identity webhook from the service account's
	// eks.amazonaws.com/role-arn annotation.
	WebIdentity
	// PodIdentity: EKS Pod Identity. AWS_CONTAINER_CREDENTIALS_FULL_URI and
	// AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE, served by the node's agent.
	PodIdentity
	// EnvKeys: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY.
	EnvKeys
	// Profile: a shared config/credentials profile (local development).
	Profile
	// InstanceRole: the EC2 instance role from the metadata service — in a
	// pod, the node's role, shared by every pod on the node.
	InstanceRole
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
	default:
		return "none"
	}
}

// Environment is what the process environment says about credentials.
// It never holds a secret: keys are only noted as present.
type Environment struct {
	Mode      Mode
	RoleARN   string // AWS_ROLE_ARN
	TokenFile string // AWS_WEB_IDENTITY_TOKEN_FILE
	// RoleSessionName is AWS_ROLE_SESSION_NAME, if set.
	RoleSessionName string
	// Region is AWS_REGION, else AWS_DEFAULT_REGION.
	Region string
	// RegionSource names the variable Region came from.
	RegionSource string
	Profile      string // AWS_PROFILE
	// PodIdentityURI is AWS_CONTAINER_CREDENTIALS_FULL_URI.
	PodIdentityURI string
	// PodIdentityTokenFile is AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE.
	PodIdentityTokenFile string
	// HasEnvKeys reports AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY both set.
	HasEnvKeys bool
	// STSRegionalEndpoints is AWS_STS_REGIONAL_ENDPOINTS.
	STSRegionalEndpoints string
	// STSEndpoint is AWS_ENDPOINT_URL_STS (or AWS_ENDPOINT_URL).
	STSEndpoint string
	// InPod reports KUBERNETES_SERVICE_HOST set: the process runs in a pod.
	InPod bool
	// Problems are misconfigurations visible without any I/O.
	Problems []Problem
}

// Problem is one misconfiguration Detect found.
type Problem struct {
	Var     string // the variable concerned
	Message string // what is wrong
	Fix     string // what to do
}

func (p Problem) String() string { return p.Var + ": " + p.Message + " — " + p.Fix }

// Detect reads the credential environment through getenv (os.Getenv in
// production) and decides the Mode the AWS SDK's default chain would take,
// in the SDK's order: an explicit profile, environment keys, web identity,
// pod identity, then the instance role. It does no I/O.
func Detect(getenv func(string) string) Environment {
	e := Environment{
		RoleARN:              strings.TrimSpace(getenv("AWS_ROLE_ARN")),
		TokenFile:            strings.TrimSpace(getenv("AWS_WEB_IDENTITY_TOKEN_FILE")),
		RoleSessionName:      getenv("AWS_ROLE_SESSION_NAME"),
		Profile:              getenv("AWS_PROFILE"),
		PodIdentityURI:       getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
		PodIdentityTokenFile: getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
		HasEnvKeys:           getenv("AWS_ACCESS_KEY_ID") != "" && getenv("AWS_SECRET_ACCESS_KEY") != "",
		STSRegionalEndpoints: getenv("AWS_STS_REGIONAL_ENDPOINTS"),
		InPod:                getenv("KUBERNETES_SERVICE_HOST") != "",
	}
	if v := getenv("AWS_ENDPOINT_URL_STS"); v != "" {
		e.STSEndpoint = v
	} else {
		e.STSEndpoint = getenv("AWS_ENDPOINT_URL")
	}
	if r := getenv("AWS_REGION"); r != "" {
		e.Region, e.RegionSource = r, "AWS_REGION"
	} else if r := getenv("AWS_DEFAULT_REGION"); r != "" {
		e.Region, e.RegionSource = r, "AWS_DEFAULT_REGION"
	}
	add := func(v, msg, fix string) { e.Problems = append(e.Problems, Problem{v, msg, fix}) }

	webIdentity := e.RoleARN != "" && e.TokenFile != ""
	switch {
	case e.Profile != "":
		e.Mode = Profile
	case e.HasEnvKeys:
		e.Mode = EnvKeys
	case webIdentity:
		e.Mode = WebIdentity
	case e.PodIdentityURI != "" || getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") != "":
		e.Mode = PodIdentity
	case e.InPod:
		e.Mode = InstanceRole
	default:
		e.Mode = None
	}

	if e.RoleARN != "" && e.TokenFile == "" {
		add("AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN is set but AWS_WEB_IDENTITY_TOKEN_FILE is not",
			"let the EKS pod identity webhook inject both (annotate the service account with eks.amazonaws.com/role-arn and recreate the pod), or set both by hand")
	}
	if e.TokenFile != "" && e.RoleARN == "" {
		add("AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN is not",
			"set AWS_ROLE_ARN to the role to assume (the webhook copies it from the eks.amazonaws.com/role-arn annotation)")
	}
	if e.RoleARN != "" {
		if _, _, err := ParseRoleARN(e.RoleARN); err != nil {
			add("AWS_ROLE_ARN", fmt.Sprintf("%q is not a valid IAM role ARN", e.RoleARN),
				"fix the eks.amazonaws.com/role-arn annotation: arn:aws:iam::ACCOUNT_ID:role/ROLE_NAME")
		}
	}
	if e.TokenFile != "" && !filepath.IsAbs(e.TokenFile) {
		add("AWS_WEB_IDENTITY_TOKEN_FILE", fmt.Sprintf("token path %q is relative", e.TokenFile),
			"use the absolute path of the projected token, normally /var/run/secrets/eks.amazonaws.com/serviceaccount/token")
	}
	if e.HasEnvKeys && (webIdentity || e.PodIdentityURI != "") {
		add("AWS_ACCESS_KEY_ID", "static keys in the environment take precedence over IRSA/Pod Identity",
			"remove AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY from the pod spec so the role is used")
	}
	if e.HasEnvKeys && e.InPod {
		add("AWS_ACCESS_KEY_ID", "static access keys in a pod", "use IRSA: annotate the service account with eks.amazonaws.com/role-arn and delete the keys")
	}
	if e.Profile != "" && e.InPod {
		add("AWS_PROFILE", fmt.Sprintf("profile %q selected in a pod", e.Profile),
			"unset AWS_PROFILE in the pod spec; profiles are for local development")
	}
	if e.PodIdentityURI != "" && e.PodIdentityTokenFile == "" {
		add("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "AWS_CONTAINER_CREDENTIALS_FULL_URI is set without its token file",
			"let the EKS Pod Identity webhook inject both; check the pod identity association for this service account")
	}
	if e.InPod && e.Mode == InstanceRole {
		add("AWS_ROLE_ARN", "no IRSA or Pod Identity environment in this pod: the SDK would fall back to the node's instance role",
			"annotate the service account with eks.amazonaws.com/role-arn (or create a pod identity association) and recreate the pod")
	}
	if e.Region == "" {
		add("AWS_REGION", "no region set", "set AWS_REGION (the EKS webhook sets it in pods) or pass irsa.Options.Region")
	}
	if v := e.STSRegionalEndpoints; v != "" && v != "regional" && v != "legacy" {
		add("AWS_STS_REGIONAL_ENDPOINTS", fmt.Sprintf("unknown value %q", v), "use \"regional\"")
	}
	return e
}
