package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// syncBuffer is a bytes.Buffer safe to read while a command writes to it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs the command line in process and returns stdout, stderr and
// the exit code main would use.
func runCmd(t *testing.T, ctx context.Context, args ...string) (string, string, int) {
	t.Helper()
	var out, errb syncBuffer
	err := run(ctx, args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
	code := report(&errb, err)
	return out.String(), errb.String(), code
}

func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestCheckConfigMisspeltKey(t *testing.T) {
	cfg := writeConfig(t, "[listen]\nimap = \"127.0.0.1:1143\"\n\n[[account]]\nemail = \"a@b.test\"\nclinet_id = \"x\"\n")
	_, stderr, code := runCmd(t, context.Background(), "--config", cfg, "check-config")
	if code != 2 {
		t.Fatalf("exit code %d, want 2; stderr: %s", code, stderr)
	}
	for _, want := range []string{"clinet_id", ":6", "client_id"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q does not mention %q", stderr, want)
		}
	}
}

func TestCheckConfigOK(t *testing.T) {
	cfg := writeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclient_id = \"x\"\n")
	out, stderr, code := runCmd(t, context.Background(), "--config", cfg, "check-config")
	if code != 0 || !strings.Contains(out, "ok (1 account)") {
		t.Fatalf("code %d, out %q, stderr %q", code, out, stderr)
	}
}

func TestUsageErrors(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"password"}, {"login"}, {"status", "extra"}} {
		_, _, code := runCmd(t, context.Background(), args...)
		if code != 2 {
			t.Errorf("%v: exit code %d, want 2", args, code)
		}
	}
}

func TestLoginWithoutClientIDExplains(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	_, stderr, code := runCmd(t, context.Background(), "--config", cfg, "login", "a@b.test", "--no-browser")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"http://localhost", "Allow public client flows", "IMAP.AccessAsUser.All", "SMTP.Send", "--client-id", "consumers"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("help does not mention %q", want)
		}
	}
	if _, err := os.Stat(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config written although login refused: %v", err)
	}
}

// TestLoginPasswordStatus signs an account in against the in-process
// identity platform with --no-browser, playing the browser, then checks
// that `password` prints the same password and `status` lists the account.
func TestLoginPasswordStatus(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("# my settings\n[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nprovider = \"custom\"\nclient_id = \"app\"\nauth_url = %q\ntoken_url = %q\nimap = \"127.0.0.1:1\"\nsmtp = \"127.0.0.1:1\"\npop3 = \"127.0.0.1:1\"\nscopes = [\"https://outlook.office.com/IMAP.AccessAsUser.All\", \"offline_access\"]\n",
		filepath.Join(dir, "tokens.json"), idp.AuthURL("common"), idp.TokenURL("common"))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"--config", cfg, "login", "a@b.test", "--no-browser"}, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
		done <- report(&errb, err)
	}()
	urlRE := regexp.MustCompile(`(?m)^(http://\S+)$`)
	var signIn string
	for deadline := time.Now().Add(10 * time.Second); signIn == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			signIn = m[1]
		}
	}
	if signIn == "" {
		t.Fatalf("no sign-in URL alone on a line; stdout %q stderr %q", out.String(), errb.String())
	}
	if !strings.HasPrefix(signIn, idp.AuthURL("common")) || !strings.Contains(signIn, "login_hint=a%40b.test") {
		t.Errorf("sign-in URL %q", signIn)
	}
	resp, err := http.Get(signIn) // follows the redirect back to the loopback listener
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the authorization code: keep it out of the output
		}
		t.Fatalf("following the sign-in redirect: %v", err)
	}
	page := new(bytes.Buffer)
	page.ReadFrom(resp.Body)
	resp.Body.Close()
	if !strings.Contains(strings.ToLower(page.String()), "close") {
		t.Errorf("landing page does not say the tab may be closed: %q", page.String())
	}
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatal("login did not finish")
	}
	if code != 0 {
		t.Fatalf("login exit %d; stderr %s", code, errb.String())
	}
	m := regexp.MustCompile(`password\s+(\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no password in login output %q", out.String())
	}
	// The certificate names localhost, and some clients match only names.
	for _, want := range []string{"IMAP   server localhost  port 1143", "SMTP   server localhost  port 1587", "localhost is 127.0.0.1", "a@b.test"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("client settings lack %q", want)
		}
	}
	conf, _ := os.ReadFile(cfg)
	if !strings.HasPrefix(string(conf), "# my settings\n") {
		t.Errorf("login did not keep the config's comment: %q", conf)
	}

	pw, stderr, code := runCmd(t, ctx, "--config", cfg, "password", "a@b.test")
	if code != 0 || strings.TrimSpace(pw) != m[1] || strings.Count(pw, "\n") != 1 {
		t.Fatalf("password printed %q (exit %d, %s), want %q alone on a line", pw, code, stderr, m[1])
	}
	st, stderr, code := runCmd(t, ctx, "--config", cfg, "status", "--json")
	if code != 0 {
		t.Fatalf("status exit %d: %s", code, stderr)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(st), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Accounts) != 1 || doc.Accounts[0].Email != "a@b.test" || !doc.Accounts[0].SignedIn || doc.Accounts[0].TokenUpdated.IsZero() {
		t.Fatalf("status: %+v", doc)
	}
	text, _, _ := runCmd(t, ctx, "--config", cfg, "status")
	if !strings.Contains(text, "a@b.test") || !strings.Contains(text, "signed in") {
		t.Errorf("status text %q", text)
	}
	// The output never shows a token.
	if strings.Contains(out.String()+errb.String()+st+text, idp.LatestRefresh("a@b.test")) {
		t.Error("a refresh token reached the output")
	}
}

// TestStatusShowsExpiredSignIn: the identity platform answers invalid_grant
// with AADSTS700082 to a refresh; the account is marked needs-login and
// `bridge status` says what it means and what to run.
func TestStatusShowsExpiredSignIn(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nprovider = \"custom\"\nclient_id = \"app\"\nauth_url = %q\ntoken_url = %q\nimap = \"127.0.0.1:1\"\nsmtp = \"127.0.0.1:1\"\n",
		filepath.Join(dir, "tokens.json"), idp.AuthURL("common"), idp.TokenURL("common"))
	if err := os.WriteFile(cfgPath, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	e := &env{configPath: cfgPath, stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }}
	cfg, err := e.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	_, rt, _ := idp.Issue("a@b.test")
	if err := st.Put("a@b.test", tokens.Entry{RefreshToken: rt, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	idp.FailNext(1, tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity. The token was issued on 2026-08-01 and was inactive for 90.00:00:00."))
	src := tokens.NewSource(tokens.SourceOptions{Account: "a@b.test", Provider: accts[0].Provider, ClientID: "app", Store: st})
	if _, err := src.Token(context.Background()); !errors.Is(err, tokens.ErrNeedsLogin) {
		t.Fatalf("refresh error %v, want needs-login", err)
	}
	out, _, code := runCmd(t, context.Background(), "--config", cfgPath, "status")
	if code != 0 {
		t.Fatalf("status exit %d", code)
	}
	for _, want := range []string{"NEEDS SIGN-IN", "AADSTS700082", "90 days", "bridge login a@b.test"} {
		if !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	ent, _ := st.Get("a@b.test")
	if ent.RefreshToken != rt {
		t.Error("the stored refresh token was discarded")
	}
}

func TestSubcommandHelp(t *testing.T) {
	for _, c := range commands() {
		out, stderr, code := runCmd(t, context.Background(), c.name, "-h")
		if code != 0 || !strings.HasPrefix(out, "usage: bridge "+c.name) || !strings.Contains(out, c.summary) {
			t.Errorf("%s -h: exit %d, out %q, stderr %q", c.name, code, out, stderr)
		}
	}
}
