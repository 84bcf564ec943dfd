package main

import (
	"context"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// graphLogin runs `bridge login a@b.test --no-browser` on a config whose
// account sends through Graph, and plays the browser for every sign-in
// address printed, calling before (if set) with each address's number
// first; it returns how many it opened.
func graphLogin(t *testing.T, cfg string, before func(int)) (stdout, stderr string, code, signIns int) {
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
	for {
		select {
		case code = <-done:
			return out.String(), errb.String(), code, signIns
		case <-ctx.Done():
			t.Fatal("login did not finish")
		case <-time.After(20 * time.Millisecond):
		}
		if m := urlRE.FindAllStringSubmatch(out.String(), -1); len(m) > signIns {
			if before != nil {
				before(signIns)
			}
			if resp, err := http.Get(m[signIns][1]); err == nil {
				resp.Body.Close()
			}
			signIns++
		}
	}
}

func graphConfig(t *testing.T, idp *tokenstest.Server) string {
	t.Helper()
	cfg := idpConfig(t, idp)
	b, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cfg, string(b)+"smtp_via = \"graph\"\ngraph_url = \"http://127.0.0.1:1/v1.0\"\n")
	return cfg
}

// TestLoginAsksGraphConsentOnce: an account that sends through Graph gets
// a second sign-in for Graph's scopes when nobody consented yet, and none
// when the consent is there.
func TestLoginAsksGraphConsentOnce(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	cfg := graphConfig(t, idp)
	out, stderr, code, n := graphLogin(t, cfg, nil)
	if code != 0 || n != 2 {
		t.Fatalf("exit %d after %d sign-ins; stderr %s\nstdout %s", code, n, stderr, out)
	}
	for _, want := range []string{
		"needs the consent to Mail.Send, User.Read once; a second sign-in asks for it",
		"Microsoft Graph: the sign-in of a@b.test may send mail (Mail.Send, User.Read).",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("stdout lacks %q:\n%s", want, out)
		}
	}
	out, stderr, code, n = graphLogin(t, cfg, nil)
	if code != 0 || n != 1 || !strings.Contains(out, "may send mail") {
		t.Errorf("second login: exit %d after %d sign-ins; stderr %s\nstdout %s", code, n, stderr, out)
	}
}

// TestLoginGraphConsentDeclined: a declined consent prompt fails the
// login with the fix; the mail sign-in itself is stored.
func TestLoginGraphConsentDeclined(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	cfg := graphConfig(t, idp)
	// The first sign-in goes through; the consent prompt is declined.
	out, stderr, code, _ := graphLogin(t, cfg, func(i int) {
		if i == 1 {
			idp.FailNextAuthorize("access_denied", 65004, "User declined to consent to access the app.")
		}
	})
	if code != 1 || !strings.Contains(stderr, "[consent-declined]") || !strings.Contains(out, "Signed in as a@b.test.") {
		t.Errorf("exit %d; stderr %s\nstdout %s", code, stderr, out)
	}
}
