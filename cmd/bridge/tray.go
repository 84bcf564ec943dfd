package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/control"
)

func runTray(ctx context.Context, e *env, args []string) error {
	fs := newFlags("tray")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge tray")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	ep, err := controlEndpoint(e, cfg.Path)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	app := &trayApp{e: e, cfgPath: cfg.Path, client: control.NewClient(ep), self: self, poke: make(chan struct{}, 1),
		doctor: selfHasCommand(ctx, self, "doctor")}
	return trayMain(ctx, app)
}

// selfHasCommand asks this program's `help` whether it has the
// subcommand name (a build may lack `doctor`). Asking the command list
// directly would make it refer to itself.
func selfHasCommand(ctx context.Context, self, name string) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, self, "help").Output()
	if err != nil {
		return false
	}
	for _, line := range strings.Split(string(out), "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == name {
			return true
		}
	}
	return false
}

// traySessionCheck refuses to start the tray where it cannot appear: on
// Linux and the BSDs the tray talks to the desktop over the D-Bus session
// bus, and systray crashes when there is none.
func traySessionCheck(goos string, getenv func(string) string, look func(string) (string, error)) error {
	switch goos {
	case "windows", "darwin":
		return nil
	}
	if getenv("DBUS_SESSION_BUS_ADDRESS") != "" {
		return nil
	}
	if rt := getenv("XDG_RUNTIME_DIR"); rt != "" {
		if _, err := os.Stat(filepath.Join(rt, "bus")); err == nil {
			return nil
		}
	}
	if _, err := look("dbus-launch"); err == nil {
		return nil
	}
	return errors.New("tray: no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set): the tray needs a desktop session; `bridge status` shows the same state in a terminal")
}
