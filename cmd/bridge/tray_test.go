package main

import (
	"bytes"
	"encoding/binary"
	"errors"
	"image/png"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/cmd/bridge/internal/traymodel"
)

func TestClipboardTool(t *testing.T) {
	have := func(names ...string) func(string) (string, error) {
		return func(n string) (string, error) {
			for _, h := range names {
				if h == n {
					return "/usr/bin/" + n, nil
				}
			}
			return "", errors.New("not found")
		}
	}
	wayland := func(k string) string {
		if k == "WAYLAND_DISPLAY" {
			return "wayland-0"
		}
		return ""
	}
	none := func(string) string { return "" }
	for _, c := range []struct {
		goos   string
		getenv func(string) string
		look   func(string) (string, error)
		want   string // "" for none
	}{
		{"linux", wayland, have("wl-copy", "xclip"), "/usr/bin/wl-copy"},
		{"linux", none, have("wl-copy", "xclip"), "/usr/bin/xclip -selection clipboard"},
		{"linux", none, have("xsel"), "/usr/bin/xsel --clipboard --input"},
		{"linux", none, have(), ""},
		{"darwin", none, have("pbcopy"), "/usr/bin/pbcopy"},
		{"windows", none, have("clip"), "/usr/bin/clip"},
		{"windows", none, have("xclip"), ""},
	} {
		argv, ok := clipboardTool(c.goos, c.getenv, c.look)
		if got := strings.Join(argv, " "); got != c.want || ok != (c.want != "") {
			t.Errorf("%s: %q %v, want %q", c.goos, got, ok, c.want)
		}
	}
}

func TestTrayIcons(t *testing.T) {
	seen := map[string]bool{}
	for _, st := range []traymodel.Icon{traymodel.IconOK, traymodel.IconAttention, traymodel.IconStopped} {
		p := trayIcon(st, "linux")
		img, err := png.Decode(bytes.NewReader(p))
		if err != nil || img.Bounds().Dx() != 32 {
			t.Fatalf("icon %v: %v", st, err)
		}
		if seen[string(p)] {
			t.Errorf("icon %v looks like another state's", st)
		}
		seen[string(p)] = true
		ico := trayIcon(st, "windows")
		if binary.LittleEndian.Uint16(ico[2:]) != 1 || binary.LittleEndian.Uint16(ico[4:]) != 1 ||
			binary.LittleEndian.Uint32(ico[14:]) != uint32(len(p)) || binary.LittleEndian.Uint32(ico[18:]) != 22 || !bytes.Equal(ico[22:], p) {
			t.Errorf("icon %v: malformed ICO header % x", st, ico[:22])
		}
	}
}

func TestTrayLastLine(t *testing.T) {
	if got := lastLine("progress\nbridge: tokens: AADSTS70000: run `bridge login a@b.c`\n", errors.New("exit status 1")); got != "tokens: AADSTS70000: run `bridge login a@b.c`" {
		t.Errorf("lastLine %q", got)
	}
	if got := lastLine("", errors.New("exit status 1")); got != "exit status 1" {
		t.Errorf("lastLine of nothing %q", got)
	}
}

func TestTraySessionCheck(t *testing.T) {
	none := func(string) (string, error) { return "", errors.New("not found") }
	noEnv := func(string) string { return "" }
	if err := traySessionCheck("linux", noEnv, none); err == nil || !strings.Contains(err.Error(), "D-Bus") {
		t.Errorf("no session bus: %v", err)
	}
	bus := func(k string) string {
		if k == "DBUS_SESSION_BUS_ADDRESS" {
			return "unix:path=/run/user/1000/bus"
		}
		return ""
	}
	if err := traySessionCheck("linux", bus, none); err != nil {
		t.Errorf("with a session bus: %v", err)
	}
	if err := traySessionCheck("windows", noEnv, none); err != nil {
		t.Errorf("windows: %v", err)
	}
}
