package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestLoginGmailDeviceRefused: --device is refused for Gmail before
// anything is written or sent, with Google's reason and the way round it.
func TestLoginGmailDeviceRefused(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	_, stderr, code := runCmd(t, context.Background(), "--config", cfg, "login", "ann@gmail.com",
		"--provider", "gmail", "--client-id", "x.apps.googleusercontent.com", "--client-secret", "s", "--device")
	if code != 2 {
		t.Fatalf("exit %d, want 2; stderr %s", code, stderr)
	}
	for _, want := range []string{"https://mail.google.com/", "invalid_scope", "--no-browser --port", "ssh -L"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("stderr %q lacks %q", stderr, want)
		}
	}
	if _, err := os.Stat(cfg); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("config written although the sign-in was refused: %v", err)
	}
}

// TestLoginGmail signs a Gmail account in against Google's imitation: the
// sign-in asks for offline access and the consent page, and the settings
// printed say which client setting makes sent mail appear twice.
func TestLoginGmail(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{Google: true, ClientSecret: "GOCSPX-cmd"})
	defer idp.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "config.toml")
	body := fmt.Sprintf("[store]\nbackend = \"file\"\npath = %q\n\n[[account]]\nemail = \"ann@gmail.com\"\nprovider = \"gmail\"\nclient_id = \"x.apps.googleusercontent.com\"\nclient_secret = \"GOCSPX-cmd\"\nauth_url = %q\ntoken_url = %q\n",
		filepath.Join(dir, "tokens.json"), idp.AuthURL(""), idp.TokenURL(""))
	if err := os.WriteFile(cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	go func() {
		err := run(ctx, []string{"--config", cfg, "login", "ann@gmail.com", "--no-browser"}, &env{stdout: &out, stderr: &errb, getenv: func(string) string { return "" }})
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
		t.Fatalf("no sign-in URL; stdout %q stderr %q", out.String(), errb.String())
	}
	if !strings.Contains(signIn, "access_type=offline") || !strings.Contains(signIn, "prompt=consent") {
		t.Errorf("sign-in URL %q lacks access_type=offline and prompt=consent", signIn)
	}
	resp, err := http.Get(signIn)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the authorization code
		}
		t.Fatalf("following the sign-in redirect: %v", err)
	}
	resp.Body.Close()
	var code int
	select {
	case code = <-done:
	case <-ctx.Done():
		t.Fatal("login did not finish")
	}
	if code != 0 {
		t.Fatalf("login exit %d; stderr %s", code, errb.String())
	}
	for _, want := range []string{"Sent Mail", `untick "Place a copy in"`, `untick "Store sent messages on the server"`, `set record = ""`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("login output lacks %q:\n%s", want, out.String())
		}
	}
}

func TestSentCopyNote(t *testing.T) {
	for provider, want := range map[string]string{"": "Sent Items", "microsoft": "Sent Items", "gmail": "Sent Mail", "custom": ""} {
		var b strings.Builder
		printSentCopyNote(&b, provider)
		if (want == "") != (b.Len() == 0) || !strings.Contains(b.String(), want) {
			t.Errorf("%q: %q", provider, b.String())
		}
	}
}

// TestLoginGmailWithoutClientExplains: without a client id, a Gmail
// sign-in explains how to make a Google OAuth client, not an Entra app.
func TestLoginGmailWithoutClientExplains(t *testing.T) {
	cfg := filepath.Join(t.TempDir(), "config.toml")
	_, stderr, code := runCmd(t, context.Background(), "--config", cfg, "login", "ann@gmail.com", "--provider", "gmail")
	if code != 2 {
		t.Fatalf("exit %d, want 2", code)
	}
	for _, want := range []string{"console.cloud.google.com", "Gmail API", "https://mail.google.com/", "Desktop app", "Test users", "7 days", "--client-secret"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("help does not mention %q:\n%s", want, stderr)
		}
	}
	if strings.Contains(stderr, "entra.microsoft.com") {
		t.Error("Gmail help speaks of Entra")
	}
}
