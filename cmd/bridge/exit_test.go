package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens"
)

// storeConfig writes a config with a file store and the given account
// blocks, and returns its path and the store.
func storeConfig(t *testing.T, accounts string) (string, tokens.Store) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write(t, path, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n%s", filepath.Join(dir, "tokens.json"), accounts))
	st, err := tokens.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	return path, st
}

// TestLogoutNotConfigured: `logout` of an address the config does not
// have exits 2 and forgets nothing, unless tokens were left behind for it
// (its block removed by hand): those are forgotten.
func TestLogoutNotConfigured(t *testing.T) {
	cfg, st := storeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n")
	for _, e := range []string{"a@b.test", "old@b.test"} {
		if err := st.Put(e, tokens.Entry{RefreshToken: "rt-" + e, Password: "pw-" + e}); err != nil {
			t.Fatal(err)
		}
	}
	rt := t.TempDir()
	for _, args := range [][]string{{"logout", "typo@b.test"}, {"logout", "old@b.test", "--remove"}} {
		out, stderr, code := runIn(context.Background(), rt, append([]string{"--config", cfg}, args...)...)
		if code != 2 || out != "" || stderr != "bridge: no account "+args[1]+" in "+cfg+"\n" {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and only the error", args, code, out, stderr)
		}
	}
	for _, e := range []string{"a@b.test", "old@b.test"} {
		if ent, err := st.Get(e); err != nil || ent.RefreshToken == "" {
			t.Fatalf("%s was forgotten by a refused logout: %v", e, err)
		}
	}
	out, stderr, code := runIn(context.Background(), rt, "--config", cfg, "logout", "old@b.test")
	if code != 0 || !strings.Contains(out, "old@b.test is not in "+cfg+"; forgot the tokens and local password still stored for it") {
		t.Fatalf("logout of leftover tokens: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if _, err := st.Get("old@b.test"); !errors.Is(err, tokens.ErrNotFound) {
		t.Errorf("leftover tokens still stored: %v", err)
	}
	if _, err := st.Get("a@b.test"); err != nil {
		t.Errorf("another account's tokens went too: %v", err)
	}
}

// TestPasswordWithoutSignIn: `password EMAIL` prints a stored password and
// changes nothing; for an account never signed in it makes none and says
// to sign in; --reset makes one on purpose. An account that can sign in
// upstream (its own refresh token, or a delegate's) but has no password
// gets one made, and is told so.
func TestPasswordWithoutSignIn(t *testing.T) {
	cfg, st := storeConfig(t, "[[account]]\nemail = \"new@b.test\"\nclient_id = \"x\"\n\n"+
		"[[account]]\nemail = \"me@b.test\"\nclient_id = \"x\"\n\n"+
		"[[account]]\nemail = \"shared@b.test\"\ntoken_from = \"me@b.test\"\n\n"+
		"[[account]]\nemail = \"orphan@b.test\"\ntoken_from = \"new@b.test\"\n")
	rt := t.TempDir()
	pw := func(args ...string) (string, string, int) {
		return runIn(context.Background(), rt, append([]string{"--config", cfg, "password"}, args...)...)
	}

	out, stderr, code := pw("new@b.test")
	if code != 1 || out != "" || !strings.Contains(stderr, "new@b.test is not signed in: `bridge login new@b.test` signs it in and prints its local password (`bridge password new@b.test --reset` makes a password without signing in)") {
		t.Errorf("never signed in: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	out, stderr, code = pw("orphan@b.test")
	if code != 1 || out != "" || !strings.Contains(stderr, "orphan@b.test uses the sign-in of new@b.test, which is not signed in: run `bridge login new@b.test` first") {
		t.Errorf("delegate never signed in: exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, e := range []string{"new@b.test", "orphan@b.test"} {
		if _, err := st.Get(e); !errors.Is(err, tokens.ErrNotFound) {
			t.Errorf("a refused `password %s` stored something: %v", e, err)
		}
	}

	made, stderr, code := pw("new@b.test", "--reset")
	if code != 0 || strings.Count(made, "\n") != 1 || len(made) < 20 || !strings.Contains(stderr, "once signed in: new@b.test is not signed in") {
		t.Fatalf("--reset: exit %d, stdout %q, stderr %q", code, made, stderr)
	}
	if again, stderr, code := pw("new@b.test"); code != 0 || again != made || strings.Contains(stderr, "made") {
		t.Errorf("the password made by --reset: exit %d, %q (stderr %q), want %q again", code, again, stderr, made)
	}

	if err := st.Put("me@b.test", tokens.Entry{RefreshToken: "rt"}); err != nil {
		t.Fatal(err)
	}
	for _, e := range []string{"me@b.test", "shared@b.test"} {
		out, stderr, code := pw(e)
		ent, err := st.Get(e)
		if code != 0 || err != nil || out != ent.Password+"\n" || ent.Password == "" || !strings.HasSuffix(stderr, "\nno local password was stored for "+e+"; made one\n") {
			t.Errorf("%s, signed in without a password: exit %d, stdout %q, stderr %q; stored %+v, %v", e, code, out, stderr, ent.Password != "", err)
		}
	}
	if ent, _ := st.Get("me@b.test"); ent.RefreshToken != "rt" {
		t.Error("making the password lost the refresh token")
	}
}

// TestFlagMistakes: --config after the command says where it goes; an
// unknown flag names the command once and how to list its flags.
func TestFlagMistakes(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--config", "x.toml"}, "bridge serve: --config goes before the command: bridge --config FILE serve\n"},
		{[]string{"status", "--config=x.toml", "--json"}, "bridge status: --config goes before the command: bridge --config FILE status\n"},
		{[]string{"check-config", "-config", "x.toml"}, "bridge check-config: --config goes before the command: bridge --config FILE check-config\n"},
		{[]string{"status", "--bogus"}, "bridge status: flag provided but not defined: -bogus (run `bridge status -h`)\n"},
	} {
		out, stderr, code := runCmd(t, context.Background(), tc.args...)
		if code != 2 || out != "" || stderr != tc.want {
			t.Errorf("%v: exit %d, stdout %q, stderr %q; want exit 2 and %q", tc.args, code, out, stderr, tc.want)
		}
	}
}
