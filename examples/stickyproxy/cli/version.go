package cli

import (
	"runtime/debug"
	"strings"
)

// version returns the program's version, as -version prints it and the
// status page shows it: the module's version, such as v1.2.0 for a
// program built by go install at that version, or "(devel)" for one built
// from a checkout, followed by the VCS revision, its time and whether the
// tree had changes when go build recorded them.
func version() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "(unknown)"
	}
	return formatVersion(bi)
}

// formatVersion returns the version bi describes; see version.
func formatVersion(bi *debug.BuildInfo) string {
	v := bi.Main.Version
	if v == "" {
		v = "(devel)" // a test binary, or a program run by go run before Go 1.24
	}
	var rev, at, modified string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			modified = s.Value
		}
	}
	if rev == "" {
		return v
	}
	var b strings.Builder
	b.WriteString(v + " revision " + rev)
	if at != "" {
		b.WriteString(" " + at)
	}
	if modified == "true" {
		b.WriteString(" modified")
	}
	return b.String()
}
