package examples_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/irsakit/irsakit/examples/internal/sandboxtest"
)

// dockerfile is what the tests read from ../Dockerfile.
type dockerfile struct {
	buildCmd   string            // the one RUN line that runs go build
	outDefault string            // ARG OUT=...
	targets    map[string]string // image target -> the binary its ENTRYPOINT runs
	runtime    []string          // the instructions of the runtime stage
}

// instructions joins continuation lines and drops comments.
func instructions(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	var out []string
	cur := ""
	for _, line := range strings.Split(string(b), "\n") {
		trimmed := strings.TrimSpace(line)
		if strings.HasPrefix(trimmed, "#") || (trimmed == "" && cur == "") {
			continue
		}
		if rest, ok := strings.CutSuffix(trimmed, `\`); ok {
			cur += rest + " "
			continue
		}
		cur += trimmed
		if cur != "" {
			out = append(out, cur)
		}
		cur = ""
	}
	return out
}

func readDockerfile(t *testing.T) dockerfile {
	t.Helper()
	d := dockerfile{targets: map[string]string{}}
	stage := ""
	entry := regexp.MustCompile(`^ENTRYPOINT \["/usr/local/bin/([a-z0-9-]+)"\]$`)
	for _, in := range instructions(t, "../Dockerfile") {
		switch {
		case strings.HasPrefix(in, "FROM "):
			_, stage, _ = strings.Cut(in, " AS ")
		case strings.HasPrefix(in, "RUN ") && strings.Contains(in, "go build"):
			require.Empty(t, d.buildCmd, "the Dockerfile has more than one go build RUN line")
			require.Equal(t, "build", stage)
			d.buildCmd = strings.TrimPrefix(in, "RUN ")
		case strings.HasPrefix(in, "ARG OUT="):
			d.outDefault = strings.TrimPrefix(in, "ARG OUT=")
		case stage == "runtime":
			d.runtime = append(d.runtime, in)
		}
		if m := entry.FindStringSubmatch(in); m != nil {
			d.targets[stage] = m[1]
		}
		if stage == "runtime" && strings.HasPrefix(in, "FROM ") {
			d.runtime = append(d.runtime, in)
		}
	}
	require.NotEmpty(t, d.buildCmd, "no go build RUN line in the Dockerfile")
	return d
}

func TestDockerfileShape(t *testing.T) {
	d := readDockerfile(t)
	assert.Contains(t, d.buildCmd, "CGO_ENABLED=0")
	assert.Contains(t, d.buildCmd, "-trimpath")
	assert.Contains(t, d.buildCmd, `"$OUT/"`, "the build writes to $OUT, which the tests point elsewhere")
	assert.Equal(t, "/out", d.outDefault)
	// Every example program is an image running it; every image has irsactl.
	assert.Equal(t, map[string]string{"mcp-backend": "mcp-backend", "secret-reader": "secret-reader", "s3-list": "s3-list"}, d.targets)
	for _, bin := range append(slices.Collect(maps.Values(d.targets)), "irsactl") {
		assert.Contains(t, d.buildCmd, "./"+map[bool]string{true: "cmd/", false: ""}[bin == "irsactl"]+bin, "the build command does not build %s", bin)
	}
	assert.Contains(t, d.runtime, "FROM gcr.io/distroless/static-debian12:nonroot AS runtime", "runtime: static distroless (CA certificates, no shell), non-root")
	assert.Contains(t, d.runtime, "USER 65532:65532")
	assert.Contains(t, d.runtime, "COPY --from=build /out/irsactl /usr/local/bin/irsactl")
	// make images builds exactly these targets.
	mk, err := os.ReadFile("../Makefile")
	require.NoError(t, err)
	m := regexp.MustCompile(`(?m)^IMAGES := (.*)$`).FindSubmatch(mk)
	require.NotNil(t, m, "no IMAGES in the Makefile")
	names := strings.Fields(string(m[1]))
	slices.Sort(names)
	targets := slices.Sorted(maps.Keys(d.targets))
	assert.Equal(t, targets, names)
}

// buildLikeTheDockerfile runs the Dockerfile's build command in the
// repository root with OUT pointing at a temporary directory.
func buildLikeTheDockerfile(t *testing.T) string {
	t.Helper()
	d := readDockerfile(t)
	out := t.TempDir()
	cmd := exec.Command("sh", "-c", d.buildCmd)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "OUT="+out)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s\n%s", d.buildCmd, b)
	return out
}

// TestImageBinariesAreStaticAndRunInAnEmptyRoot runs the Dockerfile's
// build command, checks that every binary is static (no interpreter, no
// dynamic section), then runs irsactl doctor, secret-reader and s3-list
// as uid 65532 in a root holding nothing but the binaries, the CA bundle,
// /tmp and the pod's mounted files (projected token, CA files), against
// the local AWS stand-ins: what the distroless image gives them.
func TestImageBinariesAreStaticAndRunInAnEmptyRoot(t *testing.T) {
	out := buildLikeTheDockerfile(t)
	bins := []string{"irsactl", "mcp-backend", "secret-reader", "s3-list"}
	for _, name := range bins {
		t.Run("static "+name, func(t *testing.T) {
			f, err := elf.Open(filepath.Join(out, name))
			require.NoError(t, err)
			defer f.Close()
			for _, p := range f.Progs {
				assert.NotEqual(t, elf.PT_INTERP, p.Type, "%s asks for a dynamic loader", name)
				assert.NotEqual(t, elf.PT_DYNAMIC, p.Type, "%s has a dynamic segment", name)
			}
			assert.Nil(t, f.Section(".dynamic"), "%s has a .dynamic section", name)
			libs, err := f.ImportedLibraries()
			require.NoError(t, err)
			assert.Empty(t, libs)
		})
	}
	if os.Geteuid() != 0 {
		t.Skip("running the binaries in an empty root needs root (chroot and a switch to uid 65532); CI runs as root")
	}

	root := t.TempDir()
	require.NoError(t, os.Chmod(root, 0o755))
	install := func(src, dst string, mode os.FileMode, gid int) {
		t.Helper()
		b, err := os.ReadFile(src)
		require.NoError(t, err)
		p := filepath.Join(root, dst)
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		require.NoError(t, os.WriteFile(p, b, mode))
		require.NoError(t, os.Chmod(p, mode))
		require.NoError(t, os.Chown(p, 0, gid))
	}
	for _, name := range bins {
		install(filepath.Join(out, name), "/usr/local/bin/"+name, 0o755, 0)
	}
	install(caBundle(t), "/etc/ssl/certs/ca-certificates.crt", 0o644, 0)
	require.NoError(t, os.Mkdir(filepath.Join(root, "tmp"), 0o1777))
	require.NoError(t, os.Chmod(filepath.Join(root, "tmp"), 0o1777))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	sb, err := sandboxtest.Start(ctx, filepath.Join(out, "irsactl"), t.TempDir())
	require.NoError(t, err)
	defer func() { assert.NoError(t, sb.Stop()) }()
	// The pod's mounts at the paths the environment names: the projected
	// token group-readable as fsGroup makes it, the CA files.
	install(sb.Vars["AWS_WEB_IDENTITY_TOKEN_FILE"], sb.Vars["AWS_WEB_IDENTITY_TOKEN_FILE"], 0o640, 65532)
	install(sb.Vars["DATABASE_CA_FILE"], sb.Vars["DATABASE_CA_FILE"], 0o644, 0)
	install(sb.Vars["REDIS_CA_FILE"], sb.Vars["REDIS_CA_FILE"], 0o644, 0)
	env := []string{"HOME=/tmp", "PATH=/usr/local/bin"}
	for k, v := range sb.Vars {
		if k != "AWS_CONFIG_FILE" && k != "AWS_SHARED_CREDENTIALS_FILE" { // not in a pod
			env = append(env, k+"="+v)
		}
	}
	inRoot := func(t *testing.T, extra []string, args ...string) (string, string) {
		t.Helper()
		cmd := exec.CommandContext(ctx, "/usr/local/bin/"+args[0], args[1:]...)
		cmd.Path = "/usr/local/bin/" + args[0]
		cmd.Dir = "/"
		cmd.Env = append(append([]string(nil), env...), extra...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: root, Credential: &syscall.Credential{Uid: 65532, Gid: 65532}}
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		require.NoError(t, cmd.Run(), "%v in the empty root\nstdout:\n%s\nstderr:\n%s", args, stdout.String(), stderr.String())
		return stdout.String(), stderr.String()
	}

	t.Run("irsactl doctor", func(t *testing.T) {
		stdout, _ := inRoot(t, nil, "irsactl", "doctor", "--json",
			"--db-endpoint", sb.Vars["DATABASE_ENDPOINT"], "--db-user", sb.Vars["DATABASE_USER"], "--db-name", sb.Vars["DATABASE_NAME"], "--db-ca", sb.Vars["DATABASE_CA_FILE"],
			"--cache-endpoint", sb.Vars["REDIS_ENDPOINT"], "--cache", sb.Vars["REDIS_CACHE_NAME"], "--cache-user", sb.Vars["REDIS_USER"], "--cache-ca", sb.Vars["REDIS_CA_FILE"],
			"--bucket", sb.Vars["S3_BUCKET"]+"/"+sb.Vars["S3_PREFIX"], "--secret", sb.Vars["SECRET_ID"])
		var rep struct {
			Status string `json:"status"`
			Checks []struct {
				Name, Status string
			} `json:"checks"`
		}
		require.NoError(t, json.Unmarshal([]byte(stdout), &rep), stdout)
		assert.Equal(t, "ok", rep.Status, stdout)
		passed := map[string]bool{}
		for _, c := range rep.Checks {
			passed[c.Name] = c.Status == "pass"
		}
		for _, name := range []string{"token-file", "sts", "rds", "elasticache", "s3", "secret"} {
			assert.True(t, passed[name], "%s did not pass in the empty root:\n%s", name, stdout)
		}
	})
	t.Run("secret-reader", func(t *testing.T) {
		stdout, _ := inRoot(t, nil, "secret-reader")
		assert.Contains(t, stdout, "value not shown")
		assert.Contains(t, stdout, "AWSCURRENT")
	})
	t.Run("s3-list", func(t *testing.T) {
		stdout, _ := inRoot(t, nil, "s3-list")
		assert.Contains(t, stdout, "object(s) under s3://"+sb.Vars["S3_BUCKET"]+"/"+sb.Vars["S3_PREFIX"])
	})
}

// caBundle is the host's CA bundle: what distroless ships at the same path.
func caBundle(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt"} {
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	t.Skip("no CA bundle on this host (install the Debian package ca-certificates)")
	return ""
}
