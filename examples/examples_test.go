package examples_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
	"github.com/irsakit/irsakit/internal/awstest/iam"
)

// TestPoliciesRegenerateEqual runs the irsactl commands of
// iam/regenerate.sh and compares their output with the templates.
func TestPoliciesRegenerateEqual(t *testing.T) {
	bin, err := sandboxtest.BuildIrsactl(t.TempDir())
	require.NoError(t, err)
	script, err := os.ReadFile("iam/regenerate.sh")
	require.NoError(t, err)
	n := 0
	for _, line := range strings.Split(string(script), "\n") {
		rest, ok := strings.CutPrefix(line, `"$IRSACTL" policy `)
		if !ok {
			continue
		}
		cmdline, file, ok := strings.Cut(rest, " > ")
		require.True(t, ok, "regenerate.sh line without output file: %s", line)
		n++
		t.Run(file, func(t *testing.T) {
			out, err := exec.Command(bin, append([]string{"policy"}, strings.Fields(cmdline)...)...).Output()
			require.NoError(t, err, "irsactl policy %s", cmdline)
			want, err := os.ReadFile(filepath.Join("iam", file))
			require.NoError(t, err)
			assert.True(t, bytes.Equal(out, want), "iam/%s differs from `irsactl policy %s`; run IRSACTL=irsactl iam/regenerate.sh\n--- generated\n%s", file, cmdline, out)
			doc, err := iam.ParseDocument(want)
			require.NoError(t, err, "iam/%s", file)
			for _, st := range doc.Statement {
				assert.NotContains(t, st.Resource, "*", "iam/%s grants on Resource \"*\"", file)
			}
		})
	}
	require.Equal(t, 6, n, "regenerate.sh policy commands")
}

// TestTrustPolicyMatchesServiceAccount: the trust template admits exactly
// the service account the manifests deploy.
func TestTrustPolicyMatchesServiceAccount(t *testing.T) {
	objs, _ := loadManifests(t)
	sa := objs.serviceAccounts[0]
	b, err := os.ReadFile("iam/trust-policy.json")
	require.NoError(t, err)
	doc, err := iam.ParseDocument(b)
	require.NoError(t, err)
	want := "system:serviceaccount:" + sa.Namespace + ":" + sa.Name
	found := false
	for _, st := range doc.Statement {
		for k, v := range st.Condition["StringEquals"] {
			if strings.HasSuffix(k, ":sub") && len(v) == 1 && v[0] == want {
				found = true
			}
		}
	}
	assert.True(t, found, "trust-policy.json does not admit %s", want)
}
