package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// idpConfig writes a config whose one account signs in at idp.
func idpConfig(t *testing.T, idp *tokenstest.Server) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write(t, path, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nprovider = \"custom\"\nclient_id = \"app\"\nauth_url = %q\ntoken_url = %q\ndevice_url = %q\nimap = \"127.0.0.1:1\"\nsmtp = \"127.0.0.1:1\"\npop3 = \"127.0.0.1:1\"\nscopes = [\"https://outlook.office.com/IMAP.AccessAsUser.All\", \"offline_access\"]\n",
		filepath.Join(dir, "tokens.json"), idp.AuthURL("common"), idp.TokenURL("common"), idp.DeviceURL("common")))
	return path
}

// browserLogin runs `bridge login a@b.test --no-browser` and plays the
// browser: it opens the printed sign-in address, which the imitation
// answers by redirecting back to the bridge.
func browserLogin(t *testing.T, cfg string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"--config", cfg, "login", "a@b.test", "--no-browser"}, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
		done <- report(&errb, err)
	}()
	urlRE := regexp.MustCompile(`(?m)^(http://\S+)$`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			if resp, err := http.Get(m[1]); err == nil {
				resp.Body.Close()
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in URL; stdout %q stderr %q", out.String(), errb.String())
		}
	}
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatal("login did not finish")
	}
	return out.String(), errb.String(), code
}

// TestLoginConsentPrintsFix: a consent refusal at sign-in prints the
// diagnosis with its fix, the admin-consent address for this app included,
// instead of sending the person to `bridge doctor`.
func TestLoginConsentPrintsFix(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	cfg := idpConfig(t, idp)
	idp.FailNextAuthorize("consent_required", 65001, "The user or administrator has not consented to use the application with ID 'app' named 'bridge'.")
	_, stderr, code := browserLogin(t, cfg)
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	for _, want := range []string{
		"bridge: sign-in for a@b.test failed: The app has not been granted access to the mailbox [consent-required]\n",
		"https://login.microsoftonline.com/organizations/adminconsent?client_id=app ",
		"AADSTS65001: The user or administrator has not consented",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "bridge doctor") || strings.Count(stderr, "tokens:") > 0 {
		t.Errorf("stderr points elsewhere or repeats prefixes:\n%s", stderr)
	}
}

// TestLoginDeviceDeclined: a device code declined in the browser is
// reported as declined, with what to do, not as an expired code.
func TestLoginDeviceDeclined(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{DevicePolls: 1, DeviceDecline: true, DeviceInterval: 1})
	defer idp.Close()
	cfg := idpConfig(t, idp)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, code := runCmd(t, ctx, "--config", cfg, "login", "a@b.test", "--device")
	if code != 1 {
		t.Fatalf("exit %d, want 1; stderr %s", code, stderr)
	}
	for _, want := range []string{
		"bridge: sign-in for a@b.test failed: The sign-in was declined [consent-declined]\n",
		"Run `bridge login a@b.test` again and accept the permissions.",
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(strings.ToLower(stderr), "expired") {
		t.Errorf("a declined code is reported as expired:\n%s", stderr)
	}
	if !strings.Contains(out, "(the code is good for 15 minutes)") || strings.Contains(out, "Signed in") {
		t.Errorf("stdout:\n%s", out)
	}
}

// TestLoginSaysSignedInOnce: a successful sign-in says so once, naming the
// account.
func TestLoginSaysSignedInOnce(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	out, stderr, code := browserLogin(t, idpConfig(t, idp))
	if code != 0 {
		t.Fatalf("exit %d; stderr %s", code, stderr)
	}
	if n := strings.Count(out, "Signed in"); n != 1 || !strings.Contains(out, "Signed in as a@b.test.\n") {
		t.Errorf("%d lines say signed in, want one \"Signed in as a@b.test.\":\n%s", n, out)
	}
}

// msConfig writes a config whose one account is a Microsoft account (so
// the sign-in asks for the OpenID scopes) signing in at idp.
func msConfig(t *testing.T, idp *tokenstest.Server, extra string) string {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "config.toml")
	write(t, path, fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"a@b.test\"\nclient_id = \"app\"\nauth_url = %q\ntoken_url = %q\ndevice_url = %q\n%s",
		filepath.Join(dir, "tokens.json"), idp.AuthURL("common"), idp.TokenURL("common"), idp.DeviceURL("common"), extra))
	return path
}

// TestLoginRefusesAnotherUser: a browser signed in as someone else makes
// the sign-in come back for that person. The login exits 1, names who
// signed in and how to fix it, and leaves the stored sign-in alone; the
// --sign-in-as flag accepts the name once and records it.
func TestLoginRefusesAnotherUser(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	cfg := msConfig(t, idp, "")
	tokensPath := filepath.Join(filepath.Dir(cfg), "tokens.json")

	// A first, right sign-in.
	if _, stderr, code := browserLogin(t, cfg); code != 0 {
		t.Fatalf("first sign-in: exit %d; %s", code, stderr)
	}
	before := readTokens(t, tokensPath)

	idp.SignInAs("carol@b.test")
	out, stderr, code := browserLogin(t, cfg)
	if code != 1 {
		t.Fatalf("sign-in as carol: exit %d, want 1; stdout %s stderr %s", code, out, stderr)
	}
	for _, want := range []string{"carol@b.test, not a@b.test", "unchanged", "private window", "--device", "--sign-in-as carol@b.test"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr lacks %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(out, "Signed in as") {
		t.Errorf("stdout claims a sign-in:\n%s", out)
	}
	if after := readTokens(t, tokensPath); after != before {
		t.Error("the stored tokens changed after a sign-in as another user")
	}

	// The alias flag accepts carol as a@b.test's sign-in name, and the
	// config remembers it for the next sign-in.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var outb, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"--config", cfg, "login", "a@b.test", "--no-browser", "--sign-in-as", "Carol@b.test"}, &env{stdout: &outb, stderr: &errb, getenv: func(string) string { return "" }})
		done <- report(&errb, err)
	}()
	openSignInURL(t, &outb, &errb)
	if code := <-done; code != 0 {
		t.Fatalf("with --sign-in-as: exit %d; %s", code, errb.String())
	}
	if readTokens(t, tokensPath) == before {
		t.Error("the accepted sign-in was not stored")
	}
	if !strings.Contains(readFileString(t, cfg), `sign_in_as = "carol@b.test"`) {
		t.Errorf("the config does not record the sign-in name:\n%s", readFileString(t, cfg))
	}
	if _, stderr, code := browserLogin(t, cfg); code != 0 {
		t.Fatalf("a later sign-in as carol: exit %d; %s", code, stderr)
	}
}

func readTokens(t *testing.T, path string) string {
	t.Helper()
	return readFileString(t, path)
}

func readFileString(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// openSignInURL waits for the sign-in address on out and opens it, as a
// browser would.
func openSignInURL(t *testing.T, out, errb *syncBuffer) {
	t.Helper()
	urlRE := regexp.MustCompile(`(?m)^(http://\S+)$`)
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			if resp, err := http.Get(m[1]); err == nil {
				resp.Body.Close()
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no sign-in URL; stdout %q stderr %q", out.String(), errb.String())
		}
	}
}
