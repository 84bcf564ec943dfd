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

// runWithStdin runs the command line in process with stdin and no running
// server, and returns stdout, stderr and the exit code.
func runWithStdin(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	rt := t.TempDir()
	var out, errb syncBuffer
	getenv := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return ""
	}
	err := run(context.Background(), args, &env{stdin: strings.NewReader(stdin), stdout: &out, stderr: &errb, getenv: getenv})
	code := report(&errb, err)
	return out.String(), errb.String(), code
}

// TestProxyPassword: `bridge proxy-password` stores the password of the
// user in [network] proxy, and `bridge proxy-password EMAIL` the one of
// the account's own proxy, under the store key the bridge reads; the
// password is never printed. --forget deletes it.
func TestProxyPassword(t *testing.T) {
	dir := t.TempDir()
	storePath := filepath.Join(dir, "tokens.json")
	cfg := writeConfig(t, fmt.Sprintf(`[store]
backend = "file"
path = %q

[network]
proxy = "http://ann@127.0.0.1:3128"

[[account]]
email = "a@b.test"
client_id = "x"
proxy = "socks5://bob@10.0.0.1:1080"

[[account]]
email = "c@b.test"
client_id = "x"
proxy = "direct"
`, storePath))
	st, err := tokens.NewFileStore(storePath)
	if err != nil {
		t.Fatal(err)
	}
	stored := func(key string) string {
		e, err := st.Get(key)
		if err != nil && !errors.Is(err, tokens.ErrNotFound) {
			t.Fatal(err)
		}
		return e.Password
	}

	out, stderr, code := runWithStdin(t, "pr0xy-s3cret\n", "--config", cfg, "proxy-password")
	if code != 0 || !strings.Contains(out, "Stored the password of proxy user ann at 127.0.0.1:3128 in the file store") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	if got := stored("proxy:ann@127.0.0.1:3128"); got != "pr0xy-s3cret" {
		t.Errorf("stored %q", got)
	}
	if strings.Contains(out+stderr, "pr0xy-s3cret") {
		t.Error("the password was printed")
	}

	if _, stderr, code := runWithStdin(t, "b0b-s3cret", "--config", cfg, "proxy-password", "A@b.test"); code != 0 {
		t.Fatalf("account proxy: exit %d, stderr %q", code, stderr)
	}
	if got := stored("proxy:bob@10.0.0.1:1080"); got != "b0b-s3cret" {
		t.Errorf("account proxy: stored %q", got)
	}

	for _, c := range []struct {
		stdin string
		args  []string
		code  int
		want  string
	}{
		{"x\n", []string{"proxy-password", "c@b.test"}, 2, "names no proxy"},
		{"x\n", []string{"proxy-password", "who@b.test"}, 2, "no account who@b.test"},
		{"", []string{"proxy-password"}, 1, "no password given"},
		{"x\n", []string{"proxy-password", "a@b.test", "c@b.test"}, 2, "usage: bridge proxy-password [EMAIL] [--forget]"},
	} {
		if _, stderr, code := runWithStdin(t, c.stdin, append([]string{"--config", cfg}, c.args...)...); code != c.code || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q; want %d and %q", c.args, code, stderr, c.code, c.want)
		}
	}

	if _, stderr, code := runWithStdin(t, "", "--config", cfg, "proxy-password", "--forget"); code != 0 {
		t.Fatalf("--forget: exit %d, stderr %q", code, stderr)
	}
	if got := stored("proxy:ann@127.0.0.1:3128"); got != "" {
		t.Errorf("--forget left %q", got)
	}
	if got := stored("proxy:bob@10.0.0.1:1080"); got != "b0b-s3cret" {
		t.Errorf("--forget of [network] proxy took the account's too: %q", got)
	}
}

// TestCheckConfigWarnsOfProxyPassword: a password written in a proxy URL
// works, but check-config warns, naming the key and the command that
// stores it instead, without showing it.
func TestCheckConfigWarnsOfProxyPassword(t *testing.T) {
	cfg := writeConfig(t, `[network]
proxy = "http://ann:pr0xy-s3cret@proxy.corp:3128"

[[account]]
email = "a@b.test"
client_id = "x"
proxy = "socks5://bob:b0b-s3cret@10.0.0.1:1080"
`)
	out, stderr, code := runWithStdin(t, "", "--config", cfg, "check-config")
	if code != 0 || !strings.Contains(out, "ok (1 account, 2 warnings)") {
		t.Fatalf("exit %d, stdout %q, stderr %q", code, out, stderr)
	}
	for _, want := range []string{"network.proxy: the proxy password is written in the config; keep http://ann@proxy.corp:3128 here and store the password with `bridge proxy-password`",
		"account[0].proxy: the proxy password is written in the config; keep socks5://bob@10.0.0.1:1080 here and store the password with `bridge proxy-password a@b.test`"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(out+stderr, "s3cret") {
		t.Errorf("a proxy password was printed:\n%s", stderr)
	}
}
