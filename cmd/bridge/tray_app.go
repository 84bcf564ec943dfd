package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/cmd/bridge/internal/traymodel"
)

// trayApp is the tray's state and actions, apart from drawing: it asks the
// server over the control socket, and runs this program's own commands
// (login, password, doctor) in new processes for the menu's actions.
type trayApp struct {
	e       *env
	cfgPath string
	client  *control.Client
	self    string
	// doctor says whether this build has `bridge doctor`.
	doctor bool
	// poke asks the drawing loop to refresh.
	poke chan struct{}

	mu     sync.Mutex
	notice string
}

// refresh asks the drawing loop to rebuild the menu soon.
func (a *trayApp) refresh() {
	select {
	case a.poke <- struct{}{}:
	default:
	}
}

func (a *trayApp) setNotice(format string, args ...any) {
	a.mu.Lock()
	a.notice = fmt.Sprintf(format, args...)
	a.mu.Unlock()
	a.refresh()
}

// input gathers what the menu shows: the config's accounts (re-read, so a
// new `bridge login` shows up) and the server's status.
func (a *trayApp) input(ctx context.Context) traymodel.Input {
	in := traymodel.Input{Doctor: a.doctor}
	if cfg, err := a.e.loadConfig(); err == nil {
		for _, ac := range cfg.Accounts {
			in.Accounts = append(in.Accounts, strings.ToLower(ac.Email))
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if st, err := a.client.Status(ctx); err == nil {
		in.Server = st
	}
	a.mu.Lock()
	in.Notice = a.notice
	a.mu.Unlock()
	return in
}

// watch follows the server's event stream, refreshing on each event, and
// reconnects (every 5 s) while no server runs.
func (a *trayApp) watch(ctx context.Context) {
	for ctx.Err() == nil {
		err := a.client.Events(ctx, func(bridge.Event) { a.refresh() })
		if ctx.Err() != nil {
			return
		}
		if err != nil && !errors.Is(err, control.ErrNotRunning) {
			a.e.stderrf("tray: event stream: %v\n", err)
		}
		a.refresh()
		select {
		case <-ctx.Done():
		case <-time.After(5 * time.Second):
		}
	}
}

// do runs a menu action; it may take a while, so the caller runs it in a
// goroutine. Quit is the caller's.
func (a *trayApp) do(ctx context.Context, it traymodel.Item) {
	switch it.Action {
	case traymodel.ActionSignIn:
		a.signIn(ctx, it.Account)
	case traymodel.ActionCopyPassword:
		a.copyPassword(ctx, it.Account)
	case traymodel.ActionDiagnose:
		a.diagnose(ctx, it.Account)
	case traymodel.ActionOpenLog:
		a.openLog(ctx)
	}
}

// selfCmd is this program with the tray's config and args.
func (a *trayApp) selfCmd(ctx context.Context, args ...string) *exec.Cmd {
	c := exec.CommandContext(ctx, a.self, append([]string{"--config", a.cfgPath}, args...)...)
	c.WaitDelay = 2 * time.Second
	return c
}

// signIn runs `bridge login EMAIL` in a new process, which opens the
// browser; the server is then told to re-read the tokens.
func (a *trayApp) signIn(ctx context.Context, email string) {
	a.setNotice("Signing in %s: finish in the browser", email)
	c := a.selfCmd(ctx, "login", email)
	// stdout carries the local password; it stays out of the tray.
	c.Stdout = io.Discard
	var errb bytes.Buffer
	c.Stderr = &errb
	if err := c.Run(); err != nil {
		a.setNotice("Sign-in of %s failed: %s", email, lastLine(errb.String(), err))
		return
	}
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := a.client.Reload(rctx); err != nil && !errors.Is(err, control.ErrNotRunning) {
		a.setNotice("%s signed in, but the bridge did not reload: %v", email, err)
		return
	}
	a.setNotice("%s signed in", email)
}

// copyPassword puts the local password on the clipboard, never on screen.
func (a *trayApp) copyPassword(ctx context.Context, email string) {
	tool, ok := clipboardTool(runtime.GOOS, a.e.getenv, lookTool)
	if !ok {
		a.setNotice("No clipboard tool found (install wl-clipboard, xclip or xsel); run `bridge password %s` in a terminal", email)
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	var out, errb bytes.Buffer
	c := a.selfCmd(ctx, "password", email)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Run(); err != nil {
		a.setNotice("No password for %s: %s", email, lastLine(errb.String(), err))
		return
	}
	cp := exec.CommandContext(ctx, tool[0], tool[1:]...)
	cp.Stdin = strings.NewReader(strings.TrimSpace(out.String()))
	// xclip and wl-copy stay behind to serve the selection; no pipes to
	// them, or Wait would wait for that.
	cp.WaitDelay = 2 * time.Second
	if err := cp.Run(); err != nil {
		a.setNotice("Copying failed (%s: %v); run `bridge password %s` in a terminal", tool[0], err, email)
		return
	}
	a.setNotice("Password of %s copied to the clipboard", email)
}

// clipboardTool picks a command that reads the clipboard's new content on
// stdin, for goos; ok is false when none is installed.
func clipboardTool(goos string, getenv func(string) string, look func(string) (string, error)) (argv []string, ok bool) {
	var candidates [][]string
	switch goos {
	case "darwin":
		candidates = [][]string{{"pbcopy"}}
	case "windows":
		candidates = [][]string{{"clip"}}
	default:
		if getenv("WAYLAND_DISPLAY") != "" {
			candidates = append(candidates, []string{"wl-copy"})
		}
		candidates = append(candidates, []string{"xclip", "-selection", "clipboard"}, []string{"xsel", "--clipboard", "--input"})
	}
	for _, c := range candidates {
		if p, err := look(c[0]); err == nil {
			return append([]string{p}, c[1:]...), true
		}
	}
	return nil, false
}

// diagnose runs `bridge doctor EMAIL` and opens its report.
func (a *trayApp) diagnose(ctx context.Context, email string) {
	a.setNotice("Running diagnostics for %s…", email)
	ctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	out, err := a.selfCmd(ctx, "doctor", email).CombinedOutput()
	verdict := "all checks passed"
	if err != nil {
		verdict = "some checks failed"
	}
	path, werr := writeReport("bridge-doctor-"+safeName(email)+".txt", out)
	if werr != nil {
		a.setNotice("Diagnostics for %s: %s (report not saved: %v)", email, verdict, werr)
		return
	}
	a.setNotice("Diagnostics for %s: %s; report in %s", email, verdict, path)
	openFile(ctx, path)
}

// openLog shows the server's recent log: journald's on Linux (where
// `bridge service install` sends it), the LaunchAgent's file on macOS,
// the launcher's (cmd/bridgew) file on Windows.
func (a *trayApp) openLog(ctx context.Context) {
	switch runtime.GOOS {
	case "windows":
		if local, err := localAppData(a.e); err == nil {
			if p := windowsLogFile(local); fileExists(p) {
				openFile(ctx, p)
				return
			}
		}
	case "darwin":
		home, err := homeDir(a.e)
		if err == nil {
			p := filepath.Join(home, "Library", "Logs", "bridge.log")
			if _, err := os.Stat(p); err == nil {
				openFile(ctx, p)
				return
			}
		}
	case "linux":
		if jc, err := lookTool("journalctl"); err == nil {
			out, err := exec.CommandContext(ctx, jc, "--user", "-u", serviceName+".service", "-n", "500", "--no-pager").CombinedOutput()
			if err == nil && len(bytes.TrimSpace(out)) > 0 {
				if p, err := writeReport("bridge-log.txt", out); err == nil {
					openFile(ctx, p)
					return
				}
			}
		}
	}
	a.setNotice("No log file: the bridge logs where it runs (its terminal, or journald after `bridge service install`)")
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeReport saves text under the user cache dir, readable only by the
// user.
func writeReport(name string, text []byte) (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir = filepath.Join(dir, "bridge")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", err
	}
	p := filepath.Join(dir, name)
	return p, os.WriteFile(p, text, 0o600)
}

// openFile opens path with the desktop's viewer, quietly.
func openFile(ctx context.Context, path string) {
	var c *exec.Cmd
	switch runtime.GOOS {
	case "darwin":
		c = exec.CommandContext(ctx, "open", path)
	case "windows":
		c = exec.CommandContext(ctx, "rundll32", "url.dll,FileProtocolHandler", path)
	default:
		c = exec.CommandContext(ctx, "xdg-open", path)
	}
	c.Start()
	go c.Wait()
}

func safeName(s string) string {
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.ToLower(s))
}

// lastLine is the last non-empty line of a command's stderr, or err.
func lastLine(stderr string, err error) string {
	lines := strings.Split(strings.TrimSpace(stderr), "\n")
	if l := strings.TrimSpace(lines[len(lines)-1]); l != "" {
		return strings.TrimPrefix(l, "bridge: ")
	}
	return err.Error()
}

func (e *env) stderrf(format string, a ...any) { fmt.Fprintf(e.stderr, format, a...) }
