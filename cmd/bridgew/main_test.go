package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestLaunchLogsAndExitCode(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to launch")
	}
	log := filepath.Join(t.TempDir(), "bridge", "bridge.log")
	if err := os.MkdirAll(filepath.Dir(log), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(log, []byte("earlier run\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	code := launch([]string{"--log", log, "--", sh, "-c", "echo to stdout; echo to stderr >&2; exit 3"}, &stderr)
	if code != 3 || stderr.Len() != 0 {
		t.Fatalf("exit %d, stderr %q; want 3 and nothing", code, stderr.String())
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.HasPrefix(got, "earlier run\nto stdout\nto stderr\n") || !strings.Contains(got, "bridgew: sh ended: exit status 3") {
		t.Errorf("log:\n%s", got)
	}
	if fi, err := os.Stat(log); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("log mode: %v %v", fi.Mode(), err)
	}
}

func TestLaunchMovesABigLogAside(t *testing.T) {
	log := filepath.Join(t.TempDir(), "bridge.log")
	if err := os.WriteFile(log, bytes.Repeat([]byte("x"), maxLog+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if code := launch([]string{"--log", log, "--", filepath.Join(t.TempDir(), "missing")}, &bytes.Buffer{}); code != 1 {
		t.Fatalf("exit %d for a command that cannot start, want 1", code)
	}
	if fi, err := os.Stat(log + ".old"); err != nil || fi.Size() != maxLog+1 {
		t.Fatalf("the old log was not moved aside: %v", err)
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "bridgew: starting ") {
		t.Errorf("new log %q does not say the command did not start", b)
	}
}

func TestLaunchUsage(t *testing.T) {
	var stderr bytes.Buffer
	if code := launch([]string{"serve"}, &stderr); code != 2 || !strings.Contains(stderr.String(), "usage: bridgew --log FILE -- COMMAND") {
		t.Fatalf("exit %d, stderr %q", code, stderr.String())
	}
}
