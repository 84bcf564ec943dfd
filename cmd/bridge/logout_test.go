package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

// TestLogoutRemove: `logout EMAIL --remove` forgets the account's tokens and
// deletes its [[account]] block with the comment above it; the other
// accounts, their comments and their tokens stay. A removal that would leave
// the config invalid changes nothing.
func TestLogoutRemove(t *testing.T) {
	dir := t.TempDir()
	body := fmt.Sprintf(`[store]
backend = "file"
path = %q

# first
[[account]]
email = "a@b.test"
client_id = "x"

# second, to be removed
[[account]]
email = "b@b.test"
client_id = "x"

# third, reads with a's tokens
[[account]]
email = "c@b.test"
token_from = "a@b.test"
`, filepath.Join(dir, "tokens.json"))
	path := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"a@b.test", "b@b.test"} {
		if err := st.Put(e, tokens.Entry{RefreshToken: "rt-" + e, Password: "pw-" + e}); err != nil {
			t.Fatal(err)
		}
	}
	rt := t.TempDir()

	out, stderr, code := runIn(context.Background(), rt, "--config", path, "logout", "B@b.test", "--remove")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr: %s", code, stderr)
	}
	if !strings.Contains(out, "removed its [[account]] block") {
		t.Errorf("stdout %q does not say the block was removed", out)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	text := string(data)
	if strings.Contains(text, "b@b.test") || strings.Contains(text, "# second") {
		t.Errorf("the block or its comment is still there:\n%s", text)
	}
	for _, want := range []string{"# first", "# third, reads with a's tokens", `email = "a@b.test"`, `email = "c@b.test"`} {
		if !strings.Contains(text, want) {
			t.Errorf("config lost %q:\n%s", want, text)
		}
	}
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Accounts) != 2 || cfg.Accounts[0].Email != "a@b.test" || cfg.Accounts[1].Email != "c@b.test" {
		t.Errorf("accounts after removal: %+v", cfg.Accounts)
	}
	if _, err := st.Get("b@b.test"); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("b's tokens: %v, want not found", err)
	}
	if ent, err := st.Get("a@b.test"); err != nil || ent.RefreshToken != "rt-a@b.test" {
		t.Errorf("a's tokens were touched: %v", err)
	}

	// c borrows a's tokens, so a's block cannot go: exit 2, file and tokens
	// as they were.
	_, stderr, code = runIn(context.Background(), rt, "--config", path, "logout", "a@b.test", "--remove")
	if code != 2 || !strings.Contains(stderr, "token_from") {
		t.Errorf("removing a borrowed-from account: exit %d, stderr %q; want 2 naming token_from", code, stderr)
	}
	if after, _ := os.ReadFile(path); string(after) != text {
		t.Errorf("a refused removal changed the config:\n%s", after)
	}
	if _, err := st.Get("a@b.test"); err != nil {
		t.Errorf("a refused removal forgot the tokens: %v", err)
	}

	// An account the config lacks is a usage error and forgets nothing.
	if _, _, code := runIn(context.Background(), rt, "--config", path, "logout", "b@b.test", "--remove"); code != 2 {
		t.Errorf("removing an absent account: exit %d, want 2", code)
	}
}
