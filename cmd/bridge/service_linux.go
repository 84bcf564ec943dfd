package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// systemdHost installs a systemd user unit.
type systemdHost struct {
	path, unit string
}

func newServiceHost(e *env, s serviceSpec) (serviceHost, error) {
	dir := e.getenv("XDG_CONFIG_HOME")
	if dir == "" || !filepath.IsAbs(dir) {
		home, err := homeDir(e)
		if err != nil {
			return nil, err
		}
		dir = filepath.Join(home, ".config")
	}
	unit, err := systemdUnit(s.Exe, s.Config, s.PassphraseFile)
	if err != nil {
		return nil, err
	}
	return &systemdHost{path: filepath.Join(dir, "systemd", "user", serviceName+".service"), unit: unit}, nil
}

func (h *systemdHost) where() string      { return h.path }
func (h *systemdHost) definition() string { return h.unit }
func (h *systemdHost) applyHint() string {
	return "systemctl --user daemon-reload && systemctl --user enable --now " + serviceName + ".service"
}

// systemctl runs `systemctl --user ARGS`; ok is false when systemctl is
// not installed.
func systemctl(args ...string) (out string, ok bool, err error) {
	p, lerr := lookTool("systemctl")
	if lerr != nil {
		return "", false, nil
	}
	b, err := runTool(p, append([]string{"--user"}, args...)...)
	return strings.TrimSpace(string(b)), true, err
}

func (h *systemdHost) install(e *env) error {
	changed, err := writeIfChanged(h.path, h.unit)
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(e.stdout, "wrote %s\n", h.path)
	} else {
		fmt.Fprintf(e.stdout, "%s is up to date\n", h.path)
	}
	unit := serviceName + ".service"
	steps := [][]string{{"daemon-reload"}, {"enable", "--now", unit}}
	if changed {
		// enable --now leaves a running bridge on the old definition.
		steps = append(steps, []string{"try-restart", unit})
	}
	for _, st := range steps {
		out, ok, err := systemctl(st...)
		if !ok {
			fmt.Fprintf(e.stdout, "systemctl is not installed; start the bridge at login another way, or run: %s\n", h.applyHint())
			return nil
		}
		if err != nil {
			return fmt.Errorf("service: systemctl --user %s: %v: %s (is a user session bus running? then run: %s)", strings.Join(st, " "), err, out, h.applyHint())
		}
	}
	fmt.Fprintf(e.stdout, "enabled and started %s; it starts at every login (logs: journalctl --user -u %s)\n", unit, serviceName)
	return nil
}

func (h *systemdHost) uninstall(e *env) error {
	unit := serviceName + ".service"
	if _, err := os.Stat(h.path); os.IsNotExist(err) {
		fmt.Fprintf(e.stdout, "%s is not installed\n", h.path)
		return nil
	}
	if out, ok, err := systemctl("disable", "--now", unit); ok && err != nil {
		fmt.Fprintf(e.stderr, "warning: systemctl --user disable --now %s: %v: %s\n", unit, err, out)
	}
	if err := os.Remove(h.path); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	if out, ok, err := systemctl("daemon-reload"); ok && err != nil {
		fmt.Fprintf(e.stderr, "warning: systemctl --user daemon-reload: %v: %s\n", err, out)
	}
	fmt.Fprintf(e.stdout, "removed %s\n", h.path)
	return nil
}

func (h *systemdHost) status(ctx context.Context, e *env) error {
	fmt.Fprintf(e.stdout, "unit     %s: %s\n", h.path, fileState(h.path, h.unit))
	if out, ok, _ := systemctl("is-enabled", serviceName+".service"); ok {
		active, _, _ := systemctl("is-active", serviceName+".service")
		fmt.Fprintf(e.stdout, "systemd  %s, %s\n", firstLine(out), firstLine(active))
	}
	return nil
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(s, "\n")
	if s == "" {
		return "unknown"
	}
	return s
}
