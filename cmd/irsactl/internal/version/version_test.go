package version_test

import (
	"runtime"
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/irsakit/irsakit/cmd/irsactl/internal/version"
)

func TestLine(t *testing.T) {
	platform := runtime.GOOS + "/" + runtime.GOARCH
	cases := []struct {
		name string
		bi   debug.BuildInfo
		want string
	}{
		{"tagged release", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.2.3"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.time", Value: "2026-11-30T10:00:00Z"}, {Key: "vcs.modified", Value: "false"}}},
			"irsactl v1.2.3 commit 0123456789ab 2026-11-30T10:00:00Z go1.26.8 " + platform},
		{"local changes", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.0.0-20261130100000-0123456789ab+dirty"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123"}, {Key: "vcs.modified", Value: "true"}}},
			"irsactl v0.0.0-20261130100000-0123456789ab+dirty commit 0123456789ab (modified) go1.26.8 " + platform},
		{"no VCS (a container build without .git)", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}},
			"irsactl (devel) go1.26.8 " + platform},
		{"go install pkg@version", debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v1.4.0"}},
			"irsactl v1.4.0 go1.26.8 " + platform},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, version.Line(&tc.bi))
		})
	}
}
