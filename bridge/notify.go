package bridge

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// NotifyOptions configure a Notifier.
type NotifyOptions struct {
	// Command is the [notify] command, run through the shell; "" runs
	// nothing.
	Command string
	// Timeout bounds one run; the command is killed after it. 0 is 30 s.
	Timeout time.Duration
	// Logger receives what the command printed when it fails; nil
	// discards it.
	Logger *slog.Logger
}

// Notifier runs the [notify] command when an account needs a person: a new
// sign-in, or a protocol the server refuses. It is fed Bridge events, which
// come once per change of an account's state, never once per connection.
// Runs happen in the background so the login path never waits, and at most
// one runs per account at a time; events that arrive meanwhile collapse
// into the latest, which runs next.
type Notifier struct {
	timeout time.Duration
	log     *slog.Logger
	ctx     context.Context
	cancel  context.CancelFunc
	wg      sync.WaitGroup

	mu      sync.Mutex
	command string
	closed  bool
	busy    map[string]bool  // accounts with a run in progress
	pending map[string]Event // the next run per busy account
}

// NewNotifier returns a Notifier. It does no I/O.
func NewNotifier(o NotifyOptions) *Notifier {
	if o.Timeout <= 0 {
		o.Timeout = 30 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Notifier{timeout: o.Timeout, log: o.Logger, ctx: ctx, cancel: cancel,
		command: o.Command, busy: map[string]bool{}, pending: map[string]Event{}}
}

// SetCommand replaces the command (a config reload); runs in progress
// finish with the old one.
func (n *Notifier) SetCommand(command string) {
	n.mu.Lock()
	n.command = command
	n.mu.Unlock()
}

// NeedsAttention reports whether ev asks a person to act: the account needs
// sign-in or a protocol was refused. Recoveries and temporary failures
// (throttling, an unreachable server) pass without a notice.
func NeedsAttention(ev Event) bool {
	return ev.Diagnosis.ID != "" && ev.Diagnosis.Kind != diag.KindTemporary
}

// Notify starts the command for ev when it needs attention. It never
// blocks; a recovery cancels a notice still waiting for its turn.
func (n *Notifier) Notify(ev Event) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed || n.command == "" {
		return
	}
	if !NeedsAttention(ev) {
		delete(n.pending, ev.Account)
		return
	}
	if n.busy[ev.Account] {
		n.pending[ev.Account] = ev
		return
	}
	n.busy[ev.Account] = true
	n.wg.Add(1)
	go n.loop(ev, n.command)
}

// loop runs ev, then whatever became pending for its account meanwhile.
func (n *Notifier) loop(ev Event, command string) {
	defer n.wg.Done()
	for {
		n.run(ev, command)
		n.mu.Lock()
		next, ok := n.pending[ev.Account]
		if !ok || n.closed || n.command == "" {
			delete(n.busy, ev.Account)
			delete(n.pending, ev.Account)
			n.mu.Unlock()
			return
		}
		delete(n.pending, ev.Account)
		command = n.command
		n.mu.Unlock()
		ev = next
	}
}

// EventText is the sentence BRIDGE_TEXT carries, on one line so scripts
// can log it as is.
func EventText(ev Event) string {
	d := ev.Diagnosis
	where := ev.Account
	if ev.Proto != "" {
		where += " (" + strings.ToUpper(string(ev.Proto)) + ")"
	}
	text := where + ": " + strings.TrimSuffix(d.Title, ".") + "."
	if d.Fix != "" {
		text += " " + d.Fix
	}
	return strings.Join(strings.Fields(text), " ")
}

func (n *Notifier) run(ev Event, command string) {
	ctx, cancel := context.WithTimeout(n.ctx, n.timeout)
	defer cancel()
	var c *exec.Cmd
	if runtime.GOOS == "windows" {
		c = exec.CommandContext(ctx, "cmd", "/C", command)
	} else {
		c = exec.CommandContext(ctx, "sh", "-c", command)
	}
	c.Env = append(notifyEnv(),
		"BRIDGE_ACCOUNT="+ev.Account,
		"BRIDGE_ID="+ev.Diagnosis.ID,
		"BRIDGE_TEXT="+EventText(ev))
	out := &capped{max: 2048}
	c.Stdout, c.Stderr = out, out
	// A child the shell started may keep the output pipe open after the
	// shell was killed; stop waiting for it.
	c.WaitDelay = 2 * time.Second
	start := time.Now()
	err := c.Run()
	switch {
	case ctx.Err() == context.DeadlineExceeded:
		n.log.Warn("notify command killed after the time limit", "account", ev.Account, "id", ev.Diagnosis.ID, "limit", n.timeout)
	case err != nil:
		n.log.Warn("notify command failed", "account", ev.Account, "id", ev.Diagnosis.ID, "err", err, "output", out.String())
	default:
		n.log.Info("notify command ran", "account", ev.Account, "id", ev.Diagnosis.ID, "took", time.Since(start).Round(time.Millisecond))
	}
}

// notifyKeep is what the notify command inherits of the bridge's own
// environment: enough to find programs, reach the desktop session and write
// in the user's language. Everything else stays behind, above all
// BRIDGE_STORE_PASSPHRASE and whatever else a service manager handed the
// bridge.
var notifyKeep = []string{
	"PATH", "HOME", "USER", "LOGNAME", "SHELL", "LANG", "LC_ALL", "LC_CTYPE", "LC_MESSAGES", "TZ", "TMPDIR",
	"DISPLAY", "WAYLAND_DISPLAY", "XDG_RUNTIME_DIR", "DBUS_SESSION_BUS_ADDRESS",
	// Windows needs these to start cmd.exe and most programs.
	"SYSTEMROOT", "SystemRoot", "COMSPEC", "ComSpec", "PATHEXT", "WINDIR", "windir",
	"USERPROFILE", "APPDATA", "LOCALAPPDATA", "TEMP", "TMP",
}

// notifyEnv returns the notify command's inherited environment.
func notifyEnv() []string {
	var env []string
	for _, k := range notifyKeep {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	return env
}

// Close drops waiting notices, gives running commands a few seconds, kills
// what is left and waits for it.
func (n *Notifier) Close() {
	n.mu.Lock()
	n.closed = true
	clear(n.pending)
	n.mu.Unlock()
	idle := make(chan struct{})
	go func() { n.wg.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-time.After(5 * time.Second):
		n.cancel()
		<-idle
	}
	n.cancel()
}

// capped keeps the first max bytes written to it, for the log.
type capped struct {
	mu  sync.Mutex
	max int
	b   strings.Builder
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if room := c.max - c.b.Len(); room > 0 {
		c.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

func (c *capped) String() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return fmt.Sprintf("%q", c.b.String())
}
