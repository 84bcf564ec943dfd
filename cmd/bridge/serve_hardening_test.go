package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/zalando/go-keyring"
)

// TestServeKeyringUnavailable: with the keyring backend and no keyring,
// `bridge serve` stops at once with exit 1 and names the file backend.
func TestServeKeyringUnavailable(t *testing.T) {
	keyring.MockInitWithError(errors.New("The name org.freedesktop.secrets was not provided by any .service files"))
	t.Cleanup(keyring.MockInit)
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("[listen]\nimap = \"127.0.0.1:0\"\nsmtp = \"\"\npop3 = \"\"\n\n[store]\nbackend = \"keyring\"\n\n[tls]\ncert_file = %q\nkey_file = %q\n\n[[account]]\nemail = \"a@example.com\"\nclient_id = \"x\"\n",
		filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runIn(context.Background(), t.TempDir(), "--config", cfg, "serve")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr: %s", code, stderr)
	}
	for _, want := range []string{"keyring is unreachable", `backend = "file"`, "org.freedesktop.secrets"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not say %q", stderr, want)
		}
	}
}

// TestReloadKeepsConfigWhenInvalid: a config file broken before a SIGHUP
// leaves the running config in place and logs why; a good one is applied.
func TestReloadKeepsConfigWhenInvalid(t *testing.T) {
	dir := t.TempDir()
	path := liveConfig(t, dir, "a@example.com", "b@example.com")
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	level := new(slog.LevelVar)
	e := &env{stdout: &logs, stderr: &logs, getenv: func(string) string { return "" }, configPath: path}
	cfg, err := e.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := newServer(cfg, st, log, nil)
	if err != nil {
		t.Fatal(err)
	}
	emails := func() string {
		var l []string
		for _, a := range srv.Bridge().Accounts() {
			l = append(l, a.Email)
		}
		sort.Strings(l)
		return strings.Join(l, ",")
	}
	if got := emails(); got != "a@example.com,b@example.com" {
		t.Fatalf("accounts %q", got)
	}

	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{
		string(good) + "\n[[account]]\nemial = \"c@example.com\"\n",
		string(good) + "\n[[account\n",
		strings.Replace(string(good), `backend = "file"`, `backend = "floppy"`, 1),
	} {
		if err := os.WriteFile(path, []byte(bad), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := reload(e, srv, log, level); err == nil {
			t.Errorf("an invalid config was applied:\n%s", bad)
		}
		if got := emails(); got != "a@example.com,b@example.com" {
			t.Errorf("accounts after a failed reload: %q", got)
		}
	}
	// A deleted file is refused as `bridge serve` refuses it, rather
	// than read as a config without accounts.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	if _, err := reload(e, srv, log, level); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Errorf("reload of a deleted config: %v", err)
	}
	if got := emails(); got != "a@example.com,b@example.com" {
		t.Errorf("accounts after a reload of a deleted config: %q", got)
	}
	if n := strings.Count(logs.String(), "config reload failed; keeping the previous config"); n != 4 {
		t.Errorf("%d failed reloads logged, want 4:\n%s", n, logs.String())
	}

	fixed := strings.Replace(string(good), "b@example.com", "c@example.com", 1)
	if err := os.WriteFile(path, []byte(fixed), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := reload(e, srv, log, level); err != nil {
		t.Fatalf("a good config was refused: %v", err)
	}
	if got := emails(); got != "a@example.com,c@example.com" {
		t.Errorf("accounts after a good reload: %q", got)
	}
}
