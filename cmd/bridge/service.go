package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

// serviceSpec is what every autostart definition starts: this executable
// with this config.
type serviceSpec struct {
	// Exe and Config are absolute paths.
	Exe, Config string
	// PassphraseFile, when set, is the absolute path of the file holding
	// the encrypted token file's passphrase, for the autostart to pass on
	// (see storePassphraseFile).
	PassphraseFile string
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
	if spec.PassphraseFile, err = storePassphraseFile(e, cfg, spec.Config); err != nil {
		return err
	}
	if pos[0] == "install" && spec.PassphraseFile != "" {
		passphraseHint(e, spec.PassphraseFile)
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

// storePassphraseFile returns the file the autostart reads the token
// file's passphrase from when the store is an encrypted file (or will be:
// a passphrase is set now): $BRIDGE_STORE_PASSPHRASE_FILE, else
// store-passphrase next to the config. "" when no passphrase is needed.
func storePassphraseFile(e *env, cfg *config.Config, config string) (string, error) {
	if !strings.EqualFold(strings.TrimSpace(cfg.Store.Backend), "file") {
		return "", nil
	}
	enc, err := tokens.FileEncrypted(cfg.Store.Path)
	if err != nil {
		return "", err
	}
	file := e.getenv(tokens.PassphraseFileEnv)
	if !enc && file == "" && e.getenv(tokens.PassphraseEnv) == "" {
		return "", nil
	}
	if file == "" {
		return filepath.Join(filepath.Dir(config), "store-passphrase"), nil
	}
	abs, err := filepath.Abs(file)
	if err != nil {
		return "", fmt.Errorf("service: %s: %w", tokens.PassphraseFileEnv, err)
	}
	return abs, nil
}

// passphraseHint says what the autostart needs for an encrypted token
// file: the passphrase file, and on systems whose definition cannot pass
// it on, another way.
func passphraseHint(e *env, file string) {
	if runtime.GOOS != "linux" {
		fmt.Fprintf(e.stderr, "warning: the token file is encrypted, and the autostart here does not pass its passphrase on: "+
			"`bridge serve` would stop, naming %s. Use the keyring backend, or give the autostart %s=%s.\n", tokens.PassphraseEnv, tokens.PassphraseFileEnv, file)
		return
	}
	if _, err := os.Stat(file); err != nil {
		fmt.Fprintf(e.stderr, "The token file is encrypted: the service reads its passphrase from %s, which is not there yet.\n"+
			"Create it, readable by you alone, with the passphrase alone on its first line (for example `install -m 600 /dev/null %s`, then edit it); "+
			"or run `%s=FILE bridge service install` with the file you keep it in.\n", file, file, tokens.PassphraseFileEnv)
	}
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
