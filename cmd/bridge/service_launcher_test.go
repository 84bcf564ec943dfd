package main

import (
	"errors"
	"testing"
)

func TestWindowsLauncherCommand(t *testing.T) {
	got, err := windowsLauncherCommand(`C:\Program Files\bridge\bridgew.exe`, windowsLogFile(`C:\Users\Ann Lee\AppData\Local`),
		`C:\Program Files\bridge\bridge.exe`, `C:\Users\Ann Lee\AppData\Roaming\bridge\100% config.toml`)
	if err != nil {
		t.Fatal(err)
	}
	want := `"C:\Program Files\bridge\bridgew.exe" --log "C:\Users\Ann Lee\AppData\Local\bridge\bridge.log" -- ` +
		`"C:\Program Files\bridge\bridge.exe" --config "C:\Users\Ann Lee\AppData\Roaming\bridge\100% config.toml" serve`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := windowsLauncherCommand(`C:\b\bridgew.exe`, `C:\l.log`, `C:\b\bridge.exe`, `C:\a"b\config.toml`); !errors.Is(err, errConfig) {
		t.Errorf("a quote in a path: %v, want a config error", err)
	}
	if _, err := windowsLauncherCommand(`C:\b\bridgew.exe`, `C:\l.log`, `C:\b\bridge.exe`, "C:\\a\r\nb"); !errors.Is(err, errConfig) {
		t.Errorf("a line break in a path: %v, want a config error", err)
	}
	if got := windowsLogFile(`C:\Users\u\AppData\Local\`); got != `C:\Users\u\AppData\Local\bridge\bridge.log` {
		t.Errorf("windowsLogFile: %s", got)
	}
}
