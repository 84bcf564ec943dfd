package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
)

// signInWorld is newDoctorWorld's imitation of Microsoft behind a config
// for `bridge serve`: IMAP and SMTP listeners on loopback, a@b.test, and
// s@b.test, a shared mailbox sending with a@b.test's tokens.
func signInWorld(t *testing.T) *doctorWorld {
	t.Helper()
	w := newDoctorWorld(t, "")
	body := fmt.Sprintf(`[listen]
imap = "127.0.0.1:0"
smtp = "127.0.0.1:0"
pop3 = ""

[store]
backend = "file"
path = %q

[tls]
cert_file = %q
key_file = %q
upstream_ca_file = %q

[[account]]
email = "a@b.test"
client_id = "app"
auth_url = %q
token_url = %q
imap = %q
pop3 = %q
smtp = %q

[[account]]
email = "s@b.test"
token_from = "a@b.test"
smtp = %q
`, filepath.Join(w.dir, "tokens.json"), filepath.Join(w.dir, "cert.pem"), filepath.Join(w.dir, "key.pem"),
		filepath.Join(w.dir, "ca.pem"), w.idp.AuthURL("common"), w.idp.TokenURL("common"),
		w.imap.Addr(), w.pop.Addr(), w.smtp.Addr(), w.smtp.Addr())
	if err := os.WriteFile(w.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewFileStore(filepath.Join(w.dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put("s@b.test", tokens.Entry{Password: doctorPassword}); err != nil {
		t.Fatal(err)
	}
	return w
}

// imapLoginReply logs in at addr and returns the server's lines up to the
// tagged reply.
func imapLoginReply(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a LOGIN %s %s\r\n", user, pass)
	var all string
	for {
		line, err := r.ReadString('\n')
		all += line
		if err != nil || strings.HasPrefix(line, "a ") {
			return all
		}
	}
}

// smtpAuthReply says EHLO and AUTH PLAIN at addr and returns the reply to
// AUTH.
func smtpAuthReply(t *testing.T, addr, user, pass string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	reply := func() string {
		for {
			line, err := r.ReadString('\n')
			if err != nil || len(line) < 4 || line[3] != '-' {
				return line
			}
		}
	}
	reply()
	fmt.Fprintf(c, "EHLO test\r\n")
	reply()
	fmt.Fprintf(c, "AUTH PLAIN %s\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pass)))
	return reply()
}

// signIn runs `bridge login EMAIL --no-browser` against the running
// server's control socket in rt, playing the browser, and returns its
// stderr.
func signIn(t *testing.T, rt, cfg, email string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var out, errb syncBuffer
	done := make(chan int, 1)
	getenv := func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return rt
		}
		return ""
	}
	go func() {
		err := run(ctx, []string{"--config", cfg, "login", email, "--no-browser"}, &env{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: getenv})
		done <- report(&errb, err)
	}()
	urlRE := regexp.MustCompile(`(?m)^(http://\S+)$`)
	var page string
	for deadline := time.Now().Add(10 * time.Second); page == "" && time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if m := urlRE.FindStringSubmatch(out.String()); m != nil {
			page = m[1]
		}
	}
	if page == "" {
		t.Fatalf("no sign-in URL; stderr %q", errb.String())
	}
	resp, err := http.Get(page)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL holds the authorization code
		}
		t.Fatalf("following the sign-in redirect: %v", err)
	}
	resp.Body.Close()
	select {
	case code := <-done:
		if code != 0 {
			t.Fatalf("login exit %d: %s", code, errb.String())
		}
	case <-ctx.Done():
		t.Fatal("login did not finish")
	}
	return errb.String()
}

// serverAccount is the running server's status of email.
func serverAccount(t *testing.T, rt, cfg, email string) bridge.AccountStatus {
	t.Helper()
	doc := statusJSON(t, rt, cfg)
	if doc.Server == nil {
		t.Fatal("status shows no running server")
	}
	for _, a := range doc.Server.Accounts {
		if a.Email == email {
			return a
		}
	}
	t.Fatalf("the server has no account %s", email)
	return bridge.AccountStatus{}
}

// TestSignInAndLogoutReachRunningServer: every token of the user is
// revoked while `bridge serve` runs with a cached access token. The next
// login says a sign-in is needed (not that IMAP is off). `bridge login`
// then makes the running server use the new sign-in at once: the next
// login works without a restart. `bridge logout` drops the server's token
// at once too: the account shows no access token, and the shared mailbox
// that borrows it is told to sign in.
func TestSignInAndLogoutReachRunningServer(t *testing.T) {
	w := signInWorld(t)
	rt := t.TempDir()
	startServe(t, rt, w.cfg)
	ls := statusJSON(t, rt, w.cfg).Server.Listeners
	imapAddr, smtpAddr := ls["listen.imap"], ls["listen.smtp"]

	if got := imapLoginReply(t, imapAddr, "a@b.test", doctorPassword); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("first login: %q", got)
	}
	w.idp.RevokeSessions("a@b.test")
	got := imapLoginReply(t, imapAddr, "a@b.test", doctorPassword)
	if !strings.Contains(got, "a NO [AUTHENTICATIONFAILED] Sign-in needed: run `bridge login a@b.test`") {
		t.Fatalf("login with every token revoked: %q, want sign-in needed", got)
	}
	if id := serverAccount(t, rt, w.cfg, "a@b.test").Last[bridge.IMAP].ID; id == "imap-auth-failed" {
		t.Errorf("status blames the IMAP switch for revoked tokens")
	}

	if stderr := signIn(t, rt, w.cfg, "a@b.test"); !strings.Contains(stderr, "reloaded") {
		t.Errorf("login did not tell the running server: %q", stderr)
	}
	if got := imapLoginReply(t, imapAddr, "a@b.test", doctorPassword); !strings.HasPrefix(got, "a OK") {
		t.Fatalf("login after `bridge login`, no restart: %q", got)
	}
	if st := serverAccount(t, rt, w.cfg, "a@b.test"); st.Token.NeedsLogin != "" || st.Last[bridge.IMAP].ID != "" {
		t.Errorf("status after the new sign-in: needs login %q, diagnosis %q", st.Token.NeedsLogin, st.Last[bridge.IMAP].ID)
	}
	if got := smtpAuthReply(t, smtpAddr, "s@b.test", doctorPassword); !strings.HasPrefix(got, "235") {
		t.Fatalf("the shared mailbox's SMTP login: %q", got)
	}

	_, stderr, code := runIn(context.Background(), rt, "--config", w.cfg, "logout", "a@b.test")
	if code != 0 || !strings.Contains(stderr, "reloaded") {
		t.Fatalf("logout exit %d, stderr %q", code, stderr)
	}
	if st := serverAccount(t, rt, w.cfg, "a@b.test"); st.Token.NeedsLogin == "" || !st.Token.AccessExpiry.IsZero() {
		t.Errorf("the server still holds a token after logout: %+v", st.Token)
	}
	if got := smtpAuthReply(t, smtpAddr, "s@b.test", doctorPassword); !strings.HasPrefix(got, "535") || !strings.Contains(got, "bridge login a@b.test") {
		t.Errorf("the shared mailbox after the delegate's logout: %q, want 535 naming `bridge login a@b.test`", got)
	}
	if got := imapLoginReply(t, imapAddr, "a@b.test", doctorPassword); !strings.Contains(got, "a NO") {
		t.Errorf("login after logout: %q, want a refusal", got)
	}
}
