// Package version describes the irsactl binary from its build information.
package version

import (
	"runtime"
	"runtime/debug"
)

// String describes the running binary: see Line.
func String() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "irsactl (no build information) " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	return Line(bi)
}

// Line is "irsactl VERSION [commit REV TIME [(modified)]] GO OS/ARCH": the
// module version (a tag, or the pseudo-version the go command derives from
// the commit), the commit and whether the tree had local changes, and the
// toolchain.
func Line(bi *debug.BuildInfo) string {
	var rev, at string
	modified := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value == "true"
		}
	}
	v := bi.Main.Version
	if v == "" {
		v = "(devel)"
	}
	line := "irsactl " + v
	if rev != "" {
		if len(rev) > 12 {
			rev = rev[:12]
		}
		line += " commit " + rev
		if at != "" {
			line += " " + at
		}
		if modified {
			line += " (modified)"
		}
	}
	goVersion := bi.GoVersion
	if goVersion == "" {
		goVersion = runtime.Version()
	}
	return line + " " + goVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
}
