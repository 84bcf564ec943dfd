package main

import (
	"debug/pe"
	"os/exec"
	"path/filepath"
	"testing"
)

// TestWindowsSubsystems builds the Windows binaries as the release does
// (scripts/release.sh) and reads their PE headers: the launcher must be a
// GUI-subsystem program, or Windows opens a console window for it at every
// logon, and bridge.exe a console program, or its output in a terminal is
// lost. They are cross-compiled here; nothing runs them.
func TestWindowsSubsystems(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run scripts/release.sh")
	}
	out := t.TempDir()
	c := exec.Command(sh, "../../scripts/release.sh", "--snapshot", "--out", out, "--targets", "windows/amd64", "--only", "bin")
	if b, err := c.CombinedOutput(); err != nil {
		t.Fatalf("release.sh: %v\n%s", err, b)
	}
	dir := filepath.Join(out, "stage", "bin", "windows_amd64")
	for _, tc := range []struct {
		file string
		want uint16
	}{
		{"bridgew.exe", pe.IMAGE_SUBSYSTEM_WINDOWS_GUI},
		{"bridge.exe", pe.IMAGE_SUBSYSTEM_WINDOWS_CUI},
	} {
		f, err := pe.Open(filepath.Join(dir, tc.file))
		if err != nil {
			t.Fatal(err)
		}
		oh, ok := f.OptionalHeader.(*pe.OptionalHeader64)
		if !ok {
			t.Fatalf("%s: no 64-bit optional header (%T)", tc.file, f.OptionalHeader)
		}
		if f.FileHeader.Machine != pe.IMAGE_FILE_MACHINE_AMD64 || oh.Subsystem != tc.want {
			t.Errorf("%s: machine %#x, subsystem %d; want amd64 and %d", tc.file, f.FileHeader.Machine, oh.Subsystem, tc.want)
		}
		f.Close()
	}
}
