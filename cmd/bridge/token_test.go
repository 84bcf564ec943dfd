package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestTokenAppOnly: `bridge token` prints an app-only account's token
// alone on one line; --xoauth2 the SASL initial response with the
// mailbox as user=; --json the token, its expiry and the account.
func TestTokenAppOnly(t *testing.T) {
	w := newAppWorld(t, tokenstest.App{Secret: appSecret, Roles: []string{"IMAP.AccessAsApp"}})
	if _, stderr, code := w.login(t, appSecret+"\n"); code != 0 {
		t.Fatalf("login: %s", stderr)
	}
	ctx := context.Background()
	out, stderr, code := runCmd(t, ctx, "--config", w.cfg, "token", appMailbox)
	tok := strings.TrimSuffix(out, "\n")
	if code != 0 || strings.Count(out, "\n") != 1 || strings.ContainsAny(tok, " \t\r") {
		t.Fatalf("exit %d, stdout %d lines, stderr %s", code, strings.Count(out, "\n"), stderr)
	}
	if err := w.idp.Validate(appMailbox, tok); err != nil {
		t.Errorf("the printed token: %v", err)
	}
	if strings.Contains(stderr, tok) {
		t.Error("the token went to stderr")
	}

	out, _, code = runCmd(t, ctx, "--config", w.cfg, "token", appMailbox, "--xoauth2")
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(out))
	if code != 0 || err != nil {
		t.Fatalf("--xoauth2: exit %d, %v", code, err)
	}
	user, rest, _ := strings.Cut(string(raw), "\x01auth=Bearer ")
	if user != "user="+appMailbox || !strings.HasSuffix(rest, "\x01\x01") || w.idp.Validate(appMailbox, strings.TrimSuffix(rest, "\x01\x01")) != nil {
		t.Errorf("--xoauth2 decodes to user %q and an unusable token", user)
	}

	out, _, code = runCmd(t, ctx, "--config", w.cfg, "token", "SCANNER@b.test", "--json")
	var doc tokenDoc
	if code != 0 || json.Unmarshal([]byte(out), &doc) != nil {
		t.Fatalf("--json: exit %d: %s", code, out)
	}
	if doc.Account != appMailbox || doc.User != appMailbox || time.Until(doc.Expiry) < 50*time.Minute || w.idp.Validate(appMailbox, doc.Token) != nil {
		t.Errorf("--json: %+v", doc)
	}

	if _, stderr, code := runCmd(t, ctx, "--config", w.cfg, "token", "nobody@b.test"); code != 2 || !strings.Contains(stderr, "not an account") {
		t.Errorf("unknown account: exit %d: %s", code, stderr)
	}
	if _, _, code := runCmd(t, ctx, "--config", w.cfg, "token", appMailbox, "--json", "--xoauth2"); code != 2 {
		t.Errorf("--json with --xoauth2: exit %d", code)
	}

	// An expired secret: no token, the diagnosis on stderr.
	w.idp.RegisterApp(tokenstest.App{ClientID: appID, Secret: appSecret, SecretExpired: true})
	out, stderr, code = runCmd(t, ctx, "--config", w.cfg, "token", appMailbox)
	if code != 1 || out != "" || !strings.Contains(stderr, "bridge login "+appMailbox+" --app") || !strings.Contains(stderr, "AADSTS7000222") {
		t.Errorf("expired secret: exit %d, stdout %q, stderr %s", code, out, stderr)
	}
}

// TestTokenDelegated: without a server, `bridge token` refreshes the
// stored sign-in itself and saves the rotated refresh token; beside a
// running server it takes the server's token over the control socket and
// refreshes nothing, however often it is called.
func TestTokenDelegated(t *testing.T) {
	w := newDoctorWorldWith(t, "", tokenstest.Options{RevokeOnRotate: true})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	rt := t.TempDir()

	out, stderr, code := runIn(ctx, rt, "--config", w.cfg, "token", "a@b.test")
	if code != 0 || w.idp.RefreshRequests() != 1 || w.idp.Validate("a@b.test", strings.TrimSpace(out)) != nil {
		t.Fatalf("without a server: exit %d, %d refreshes: %s", code, w.idp.RefreshRequests(), stderr)
	}
	st, err := tokens.NewFileStore(filepath.Join(w.dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e, _ := st.Get("a@b.test"); e.RefreshToken != w.idp.LatestRefresh("a@b.test") {
		t.Error("the rotated refresh token was not saved")
	}

	data, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(data), "[tls]\n", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(w.dir, "cert.pem"), filepath.Join(w.dir, "key.pem")), 1)
	if err := os.WriteFile(w.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	startServe(t, rt, w.cfg)
	ep, err := controlEndpoint(&env{getenv: func(string) string { return rt }}, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	served, err := control.NewClient(ep).Token(ctx, "a@b.test")
	if err != nil {
		t.Fatal(err)
	}
	before := w.idp.RefreshRequests()
	for range 3 {
		out, stderr, code := runIn(ctx, rt, "--config", w.cfg, "token", "a@b.test")
		if code != 0 || strings.TrimSpace(out) != served.AccessToken {
			t.Fatalf("beside the server: exit %d, not the server's token: %s", code, stderr)
		}
	}
	if n := w.idp.RefreshRequests() - before; n != 0 {
		t.Errorf("bridge token beside a running server made %d refreshes, want 0", n)
	}
}
