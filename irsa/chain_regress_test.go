package irsa_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/irsa"
)

// sharedFiles writes an AWS config and credentials file and points
// AWS_CONFIG_FILE / AWS_SHARED_CREDENTIALS_FILE at them.
func sharedFiles(t *testing.T, configINI, credentialsINI string) {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config")
	creds := filepath.Join(dir, "credentials")
	require.NoError(t, os.WriteFile(cfg, []byte(configINI), 0o600))
	require.NoError(t, os.WriteFile(creds, []byte(credentialsINI), 0o600))
	t.Setenv("AWS_CONFIG_FILE", cfg)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", creds)
}

// A pod with IRSA and a stray AWS_PROFILE: the SDK reads the web identity
// variables before any profile, so IRSA is what is used and logged.
func TestStrayProfileDoesNotHideIRSA(t *testing.T) {
	clearAWS(t)
	sharedFiles(t, "[profile dev]\nregion = eu-west-1\n", "")
	tok := writeToken(t, liveJWT(t, irsa.DefaultAudience), 0o600)
	t.Setenv("AWS_ROLE_ARN", goodRole)
	t.Setenv("AWS_WEB_IDENTITY_TOKEN_FILE", tok)
	t.Setenv("AWS_PROFILE", "dev")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")

	assert.Equal(t, irsa.WebIdentity, irsa.Detect(os.Getenv).Mode)
	sess, logs := load(t)
	assert.Equal(t, irsa.WebIdentity, sess.Mode())
	assert.Contains(t, logs.String(), "Using IRSA authentication for AWS services")
	assert.NotContains(t, logs.String(), "local development")
}

// A profile without credentials in a pod: the SDK goes on to the instance
// metadata service, i.e. the node's role, so the guard must fire.
func TestProfileWithoutCredentialsInPodIsNodeRole(t *testing.T) {
	clearAWS(t)
	sharedFiles(t, "[profile dev]\nregion = eu-west-1\n", "")
	t.Setenv("AWS_PROFILE", "dev")
	t.Setenv("KUBERNETES_SERVICE_HOST", "10.100.0.1")

	assert.Equal(t, irsa.InstanceRole, irsa.Detect(os.Getenv).Mode)
	_, err := irsa.Load(context.Background())
	require.Error(t, err)
	assert.True(t, errors.Is(err, irsa.ErrNodeRole), "got %v", err)
	assert.Contains(t, err.Error(), `"dev"`)
}

// AWS_DEFAULT_PROFILE alone selects a profile too.
func TestDefaultProfileVariableSelectsProfile(t *testing.T) {
	clearAWS(t)
	sharedFiles(t, "[profile dev]\nregion = eu-west-1\n", "[dev]\naws_access_key_id = AKIAEXAMPLEEXAMPLE01\naws_secret_access_key = s\n")
	t.Setenv("AWS_DEFAULT_PROFILE", "dev")
	e := irsa.Detect(os.Getenv)
	assert.Equal(t, irsa.Profile, e.Mode)
	assert.True(t, strings.Contains(e.Profile, "dev"), "profile %q", e.Profile)
}
