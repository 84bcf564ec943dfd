package main

import (
	"os"
	"testing"
)

// TestPackagedUnit keeps the unit the packages install
// (/usr/lib/systemd/user/bridge.service) the one `bridge service install`
// would write for /usr/bin/bridge and the default config.
func TestPackagedUnit(t *testing.T) {
	want, err := systemdUnit("/usr/bin/bridge", "", "")
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("../../packaging/bridge.service")
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("packaging/bridge.service differs from systemdUnit's:\n%s\nwant:\n%s", got, want)
	}
}
