package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestManPage checks that bridge.1 lists every command and flag, and, where
// groff is installed, that groff formats it without a warning.
func TestManPage(t *testing.T) {
	out, _, code := runCmd(t, context.Background(), "man")
	if code != 0 || !strings.HasPrefix(out, ".TH BRIDGE 1 ") {
		t.Fatalf("exit %d, page starts %.40q", code, out)
	}
	for _, s := range commandSpecs() {
		if !strings.Contains(out, ".TP\n\\fB"+s.name+"\\fR") {
			t.Errorf("the page has no entry for %s", s.name)
		}
		for _, f := range s.flags {
			if !strings.Contains(out, roffFlag(f)) {
				t.Errorf("the page lacks %s's flag %s", s.name, f.dash())
			}
		}
	}
	groff, err := exec.LookPath("groff")
	if err != nil {
		t.Skip("groff is not installed; the page was not formatted")
	}
	c := exec.Command(groff, "-man", "-Tutf8", "-ww", "-z")
	c.Stdin = strings.NewReader(out)
	if b, err := c.CombinedOutput(); err != nil || len(b) != 0 {
		t.Fatalf("groff: %v\n%s", err, b)
	}
}

func TestRoffEscapes(t *testing.T) {
	for in, want := range map[string]string{
		`a\b`:                  `a\eb`,
		".hidden":              `\&.hidden`,
		"'quote":               `\&'quote`,
		"EMAIL [--reset]":      `EMAIL [\fB\-\-reset\fR]`,
		"[--client-id ID]":     `[\fB\-\-client\-id\fR ID]`,
		"install|uninstall":    "install|uninstall",
		"[EMAIL] [--json]":     `[EMAIL] [\fB\-\-json\fR]`,
		"--print":              `\fB\-\-print\fR`,
		"[--grace 10s] [--x]]": `[\fB\-\-grace\fR 10s] [\fB\-\-x\fR]]`,
	} {
		got := roffArgs(in)
		if !strings.Contains(in, "--") {
			got = roff(in)
		}
		if got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}

// TestVersionStamped builds the program as the release does, with the
// version, commit and date given to the linker.
func TestVersionStamped(t *testing.T) {
	bin := buildBridge(t, "-ldflags", "-X main.version=v9.8.7 -X main.commit=0123456789abcdef -X main.date=2026-01-02T03:04:05Z")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"bridge v9.8.7\n", "commit 0123456789abcdef\n", "date   2026-01-02T03:04:05Z\n", "go     go1."} {
		if !strings.Contains(string(out), want) {
			t.Errorf("version printed %q, want a line %q", out, want)
		}
	}
	man, err := exec.Command(bin, "man").Output()
	if err != nil || !strings.HasPrefix(string(man), `.TH BRIDGE 1 "2026-01-02" "bridge v9.8.7"`) {
		t.Errorf("man: %v, %.60q", err, man)
	}
}

// TestVersionFromBuildInfo builds the program as `go build` in a git work
// tree does, unstamped: the toolchain records the commit, which `bridge
// version` prints.
func TestVersionFromBuildInfo(t *testing.T) {
	top, err := exec.Command("git", "rev-parse", "--show-toplevel").Output()
	if err != nil {
		t.Skipf("not a git work tree (%v): the build-info fallback was not checked", err)
	}
	if fi, err := os.Stat(filepath.Join(strings.TrimSpace(string(top)), ".git")); err != nil || !fi.IsDir() {
		t.Skip("a linked git worktree (.git is a file), where go build records no VCS information: the build-info fallback was not checked")
	}
	head, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Fatal(err)
	}
	bin := buildBridge(t, "-buildvcs=true")
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(out), "\ncommit "+strings.TrimSpace(string(head))) || !strings.Contains(string(out), "\ndate   20") {
		t.Errorf("a go build in a work tree printed %q, want commit %s and its date", out, head)
	}
}

// TestVersionUnstamped is `go run`/`go test`'s view: no stamp, no VCS.
func TestVersionUnstamped(t *testing.T) {
	out, _, code := runCmd(t, context.Background(), "version")
	if code != 0 || !strings.HasPrefix(out, "bridge ") || !strings.Contains(out, "\ngo     go1.") {
		t.Fatalf("exit %d, %q", code, out)
	}
}
