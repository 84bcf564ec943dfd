package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/windows/registry"
)

// windowsLauncher is the GUI-subsystem launcher (cmd/bridgew) that the
// Windows archive and the Scoop manifest ship next to bridge.exe.
const windowsLauncher = "bridgew.exe"

// runKeyHost installs a value under the user's Run key: Windows starts it
// at logon, in the user's session, where the Credential Manager holds the
// tokens (an SCM service would run in session 0 without them).
type runKeyHost struct {
	command string
	// log is the launcher's log file; "" when the Run key starts bridge
	// in a minimised console window instead.
	log string
}

// newServiceHost starts the bridge through the launcher (cmd/bridgew),
// without a console window, when bridgew.exe is next to bridge.exe, as in
// the release archive; otherwise in a minimised console window.
func newServiceHost(e *env, s serviceSpec) (serviceHost, error) {
	launcher := filepath.Join(filepath.Dir(s.Exe), windowsLauncher)
	if _, err := os.Stat(launcher); err != nil {
		fmt.Fprintf(e.stderr, "note: %s is not next to %s: the bridge starts in a minimised console window, and closing it stops the bridge\n", windowsLauncher, s.Exe)
		c, err := windowsRunCommand(s.Exe, s.Config)
		if err != nil {
			return nil, err
		}
		return &runKeyHost{command: c}, nil
	}
	local, err := localAppData(e)
	if err != nil {
		return nil, err
	}
	log := windowsLogFile(local)
	c, err := windowsLauncherCommand(launcher, log, s.Exe, s.Config)
	if err != nil {
		return nil, err
	}
	return &runKeyHost{command: c, log: log}, nil
}

func (h *runKeyHost) where() string {
	return `HKEY_CURRENT_USER\` + windowsRunKey + `\` + serviceName
}
func (h *runKeyHost) definition() string { return windowsRegFile(serviceName, h.command) }
func (h *runKeyHost) applyHint() string  { return "" }

func (h *runKeyHost) current() (string, error) {
	k, err := registry.OpenKey(registry.CURRENT_USER, windowsRunKey, registry.QUERY_VALUE)
	if err != nil {
		return "", err
	}
	defer k.Close()
	v, _, err := k.GetStringValue(serviceName)
	return v, err
}

func (h *runKeyHost) install(e *env) error {
	if v, err := h.current(); err == nil && v == h.command {
		fmt.Fprintf(e.stdout, "%s is up to date\n", h.where())
		return nil
	}
	k, _, err := registry.CreateKey(registry.CURRENT_USER, windowsRunKey, registry.SET_VALUE|registry.QUERY_VALUE)
	if err != nil {
		return fmt.Errorf("service: opening the Run key: %w", err)
	}
	defer k.Close()
	if err := k.SetStringValue(serviceName, h.command); err != nil {
		return fmt.Errorf("service: writing %s: %w", h.where(), err)
	}
	fmt.Fprintf(e.stdout, "wrote %s\nthe bridge starts at your next logon; run `bridge serve` to start it now\n", h.where())
	if h.log != "" {
		fmt.Fprintf(e.stdout, "it runs without a window; its log: %s (stop it with: taskkill /F /IM bridge.exe)\n", h.log)
	}
	return nil
}

func (h *runKeyHost) uninstall(e *env) error {
	k, err := registry.OpenKey(registry.CURRENT_USER, windowsRunKey, registry.SET_VALUE)
	if err != nil {
		return fmt.Errorf("service: opening the Run key: %w", err)
	}
	defer k.Close()
	err = k.DeleteValue(serviceName)
	if errors.Is(err, registry.ErrNotExist) {
		fmt.Fprintf(e.stdout, "%s is not installed\n", h.where())
		return nil
	}
	if err != nil {
		return fmt.Errorf("service: removing %s: %w", h.where(), err)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", h.where())
	return nil
}

func (h *runKeyHost) status(ctx context.Context, e *env) error {
	v, err := h.current()
	state := "installed"
	switch {
	case errors.Is(err, registry.ErrNotExist):
		state = "not installed"
	case err != nil:
		state = "unreadable: " + err.Error()
	case v != h.command:
		state = "installed, but differs from what `bridge service install` writes now; run it again to update"
	}
	fmt.Fprintf(e.stdout, "run key  %s: %s\n", h.where(), state)
	return nil
}
