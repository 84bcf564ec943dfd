package main

import (
	"context"
	"fmt"
	"runtime"
	"runtime/debug"
)

// Stamped by release builds (scripts/release.sh):
//
//	-ldflags "-X main.version=v1.2.3 -X main.commit=<full hash> -X main.date=2006-01-02T15:04:05Z"
//
// date is the commit's date, not the build's, so that a rebuild of the
// same commit gives the same bytes.
var version, commit, date string

// buildStamp is what `bridge version` prints.
type buildStamp struct {
	Version, Commit, Date string
	// Modified is true when a `go build` in a work tree saw local changes.
	Modified bool
}

// currentBuild returns the stamped values, and for a build that has none
// (go install, go build) what the Go toolchain recorded: the module version
// of `go install ...@v1.2.3`, or the VCS revision and its time of a build
// in a git work tree.
func currentBuild() buildStamp {
	b := buildStamp{Version: version, Commit: commit, Date: date}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return b.orDevel()
	}
	if b.Version == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		b.Version = bi.Main.Version
	}
	if b.Commit == "" {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				b.Commit = s.Value
			case "vcs.time":
				b.Date = s.Value
			case "vcs.modified":
				b.Modified = s.Value == "true"
			}
		}
	}
	return b.orDevel()
}

func (b buildStamp) orDevel() buildStamp {
	if b.Version == "" {
		b.Version = "devel"
	}
	return b
}

func runVersion(ctx context.Context, e *env, args []string) error {
	if pos, err := parseFlags(newFlags("version"), args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge version")
	}
	b := currentBuild()
	fmt.Fprintf(e.stdout, "bridge %s\n", b.Version)
	if b.Commit != "" {
		mod := ""
		if b.Modified {
			mod = " (with local changes)"
		}
		fmt.Fprintf(e.stdout, "commit %s%s\n", b.Commit, mod)
	}
	if b.Date != "" {
		fmt.Fprintf(e.stdout, "date   %s\n", b.Date)
	}
	fmt.Fprintf(e.stdout, "go     %s %s/%s\n", runtime.Version(), runtime.GOOS, runtime.GOARCH)
	return nil
}
