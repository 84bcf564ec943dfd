package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// serviceSpec is what every autostart definition starts: this executable
// with this config.
type serviceSpec struct {
	// Exe and Config are absolute paths.
	Exe, Config string
}

// serviceHost writes one OS's per-user autostart definition. Each OS file
// (service_linux.go, service_darwin.go, service_windows.go) has a
// newServiceHost.
type serviceHost interface {
	// where says where the definition goes: a file or a registry value.
	where() string
	// definition is the exact text install writes.
	definition() string
	// apply says which commands install would run, for --print.
	applyHint() string
	install(e *env) error
	uninstall(e *env) error
	status(ctx context.Context, e *env) error
}

// Tools the service commands run; tests replace them.
var (
	lookTool = exec.LookPath
	runTool  = func(name string, args ...string) ([]byte, error) {
		return exec.Command(name, args...).CombinedOutput()
	}
)

func runService(ctx context.Context, e *env, args []string) error {
	fs := newFlags("service")
	print := fs.Bool("print", false, "show what install would write, and write nothing")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) != 1 || (pos[0] != "install" && pos[0] != "uninstall" && pos[0] != "status") {
		return usagef("usage: bridge service install|uninstall|status [--print]")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	spec, err := newServiceSpec(e, cfg.Path)
	if err != nil {
		return err
	}
	h, err := newServiceHost(e, spec)
	if err != nil {
		return err
	}
	switch {
	case *print && pos[0] == "install":
		// The definition alone goes to stdout, so it can be redirected
		// into place by hand.
		fmt.Fprintf(e.stderr, "# would write %s\n", h.where())
		fmt.Fprint(e.stdout, h.definition())
		if hint := h.applyHint(); hint != "" {
			fmt.Fprintf(e.stderr, "# then run: %s\n", hint)
		}
		return nil
	case *print:
		return usagef("--print goes with `bridge service install`")
	case pos[0] == "install":
		return h.install(e)
	case pos[0] == "uninstall":
		return h.uninstall(e)
	}
	err = h.status(ctx, e)
	if st := liveStatus(ctx, e, cfg); st != nil {
		fmt.Fprintf(e.stdout, "server   running (pid %d)\n", st.PID)
	} else {
		fmt.Fprintln(e.stdout, "server   not running")
	}
	return err
}

// newServiceSpec resolves this executable and the config to absolute
// paths: the autostart runs from another directory.
func newServiceSpec(e *env, config string) (serviceSpec, error) {
	exe, err := os.Executable()
	if err != nil {
		return serviceSpec{}, fmt.Errorf("service: locating this program: %w", err)
	}
	if r, err := filepath.EvalSymlinks(exe); err == nil {
		exe = r
	}
	if strings.Contains(exe, "go-build") {
		fmt.Fprintf(e.stderr, "warning: %s looks like a temporary `go run` build; install the bridge (go install, or a release) before setting up autostart\n", exe)
	}
	abs, err := filepath.Abs(config)
	if err != nil {
		return serviceSpec{}, fmt.Errorf("service: %w", err)
	}
	return serviceSpec{Exe: exe, Config: abs}, nil
}

// writeIfChanged writes a definition file and reports whether it changed.
func writeIfChanged(path, text string) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, []byte(text)) {
		return false, nil
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("service: %w", err)
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(text), 0o644); err != nil {
		return false, fmt.Errorf("service: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return false, fmt.Errorf("service: %w", err)
	}
	return true, nil
}

// fileState describes a definition file against what install would write.
func fileState(path, want string) string {
	b, err := os.ReadFile(path)
	switch {
	case os.IsNotExist(err):
		return "not installed"
	case err != nil:
		return "unreadable: " + err.Error()
	case string(b) != want:
		return "installed, but differs from what `bridge service install` writes now (another executable or config?); run it again to update"
	}
	return "installed"
}

// homeDir is $HOME from the command's environment, else the OS's answer.
func homeDir(e *env) (string, error) {
	if h := e.getenv("HOME"); h != "" {
		return h, nil
	}
	h, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("service: %w", err)
	}
	return h, nil
}
