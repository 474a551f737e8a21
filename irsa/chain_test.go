package irsa_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/credentials/ec2rolecreds"
	"github.com/aws/aws-sdk-go-v2/credentials/endpointcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/logincreds"
	"github.com/aws/aws-sdk-go-v2/credentials/processcreds"
	"github.com/aws/aws-sdk-go-v2/credentials/ssocreds"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/irsa"
)

// liveJWT is a token valid for an hour from now with the given audience.
func liveJWT(t testing.TB, aud string) string {
	c := goodClaims()
	c["aud"] = []string{aud}
	c["exp"] = time.Now().Add(time.Hour).Unix()
	c["iat"] = time.Now().Add(-time.Minute).Unix()
	return jwt(t, c)
}

// sdkMode is the Mode the provider the SDK picked stands for, read from
// the provider's type and its recorded sources.
func sdkMode(t *testing.T, cfg aws.Config) irsa.Mode {
	t.Helper()
	cc, ok := cfg.Credentials.(*aws.CredentialsCache)
	require.True(t, ok, "SDK credentials are %T", cfg.Credentials)
	src := cc.ProviderSources()
	require.NotEmpty(t, src)
	is := cc.IsCredentialsProvider
	switch {
	case is(credentials.StaticCredentialsProvider{}):
		if src[0] == aws.CredentialSourceEnvVars {
			return irsa.EnvKeys
		}
		return irsa.Profile
	case is((*stscreds.WebIdentityRoleProvider)(nil)):
		if src[0] == aws.CredentialSourceEnvVarsSTSWebIDToken {
			return irsa.WebIdentity
		}
		return irsa.Profile
	case is((*stscreds.AssumeRoleProvider)(nil)), is((*processcreds.Provider)(nil)), is((*ssocreds.Provider)(nil)), is((*logincreds.Provider)(nil)):
		return irsa.Profile
	case is((*endpointcreds.Provider)(nil)):
		full := os.Getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI")
		if os.Getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") == "" &&
			(os.Getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") != "" || strings.Contains(full, "169.254.170.23") || strings.Contains(full, "fd00:ec2::23")) {
			return irsa.PodIdentity
		}
		return irsa.Container
	case is((*ec2rolecreds.Provider)(nil)):
		return irsa.InstanceRole
	}
	t.Fatalf("unknown SDK provider with sources %v", src)
	return irsa.None
}

const (
	pod          = "KUBERNETES_SERVICE_HOST"
	podURI       = "http://169.254.170.23/v1/credentials"
	devRegion    = "[profile dev]\nregion = eu-west-1\n"
	devKeys      = "[dev]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = profile-secret\n"
	defaultKeys  = "[default]\naws_access_key_id = AKIAEXAMPLEEXAMPLE02\naws_secret_access_key = default-secret\n"
	baseKeys     = "[base]\naws_access_key_id = AKIAEXAMPLEEXAMPLE03\naws_secret_access_key = base-secret\n"
	roleFromBase = "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\nsource_profile = base\n"
)

// chainCases are environments the SDK and Detect must agree on. Values
// $IRSA_TOKEN and $POD_TOKEN become paths of valid projected tokens.
var chainCases = []struct {
	name        string
	env         []string
	config      string
	credentials string
	profile     string // chosen in code (Options.Profile)
}{
	{name: "nothing: instance metadata"},
	{name: "nothing in a pod: node role", env: []string{pod, "10.0.0.1"}},
	{name: "env keys", env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s"}},
	{name: "env keys, legacy names", env: []string{"AWS_ACCESS_KEY", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_KEY", "s"}},
	{name: "env access key without secret", env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00"}},
	{name: "irsa", env: []string{"AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "irsa in a pod", env: []string{pod, "10.0.0.1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "token file without role", env: []string{"AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "role without token file in a pod", env: []string{pod, "10.0.0.1", "AWS_ROLE_ARN", goodRole}},
	{name: "env keys before irsa", env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "irsa before AWS_PROFILE in a pod", config: devRegion, credentials: devKeys,
		env: []string{pod, "10.0.0.1", "AWS_PROFILE", "dev", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "irsa with a missing AWS_PROFILE", env: []string{"AWS_PROFILE", "dev", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "irsa with a missing AWS_DEFAULT_PROFILE", env: []string{"AWS_DEFAULT_PROFILE", "dev", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "code profile before irsa", profile: "dev", config: devRegion, credentials: devKeys,
		env: []string{"AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN"}},
	{name: "code profile before env keys", profile: "dev", credentials: devKeys, env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s"}},
	{name: "missing code profile", profile: "dev", env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s"}},
	{name: "AWS_PROFILE with keys", credentials: devKeys, env: []string{"AWS_PROFILE", "dev"}},
	{name: "AWS_DEFAULT_PROFILE with keys", credentials: devKeys, env: []string{"AWS_DEFAULT_PROFILE", "dev"}},
	{name: "AWS_PROFILE wins over AWS_DEFAULT_PROFILE", credentials: devKeys + defaultKeys, env: []string{"AWS_PROFILE", "dev", "AWS_DEFAULT_PROFILE", "default"}},
	{name: "missing AWS_DEFAULT_PROFILE is ignored", credentials: defaultKeys, env: []string{"AWS_DEFAULT_PROFILE", "dev"}},
	{name: "default profile with keys", credentials: defaultKeys},
	{name: "profile without credentials", config: devRegion, env: []string{"AWS_PROFILE", "dev"}},
	{name: "profile without credentials in a pod", config: devRegion, env: []string{pod, "10.0.0.1", "AWS_PROFILE", "dev"}},
	{name: "role_arn with source_profile", config: roleFromBase, credentials: baseKeys, env: []string{"AWS_PROFILE", "ops"}},
	{name: "role chain of two source profiles", credentials: baseKeys,
		config: roleFromBase + "[profile admin]\nrole_arn = arn:aws:iam::111122223333:role/admin\nsource_profile = ops\n", env: []string{"AWS_PROFILE", "admin"}},
	{name: "source_profile missing", config: roleFromBase, env: []string{"AWS_PROFILE", "ops"}},
	{name: "credential_source Ec2InstanceMetadata in a pod", config: "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\ncredential_source = Ec2InstanceMetadata\n",
		env: []string{pod, "10.0.0.1", "AWS_PROFILE", "ops"}},
	{name: "credential_source Environment", profile: "ops", config: "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\ncredential_source = Environment\n",
		env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s"}},
	{name: "credential_source EcsContainer", config: "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\ncredential_source = EcsContainer\n",
		env: []string{"AWS_PROFILE", "ops", "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}},
	{name: "credential_source EcsContainer without container", config: "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\ncredential_source = EcsContainer\n",
		env: []string{"AWS_PROFILE", "ops"}},
	{name: "credential_source unknown", config: "[profile ops]\nrole_arn = arn:aws:iam::111122223333:role/ops\ncredential_source = Magic\n",
		env: []string{"AWS_PROFILE", "ops"}},
	{name: "profile web_identity_token_file", config: "[profile wi]\nrole_arn = arn:aws:iam::111122223333:role/wi\nweb_identity_token_file = /var/run/token\n",
		env: []string{"AWS_PROFILE", "wi"}},
	{name: "profile web_identity_token_file without role_arn", config: "[profile wi]\nweb_identity_token_file = /var/run/token\n",
		env: []string{"AWS_PROFILE", "wi"}},
	{name: "profile credential_process", config: "[profile proc]\ncredential_process = /bin/false\n", env: []string{"AWS_PROFILE", "proc"}},
	{name: "profile credential_process with role", credentials: baseKeys,
		config: "[profile proc]\ncredential_process = /bin/false\nrole_arn = arn:aws:iam::111122223333:role/p\n", env: []string{"AWS_PROFILE", "proc"}},
	{name: "profile sso legacy", config: "[profile sso]\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\nsso_account_id = 111122223333\nsso_role_name = Dev\n",
		env: []string{"AWS_PROFILE", "sso"}},
	{name: "profile sso legacy incomplete", config: "[profile sso]\nsso_start_url = https://d-1.awsapps.com/start\n", env: []string{"AWS_PROFILE", "sso"}},
	{name: "profile sso session", config: "[profile sso]\nsso_session = corp\nsso_account_id = 111122223333\nsso_role_name = Dev\n[sso-session corp]\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\n",
		env: []string{"AWS_PROFILE", "sso"}},
	{name: "profile sso session without legacy keys", config: "[profile sso]\nsso_session = corp\n[sso-session corp]\nsso_start_url = https://d-1.awsapps.com/start\nsso_region = us-east-1\n",
		env: []string{"AWS_PROFILE", "sso"}},
	{name: "profile sso session missing", config: "[profile sso]\nsso_session = corp\n", env: []string{"AWS_PROFILE", "sso"}},
	{name: "profile mfa_serial", credentials: baseKeys, config: roleFromBase + "mfa_serial = arn:aws:iam::111122223333:mfa/dev\n", env: []string{"AWS_PROFILE", "ops"}},
	{name: "profile partial keys", credentials: "[dev]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\n", env: []string{"AWS_PROFILE", "dev"}},
	{name: "malformed config file", config: "[profile dev\nregion = x\n", env: []string{"AWS_PROFILE", "dev"}},
	{name: "pod identity in a pod", env: []string{pod, "10.0.0.1", "AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "pod identity on IPv6", env: []string{pod, "10.0.0.1", "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://[fd00:ec2::23]/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "pod identity on loopback", env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/v1/credentials", "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "full URI on a refused host", env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://10.0.0.5/creds"}},
	{name: "full URI https", env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "https://creds.example.com/creds"}},
	{name: "full URI localhost", env: []string{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://localhost:9/creds"}},
	{name: "ecs relative URI", env: []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc"}},
	{name: "relative URI before full URI", env: []string{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc", "AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI}},
	{name: "irsa before pod identity", env: []string{pod, "10.0.0.1", "AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", "$IRSA_TOKEN",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "env keys before pod identity", env: []string{"AWS_ACCESS_KEY_ID", "AKIAEXAMPLEEXAMPLE00", "AWS_SECRET_ACCESS_KEY", "s",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "profile keys before pod identity", credentials: devKeys, env: []string{"AWS_PROFILE", "dev",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
	{name: "profile without credentials then pod identity", config: devRegion, env: []string{pod, "10.0.0.1", "AWS_PROFILE", "dev",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "$POD_TOKEN"}},
}

// TestDetectMatchesSDKChain runs Detect, the SDK's default chain
// (config.LoadDefaultConfig) and Load on the same environments in the same
// run: Detect's sources and mode must be the SDK's, Load must report the
// same, and the node-role guard must fire exactly when the SDK would end
// on the instance metadata service in a pod.
func TestDetectMatchesSDKChain(t *testing.T) {
	require.GreaterOrEqual(t, len(chainCases), 30)
	for _, c := range chainCases {
		t.Run(c.name, func(t *testing.T) {
			clearAWS(t)
			sharedFiles(t, c.config, c.credentials)
			t.Setenv("AWS_REGION", "us-east-1")
			irsaToken := writeToken(t, liveJWT(t, irsa.DefaultAudience), 0o600)
			podToken := writeToken(t, liveJWT(t, irsa.PodIdentityAudience), 0o600)
			for i := 0; i < len(c.env); i += 2 {
				v := strings.NewReplacer("$IRSA_TOKEN", irsaToken, "$POD_TOKEN", podToken).Replace(c.env[i+1])
				t.Setenv(c.env[i], v)
			}
			ctx := context.Background()
			env := irsa.Detect(os.Getenv, func(o *irsa.DetectOptions) { o.Profile = c.profile })
			var sdkOpts []func(*config.LoadOptions) error
			if c.profile != "" {
				sdkOpts = append(sdkOpts, config.WithSharedConfigProfile(c.profile))
			}
			cfg, sdkErr := config.LoadDefaultConfig(ctx, sdkOpts...)

			l, logs := logger()
			sess, loadErr := irsa.Load(ctx, func(o *irsa.Options) { o.Profile = c.profile; o.Logger = l })

			if sdkErr != nil {
				require.Error(t, env.Err, "the SDK fails (%v) but Detect says %s %v", sdkErr, env.Mode, env.Sources)
				assert.Equal(t, irsa.None, env.Mode)
				require.NotEmpty(t, env.Problems)
				assert.NotEmpty(t, env.Problems[0].Fix)
				assert.True(t, errors.Is(loadErr, irsa.ErrMisconfigured), "Load: %v", loadErr)
				return
			}
			require.NoError(t, env.Err, "the SDK succeeds but Detect says it fails")
			sdkSources := cfg.Credentials.(*aws.CredentialsCache).ProviderSources()
			assert.Equal(t, sdkSources, env.Sources, "sources")
			assert.Equal(t, sdkMode(t, cfg).String(), env.Mode.String(), "mode")

			if env.InPod && env.UsesInstanceRole() {
				assert.True(t, errors.Is(loadErr, irsa.ErrNodeRole), "the SDK ends on IMDS in a pod; Load: %v", loadErr)
				return
			}
			require.NoError(t, loadErr)
			assert.Equal(t, env.Mode.String(), sess.Mode().String(), "Load's mode")
			assert.Equal(t, sdkSources, sess.CredentialSources(), "Load's sources")
			line := map[irsa.Mode]string{
				irsa.WebIdentity:  "Using IRSA authentication for AWS services",
				irsa.PodIdentity:  "Using EKS Pod Identity for AWS services",
				irsa.Container:    "Using container credentials",
				irsa.InstanceRole: "Using the instance role",
				irsa.EnvKeys:      "Using local development credentials",
				irsa.Profile:      "Using local development credentials",
			}[env.Mode]
			if env.InPod && (env.Mode == irsa.EnvKeys || env.Mode == irsa.Profile) {
				line = "Using static or profile credentials in a pod"
			}
			assert.Contains(t, logs.String(), line)
			if env.Mode != irsa.WebIdentity {
				assert.NotContains(t, logs.String(), "Using IRSA authentication")
			}
		})
	}
}

// Both IRSA and Pod Identity: a problem says which one the SDK uses and why.
func TestIRSAAndPodIdentityProblem(t *testing.T) {
	e := irsa.Detect(envOf(pod, "10.0.0.1", "AWS_REGION", "us-east-1", "AWS_CONFIG_FILE", os.DevNull, "AWS_SHARED_CREDENTIALS_FILE", os.DevNull,
		"AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath,
		"AWS_CONTAINER_CREDENTIALS_FULL_URI", podURI, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", "/var/run/secrets/pods.eks.amazonaws.com/serviceaccount/eks-pod-identity-token"))
	require.Equal(t, irsa.WebIdentity, e.Mode)
	var found bool
	for _, p := range e.Problems {
		if strings.Contains(p.Message, "both IRSA") {
			found = true
			assert.Contains(t, p.Message, "IRSA (web identity) is used")
			assert.Contains(t, p.Message, "before container credentials")
			assert.Contains(t, p.Fix, "pod identity association")
		}
	}
	assert.True(t, found, "no problem about IRSA and Pod Identity together: %v", e.Problems)
}

// AWS_STS_REGIONAL_ENDPOINTS does not matter to aws-sdk-go-v2: no value is
// a problem, and nothing advises setting it.
func TestSTSRegionalEndpointsNotAdvised(t *testing.T) {
	for _, v := range []string{"", "legacy", "regional", "bogus"} {
		e := irsa.Detect(envOf("AWS_REGION", "us-east-1", "AWS_CONFIG_FILE", os.DevNull, "AWS_SHARED_CREDENTIALS_FILE", os.DevNull,
			"AWS_ROLE_ARN", goodRole, "AWS_WEB_IDENTITY_TOKEN_FILE", tokenPath, "AWS_STS_REGIONAL_ENDPOINTS", v))
		assert.Equal(t, v, e.STSRegionalEndpoints)
		for _, p := range e.Problems {
			assert.NotContains(t, p.String(), "STS_REGIONAL", "value %q", v)
			assert.NotContains(t, p.String(), "sts-regional", "value %q", v)
		}
	}
}
