package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/diag"
)

// liveConfig writes a config with SMTP and IMAP on 127.0.0.1:0, a file
// store and a local certificate in dir.
func liveConfig(t *testing.T, dir string, emails ...string) string {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "[listen]\nimap = \"127.0.0.1:0\"\nsmtp = \"127.0.0.1:0\"\npop3 = \"\"\n\n[store]\nbackend = \"file\"\npath = %q\n\n[tls]\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(dir, "tokens.json"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	for _, e := range emails {
		fmt.Fprintf(&b, "\n[[account]]\nemail = %q\nclient_id = \"test-client\"\n", e)
	}
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// runIn runs a command line with XDG_RUNTIME_DIR set to rt, so the
// control socket lives in the test's directory.
func runIn(ctx context.Context, rt string, args ...string) (string, string, int) {
	var out, errb syncBuffer
	getenv := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return ""
	}
	err := run(ctx, args, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv})
	code := report(&errb, err)
	return out.String(), errb.String(), code
}

// startServe runs `bridge serve` in process until the test ends and waits
// until its control socket answers.
func startServe(t *testing.T, rt, cfg string) *syncBuffer {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errb syncBuffer
	done := make(chan int, 1)
	getenv := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return ""
	}
	go func() {
		err := run(ctx, []string{"--config", cfg, "serve", "--grace", "1s"}, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv})
		done <- report(&errb, err)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case code := <-done:
			if code != 0 {
				t.Errorf("serve exited %d: %s", code, errb.String())
			}
		case <-time.After(10 * time.Second):
			t.Error("serve did not stop within 10 s")
		}
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		if st := statusJSON(t, rt, cfg); st.Server != nil {
			return &errb
		}
		select {
		case code := <-done:
			t.Fatalf("serve exited %d: %s", code, errb.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the control socket did not answer within 10 s: %s", errb.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func statusJSON(t *testing.T, rt, cfg string) statusDoc {
	t.Helper()
	out, stderr, code := runIn(context.Background(), rt, "--config", cfg, "status", "--json")
	if code != 0 {
		t.Fatalf("status --json exit %d: %s", code, stderr)
	}
	var doc statusDoc
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	return doc
}

// waitSessions polls status --json until the SMTP session count is want.
func waitSessions(t *testing.T, rt, cfg string, want int64) statusDoc {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		doc := statusJSON(t, rt, cfg)
		if doc.Server == nil {
			t.Fatal("status shows no running server")
		}
		if doc.Server.Sessions[bridge.SMTP] == want {
			return doc
		}
		if time.Now().After(deadline) {
			t.Fatalf("smtp sessions %d, want %d", doc.Server.Sessions[bridge.SMTP], want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestStatusShowsLiveServer(t *testing.T) {
	dir := t.TempDir()
	rt := t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")

	// No server yet.
	if doc := statusJSON(t, rt, cfg); doc.Server != nil {
		t.Fatalf("a server is reported before one runs: %+v", doc.Server)
	}
	text, _, _ := runIn(context.Background(), rt, "--config", cfg, "status")
	if !strings.Contains(text, "server  not running") {
		t.Errorf("status text without a server: %q", text)
	}

	startServe(t, rt, cfg)
	doc := waitSessions(t, rt, cfg, 0)
	smtpAddr := doc.Server.Listeners["listen.smtp"]
	if smtpAddr == "" || doc.Server.Listeners["listen.imap"] == "" || doc.Server.PID != os.Getpid() {
		t.Fatalf("server status %+v", doc.Server)
	}

	// A client connects: one live SMTP session, shown in JSON and text.
	c, err := net.DialTimeout("tcp", smtpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "220") {
		t.Fatalf("greeting %q %v", line, err)
	}
	// go-smtp opens its session at EHLO.
	fmt.Fprintf(c, "EHLO test\r\n")
	for {
		line, err := r.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "250") {
			t.Fatalf("EHLO reply %q %v", line, err)
		}
		if strings.HasPrefix(line, "250 ") {
			break
		}
	}
	waitSessions(t, rt, cfg, 1)
	text, _, _ = runIn(context.Background(), rt, "--config", cfg, "status")
	if !strings.Contains(text, "smtp 1") || !strings.Contains(text, smtpAddr) || !strings.Contains(text, fmt.Sprintf("pid %d", os.Getpid())) {
		t.Errorf("status text does not show the live session, the listener and the pid:\n%s", text)
	}

	// Reload through the socket: a new account, the session stays.
	liveConfig(t, dir, "a@example.com", "b@example.com")
	ep, err := controlEndpoint(&env{getenv: func(string) string { return rt }}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := control.NewClient(ep).Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	doc = waitSessions(t, rt, cfg, 1)
	if len(doc.Server.Accounts) != 2 || len(doc.Accounts) != 2 {
		t.Errorf("after reload: server accounts %d, listed %d, want 2", len(doc.Server.Accounts), len(doc.Accounts))
	}
	fmt.Fprintf(c, "NOOP\r\n")
	if line, err := r.ReadString('\n'); err != nil || !strings.HasPrefix(line, "250") {
		t.Errorf("the session did not survive the reload: %q %v", line, err)
	}

	// The client leaves: back to zero.
	c.Close()
	waitSessions(t, rt, cfg, 0)
}

func TestSecondServeRefused(t *testing.T) {
	dir := t.TempDir()
	rt := t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")
	startServe(t, rt, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, stderr, code := runIn(ctx, rt, "--config", cfg, "serve")
	if code != 1 {
		t.Fatalf("second serve exit %d, want 1; stderr: %s", code, stderr)
	}
	for _, want := range []string{"already running", fmt.Sprint(os.Getpid()), cfg} {
		if !strings.Contains(stderr, want) {
			t.Errorf("second serve's message %q does not mention %q", stderr, want)
		}
	}
	// The first is untouched.
	if doc := statusJSON(t, rt, cfg); doc.Server == nil {
		t.Error("the first server stopped answering")
	}
}

func TestStatusTextShowsDiagnosis(t *testing.T) {
	at := time.Date(2026, 11, 26, 9, 30, 0, 0, time.Local)
	doc := statusDoc{Config: "/c.toml", Store: "file",
		Server: &control.Status{Status: bridge.Status{Sessions: map[bridge.Proto]int64{bridge.IMAP: 3}}, PID: 77,
			Listeners: map[string]string{"listen.imap": "127.0.0.1:1143"}},
		Accounts: []accountStatus{{Email: "a@example.com", SignedIn: true, HasPassword: true,
			LastDiagnosis: map[bridge.Proto]diag.Diagnosis{bridge.SMTP: {ID: "smtp-auth-disabled-tenant", Title: "Authenticated SMTP is switched off", Fix: "Run this.\nThen that.", At: at}},
			LastOK:        map[bridge.Proto]time.Time{bridge.IMAP: at}}}}
	var b strings.Builder
	printStatus(&b, doc, at)
	for _, want := range []string{"pid 77", "imap 3", "listen.imap", "127.0.0.1:1143",
		"smtp           REFUSED 2026-11-26 09:30:00: Authenticated SMTP is switched off [smtp-auth-disabled-tenant]",
		"                 Run this.\n                 Then that.", "imap           ok, last login 2026-11-26 09:30:00"} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("status text lacks %q:\n%s", want, b.String())
		}
	}
}

// TestPasswordResetReachesServer: `bridge password --reset` while a server
// runs makes the server take the new password at once, through the control
// socket, and refuse the old one.
func TestPasswordResetReachesServer(t *testing.T) {
	dir, rt := t.TempDir(), t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")
	old, _, code := runIn(context.Background(), rt, "--config", cfg, "password", "a@example.com", "--reset")
	if code != 0 {
		t.Fatal("password --reset: no local password made")
	}
	startServe(t, rt, cfg)
	imapAddr := statusJSON(t, rt, cfg).Server.Listeners["listen.imap"]
	login := func(pw string) string {
		c, err := net.DialTimeout("tcp", imapAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		fmt.Fprintf(c, "a LOGIN a@example.com %s\r\n", strings.TrimSpace(pw))
		var all string
		for {
			line, err := r.ReadString('\n')
			all += line
			if err != nil || strings.HasPrefix(line, "a ") {
				return all
			}
		}
	}
	// The account has no refresh token: a right password gets as far as
	// "sign in again", a wrong one stops at the password.
	if got := login(old); !strings.Contains(got, "bridge login a@example.com") {
		t.Fatalf("old password before the reset: %q", got)
	}
	neu, stderr, code := runIn(context.Background(), rt, "--config", cfg, "password", "a@example.com", "--reset")
	if code != 0 || !strings.Contains(stderr, "reloaded") {
		t.Fatalf("password --reset exit %d, stderr %q", code, stderr)
	}
	if got := login(old); !strings.Contains(got, "the bridge's local password") {
		t.Errorf("old password after the reset: %q", got)
	}
	if got := login(neu); !strings.Contains(got, "bridge login a@example.com") {
		t.Errorf("new password after the reset: %q", got)
	}
}

// TestStatusShowsWrongLocalPasswords: wrong local passwords given to a
// running server show in `bridge status` and its JSON, with the last
// peer, protocol and client name, while the right password still works.
func TestStatusShowsWrongLocalPasswords(t *testing.T) {
	dir, rt := t.TempDir(), t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")
	pw, _, code := runIn(context.Background(), rt, "--config", cfg, "password", "a@example.com", "--reset")
	if code != 0 {
		t.Fatal("password --reset: no local password made")
	}
	pw = strings.TrimSpace(pw)
	startServe(t, rt, cfg)
	addrs := statusJSON(t, rt, cfg).Server.Listeners

	// dialog sends each line and returns the reply lines that came back,
	// up to the one starting with each end.
	dialog := func(addr string, steps ...[2]string) string {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(10 * time.Second))
		r := bufio.NewReader(c)
		r.ReadString('\n')
		var all string
		for _, st := range steps {
			fmt.Fprintf(c, "%s\r\n", st[0])
			for {
				line, err := r.ReadString('\n')
				all += line
				if err != nil {
					t.Fatalf("%q: %v after %q", st[0], err, all)
				}
				if strings.HasPrefix(line, st[1]) {
					break
				}
			}
		}
		return all
	}
	plain := func(pass string) string {
		return base64.StdEncoding.EncodeToString([]byte("\x00a@example.com\x00" + pass))
	}
	got := dialog(addrs["listen.imap"],
		[2]string{`a ID ("name" "Old Mail 2.1")`, "a "},
		[2]string{"b LOGIN a@example.com wrong-Hh41", "b "},
		[2]string{"c LOGIN a@example.com wrong-Hh42", "c "})
	if strings.Count(got, "NO [AUTHENTICATIONFAILED] Authentication failed: log in with the account's address and the bridge's local password") != 2 {
		t.Fatalf("IMAP: %q", got)
	}
	got = dialog(addrs["listen.smtp"],
		[2]string{"EHLO scanner.example", "250 "},
		[2]string{"AUTH PLAIN " + plain("wrong-Hh43"), "535 "})
	if !strings.Contains(got, "535 5.7.8 Authentication failed") {
		t.Fatalf("SMTP: %q", got)
	}
	// The right password is accepted; with no refresh token stored, the
	// login gets as far as "sign in again".
	if got := dialog(addrs["listen.imap"], [2]string{"d LOGIN a@example.com " + pw, "d "}); !strings.Contains(got, "bridge login a@example.com") {
		t.Fatalf("the right password after wrong ones: %q", got)
	}

	doc := statusJSON(t, rt, cfg)
	r := doc.Accounts[0].RefusedLogins
	if r == nil || r.Count != 3 || r.LastPeer != "127.0.0.1" || r.LastProto != bridge.SMTP || r.LastClient != "scanner.example" {
		t.Fatalf("status --json refused_logins %+v, want 3, the last from 127.0.0.1 over SMTP by scanner.example", r)
	}
	out, _, code := runIn(context.Background(), rt, "--config", cfg, "status", "--json")
	if code != 0 || !strings.Contains(out, `"refused_logins"`) || !strings.Contains(out, `"last_client": "scanner.example"`) {
		t.Errorf("status --json:\n%s", out)
	}
	out, _, code = runIn(context.Background(), rt, "--config", cfg, "status")
	for _, want := range []string{"local logins   3 wrong local passwords ", "from 127.0.0.1 (scanner.example, SMTP)",
		"`bridge password a@example.com`"} {
		if code != 0 || !strings.Contains(out, want) {
			t.Errorf("status lacks %q:\n%s", want, out)
		}
	}
	for _, secret := range []string{"wrong-Hh4", pw} {
		if strings.Contains(out, secret) {
			t.Error("status shows a password")
		}
	}
}
