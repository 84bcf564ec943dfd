package main

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// TestServeEncryptedStoreNeedsItsPassphrase: with an encrypted token file
// and no passphrase, or a wrong one, `bridge serve` exits 1 within
// seconds, naming BRIDGE_STORE_PASSPHRASE, and never calls the file
// unencrypted; the passphrase from BRIDGE_STORE_PASSPHRASE_FILE works.
func TestServeEncryptedStoreNeedsItsPassphrase(t *testing.T) {
	dir := t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")
	t.Setenv(tokens.PassphraseFileEnv, "")
	t.Setenv(tokens.PassphraseEnv, "correct horse")
	st, err := tokens.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("a@example.com", tokens.Entry{RefreshToken: "rt", Password: "pw"}); err != nil {
		t.Fatal(err)
	}

	for _, pass := range []string{"", "wrong horse"} {
		t.Setenv(tokens.PassphraseEnv, pass)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		start := time.Now()
		_, stderr, code := runIn(ctx, t.TempDir(), "--config", cfg, "serve")
		cancel()
		if code != 1 {
			t.Errorf("passphrase %q: exit %d, want 1; stderr: %s", pass, code, stderr)
		}
		if took := time.Since(start); took > 20*time.Second {
			t.Errorf("passphrase %q: serve took %v to stop", pass, took)
		}
		if !strings.Contains(stderr, tokens.PassphraseEnv) {
			t.Errorf("passphrase %q: stderr does not name %s: %s", pass, tokens.PassphraseEnv, stderr)
		}
		if strings.Contains(stderr, "UNENCRYPTED") {
			t.Errorf("passphrase %q: an encrypted file was called unencrypted: %s", pass, stderr)
		}
	}

	t.Setenv(tokens.PassphraseEnv, "")
	passFile := filepath.Join(dir, "store-passphrase")
	if err := os.WriteFile(passFile, []byte("correct horse\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv(tokens.PassphraseFileEnv, passFile)
	// The server's start-up, without polling its control socket: every
	// `bridge status` would derive the file's key again, which takes
	// seconds under the race detector on a busy machine.
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, configPath: cfg}
	c, err := e.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	opened, err := openStore(c, io.Discard)
	if err == nil {
		err = opened.(interface{ Check() error }).Check()
	}
	if err == nil {
		_, err = newServer(c, opened, slog.New(slog.DiscardHandler), nil)
	}
	if err != nil {
		t.Errorf("with the passphrase from %s: %v", tokens.PassphraseFileEnv, err)
	}
}
