package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// launchdHost installs a per-user LaunchAgent.
type launchdHost struct {
	path, plist, logFile string
}

func newServiceHost(e *env, s serviceSpec) (serviceHost, error) {
	home, err := homeDir(e)
	if err != nil {
		return nil, err
	}
	logFile := filepath.Join(home, "Library", "Logs", "bridge.log")
	plist, err := launchdPlist(launchdLabel, s.Exe, s.Config, logFile)
	if err != nil {
		return nil, err
	}
	return &launchdHost{path: filepath.Join(home, "Library", "LaunchAgents", launchdLabel+".plist"), plist: plist, logFile: logFile}, nil
}

func (h *launchdHost) where() string      { return h.path }
func (h *launchdHost) definition() string { return h.plist }
func (h *launchdHost) applyHint() string {
	return fmt.Sprintf("launchctl bootstrap gui/%d %s", os.Getuid(), h.path)
}

// launchctl runs launchctl with args.
func launchctl(args ...string) (string, error) {
	p, err := lookTool("launchctl")
	if err != nil {
		return "", fmt.Errorf("service: launchctl not found: %w", err)
	}
	b, err := runTool(p, args...)
	return strings.TrimSpace(string(b)), err
}

func (h *launchdHost) target() string { return fmt.Sprintf("gui/%d/%s", os.Getuid(), launchdLabel) }

func (h *launchdHost) install(e *env) error {
	changed, err := writeIfChanged(h.path, h.plist)
	if err != nil {
		return err
	}
	if !changed {
		if _, err := launchctl("print", h.target()); err == nil {
			fmt.Fprintf(e.stdout, "%s is up to date and loaded\n", h.path)
			return nil
		}
	}
	fmt.Fprintf(e.stdout, "wrote %s\n", h.path)
	// bootstrap refuses a label that is already loaded; unload the old
	// definition first (an error here means it was not loaded).
	launchctl("bootout", h.target())
	if out, err := launchctl("bootstrap", fmt.Sprintf("gui/%d", os.Getuid()), h.path); err != nil {
		return fmt.Errorf("service: launchctl bootstrap: %v: %s (run it yourself: %s)", err, out, h.applyHint())
	}
	fmt.Fprintf(e.stdout, "loaded %s; it starts at every login (log: %s)\n", launchdLabel, h.logFile)
	return nil
}

func (h *launchdHost) uninstall(e *env) error {
	if _, err := os.Stat(h.path); os.IsNotExist(err) {
		fmt.Fprintf(e.stdout, "%s is not installed\n", h.path)
		return nil
	}
	launchctl("bootout", h.target())
	if err := os.Remove(h.path); err != nil {
		return fmt.Errorf("service: %w", err)
	}
	fmt.Fprintf(e.stdout, "unloaded and removed %s\n", h.path)
	return nil
}

func (h *launchdHost) status(ctx context.Context, e *env) error {
	fmt.Fprintf(e.stdout, "agent    %s: %s\n", h.path, fileState(h.path, h.plist))
	if _, err := launchctl("print", h.target()); err == nil {
		fmt.Fprintf(e.stdout, "launchd  %s is loaded\n", launchdLabel)
	} else {
		fmt.Fprintf(e.stdout, "launchd  %s is not loaded\n", launchdLabel)
	}
	return nil
}
