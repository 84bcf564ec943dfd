package bridge

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// wait blocks until no command runs; only for tests, which send no events
// meanwhile.
func (n *Notifier) wait() { n.wg.Wait() }

func needShell(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh in PATH to run the notify command")
	}
}

// notifyScript returns a command that appends one line per run to a file:
// the three variables, separated by '|'.
func notifyScript(t *testing.T) (command, out string) {
	dir := t.TempDir()
	out = filepath.Join(dir, "runs.txt")
	script := filepath.Join(dir, "notify.sh")
	body := "#!/bin/sh\nprintf '%s|%s|%s\\n' \"$BRIDGE_ACCOUNT\" \"$BRIDGE_ID\" \"$BRIDGE_TEXT\" >> \"$1\"\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return "sh '" + script + "' '" + out + "'", out
}

func readRuns(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

func newNotifyBridge(t *testing.T, n *Notifier) (*Bridge, *Account, *[]Event) {
	t.Helper()
	st, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Account{Email: "a@example.com", Mailbox: "a@example.com", Provider: tokens.Microsoft("organizations"), Tenant: "organizations", ClientID: "c"}
	var mu sync.Mutex
	var events []Event
	b, err := New(Options{Accounts: []*Account{a}, Store: st, OnEvent: func(ev Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
		n.Notify(ev)
	}})
	if err != nil {
		t.Fatal(err)
	}
	return b, a, &events
}

var smtpOff = &diag.Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.139",
	Text: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}

func TestNotifyOncePerStateChange(t *testing.T) {
	needShell(t)
	command, out := notifyScript(t)
	n := NewNotifier(NotifyOptions{Command: command})
	defer n.Close()
	b, a, events := newNotifyBridge(t, n)

	// The same refusal on every connection: one notice.
	var d diag.Diagnosis
	for range 5 {
		d = b.Record(a, SMTP, smtpOff)
		n.wait()
	}
	if runs := readRuns(t, out); len(runs) != 1 {
		t.Fatalf("%d runs after five identical refusals, want 1: %q", len(runs), runs)
	}
	// A wrong local password is the client's mistake, not a state change.
	b.Record(a, IMAP, ErrAuthFailed)
	n.wait()
	// Sign-in needed: a new state, a second notice.
	dl := b.Record(a, IMAP, tokens.ErrNeedsLogin)
	n.wait()
	b.Record(a, IMAP, tokens.ErrNeedsLogin)
	n.wait()
	// Recovery: an event, but no notice.
	b.Record(a, IMAP, nil)
	b.Record(a, SMTP, nil)
	n.wait()
	// Refused again after recovering: a third notice.
	b.Record(a, SMTP, smtpOff)
	n.wait()

	runs := readRuns(t, out)
	want := []string{d.ID, dl.ID, d.ID}
	if len(runs) != len(want) {
		t.Fatalf("runs %q, want %d (ids %v)", runs, len(want), want)
	}
	for i, r := range runs {
		f := strings.SplitN(r, "|", 3)
		if len(f) != 3 || f[0] != "a@example.com" || f[1] != want[i] || f[1] == "" {
			t.Errorf("run %d: %q, want account a@example.com and id %q", i, r, want[i])
			continue
		}
		if !strings.Contains(f[2], "a@example.com") || !strings.Contains(f[2], strings.TrimSuffix(d.Title, ".")) && i != 1 {
			t.Errorf("run %d: BRIDGE_TEXT %q does not name the account and the problem", i, f[2])
		}
	}
	if dl.ID != "token-needs-login" {
		t.Errorf("needs-login diagnosis %q, want token-needs-login", dl.ID)
	}
	if got := len(*events); got != 4 {
		t.Errorf("%d events, want 4 (refused, needs sign-in, recovered, refused): %+v", got, *events)
	}
}

func TestNotifyNeverBlocksAndSerialisesPerAccount(t *testing.T) {
	needShell(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "log")
	// Each run writes start and end around a pause; overlapping runs of
	// one account would interleave them.
	command := "echo start $BRIDGE_ID >> '" + out + "'; sleep 0.3; echo end $BRIDGE_ID >> '" + out + "'"
	n := NewNotifier(NotifyOptions{Command: command})
	defer n.Close()
	ev := func(id string) Event {
		return Event{Account: "a@example.com", Diagnosis: diag.Diagnosis{ID: id, Kind: diag.KindAdmin, Title: "t"}}
	}
	start := time.Now()
	n.Notify(ev("one"))
	n.Notify(ev("two"))   // waits for one
	n.Notify(ev("three")) // replaces two
	// Blocking would wait out the 0.3 s run of "one".
	if took := time.Since(start); took > 250*time.Millisecond {
		t.Errorf("Notify blocked for %v", took)
	}
	n.wait()
	b, _ := os.ReadFile(out)
	if got, want := strings.Fields(string(b)), []string{"start", "one", "end", "one", "start", "three", "end", "three"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("runs %q, want %q", got, want)
	}
	// Temporary failures and recoveries never notify.
	n.Notify(Event{Account: "a@example.com", Diagnosis: diag.Diagnosis{ID: "upstream-unreachable", Kind: diag.KindTemporary}})
	n.Notify(Event{Account: "a@example.com"})
	n.wait()
	if b2, _ := os.ReadFile(out); len(b2) != len(b) {
		t.Errorf("a temporary failure or recovery ran the command: %q", b2[len(b):])
	}
}

func TestNotifyTimeoutKills(t *testing.T) {
	needShell(t)
	n := NewNotifier(NotifyOptions{Command: "exec sleep 20", Timeout: 200 * time.Millisecond})
	defer n.Close()
	start := time.Now()
	n.Notify(Event{Account: "a@example.com", Diagnosis: diag.Diagnosis{ID: "x", Kind: diag.KindUser}})
	n.wait()
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("a command past its limit ran for %v", took)
	}
}

// The notify command gets PATH, HOME and the event, never the store's
// passphrase or anything else the bridge was started with.
func TestNotifyCleanEnvironment(t *testing.T) {
	needShell(t)
	dir := t.TempDir()
	out := filepath.Join(dir, "env.txt")
	n := NewNotifier(NotifyOptions{Command: "env > '" + out + "'"})
	defer n.Close()
	b, a, _ := newNotifyBridge(t, n)
	// Set after the store is open: the store itself reads these.
	t.Setenv("BRIDGE_STORE_PASSPHRASE", "do-not-pass-this-on")
	t.Setenv("BRIDGE_STORE_PASSPHRASE_FILE", "/run/credentials/bridge/passphrase")
	t.Setenv("SOME_SERVICE_SECRET", "nor-this")
	b.Record(a, SMTP, smtpOff)
	n.wait()
	raw, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{}
	for _, l := range strings.Split(string(raw), "\n") {
		if k, v, ok := strings.Cut(l, "="); ok {
			env[k] = v
		}
	}
	for _, k := range []string{"BRIDGE_STORE_PASSPHRASE", "BRIDGE_STORE_PASSPHRASE_FILE", "SOME_SERVICE_SECRET"} {
		if _, ok := env[k]; ok {
			t.Errorf("the notify command inherited %s", k)
		}
	}
	if strings.Contains(string(raw), "do-not-pass-this-on") || strings.Contains(string(raw), "nor-this") {
		t.Error("a secret value reached the notify command's environment")
	}
	if env["PATH"] != os.Getenv("PATH") {
		t.Errorf("PATH %q, want the bridge's %q", env["PATH"], os.Getenv("PATH"))
	}
	if h, ok := os.LookupEnv("HOME"); ok && env["HOME"] != h {
		t.Errorf("HOME %q, want %q", env["HOME"], h)
	}
	if env["BRIDGE_ACCOUNT"] != "a@example.com" || env["BRIDGE_ID"] == "" || env["BRIDGE_TEXT"] == "" {
		t.Errorf("event variables missing: account %q id %q text %q", env["BRIDGE_ACCOUNT"], env["BRIDGE_ID"], env["BRIDGE_TEXT"])
	}
}
