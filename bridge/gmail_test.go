package bridge

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const gmailUser = "ann@gmail.com"

// gmailEnv is the bridge in front of the imitations of Google's identity
// platform and Gmail's IMAP, POP3 and SMTP servers (SMTP on 465 with
// implicit TLS and on 587 with STARTTLS), with one Gmail account and the
// three local front ends on plain loopback listeners.
type gmailEnv struct {
	*harness
	t              *testing.T
	pop3           *bridgetest.POP3
	smtps, smtp587 *bridgetest.SMTP
	imap, pop, sub string // the local IMAP, POP3 and SMTP listeners
}

func newGmailEnv(t *testing.T, to tokenstest.Options) *gmailEnv {
	t.Helper()
	t.Cleanup(leakCheck(t))
	h := newHarnessWith(t, harnessOptions{Gmail: true, Tokens: to}, gmailUser)
	e := &gmailEnv{harness: h, t: t}
	var err error
	e.pop3, err = bridgetest.NewPOP3(bridgetest.POP3Options{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Service: bridgetest.Gmail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.pop3.Close() })
	for _, implicit := range []bool{true, false} {
		s, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS,
			Service: bridgetest.Gmail, ImplicitTLS: implicit})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		if implicit {
			e.smtps = s
		} else {
			e.smtp587 = s
		}
	}
	h.setServer(POP3, e.pop3.Addr())
	e.setSMTP(e.smtps.Addr(), true)

	e.imap, _ = h.startIMAP(FrontOptions{}, false)
	pop := NewPOP3Server(h.B, FrontOptions{})
	sub := NewSMTPServer(h.B, FrontOptions{})
	var wg sync.WaitGroup
	for _, srv := range []interface {
		Serve(net.Listener, bool) error
	}{pop, sub} {
		ln := h.listen()
		if srv == pop {
			e.pop = ln.Addr().String()
		} else {
			e.sub = ln.Addr().String()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			srv.Serve(ln, false)
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		pop.Shutdown(ctx)
		sub.Shutdown(ctx)
		wg.Wait()
		h.checkLogs()
	})
	return e
}

// setSMTP points the account's SMTP at addr, with implicit TLS or not.
func (e *gmailEnv) setSMTP(addr string, implicit bool) {
	e.mu.Lock()
	a := e.accounts[gmailUser]
	a.Provider.SMTP, a.Provider.SMTPImplicitTLS = addr, implicit
	e.mu.Unlock()
	e.B.SetAccounts([]*Account{a})
}

// last is the account's recorded diagnosis for p.
func (e *gmailEnv) last(p Proto) (id, fix string) {
	for _, a := range e.B.Status().Accounts {
		if a.Email == gmailUser {
			return a.Last[p].ID, a.Last[p].Fix
		}
	}
	return "", ""
}

// wantDiagnosis checks that the account's status and the log hold the
// diagnosis id, with a fix containing fix.
func (e *gmailEnv) wantDiagnosis(p Proto, id, fix string) {
	e.t.Helper()
	if !eventually(5*time.Second, func() bool { got, _ := e.last(p); return got == id }) {
		got, _ := e.last(p)
		e.t.Fatalf("status: %s diagnosis %q, want %q", p, got, id)
	}
	if _, f := e.last(p); !strings.Contains(f, fix) || strings.Contains(f, "Set-CASMailbox") {
		e.t.Errorf("status fix %q, want %q and no Exchange command", f, fix)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "id="+id) || !strings.Contains(logs, fix) {
		e.t.Errorf("the log lacks %s with %q", id, fix)
	}
}

// imapLogin logs in through the bridge over a raw line client and returns
// the reply lines up to the tagged one.
func (e *gmailEnv) imapLogin() []string {
	e.t.Helper()
	w := dialIMAPWire(e.t, e.imap)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + gmailUser + " " + e.password(gmailUser) + "\r\n")
	var lines []string
	for {
		l := w.line()
		lines = append(lines, l)
		if strings.HasPrefix(l, "a1 ") {
			return lines
		}
	}
}

// popLogin logs in through the bridge and returns the reply to PASS.
func (e *gmailEnv) popLogin() (*bufio.Reader, net.Conn, string) {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.pop, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	read := func() string {
		l, err := br.ReadString('\n')
		if err != nil {
			e.t.Fatalf("pop3 read: %v", err)
		}
		return strings.TrimRight(l, "\r\n")
	}
	read() // greeting
	c.Write([]byte("USER " + gmailUser + "\r\n"))
	read()
	c.Write([]byte("PASS " + e.password(gmailUser) + "\r\n"))
	return br, c, read()
}

// smtpLogin logs in through the bridge's SMTP front end.
func (e *gmailEnv) smtpLogin() (*smtp.Client, error) {
	e.t.Helper()
	c, err := smtp.Dial(e.sub)
	if err != nil {
		e.t.Fatal(err)
	}
	c.CommandTimeout = 30 * time.Second
	e.t.Cleanup(func() { c.Close() })
	return c, c.Auth(sasl.NewPlainClient("", gmailUser, e.password(gmailUser)))
}

// TestGmailThroughBridge: IMAP, POP3 and SMTP on both ports work through
// the bridge against Gmail's servers, with Google's tokens.
func TestGmailThroughBridge(t *testing.T) {
	e := newGmailEnv(t, tokenstest.Options{})
	if err := e.IMAP.Append(gmailUser, "INBOX", []byte("Subject: hi\r\n\r\nhello\r\n")); err != nil {
		t.Fatal(err)
	}
	c := e.dialIMAP(e.imap, "plain", nil)
	if err := c.Login(gmailUser, e.password(gmailUser)).Wait(); err != nil {
		t.Fatalf("IMAP login: %v", err)
	}
	sel, err := c.Select("INBOX", nil).Wait()
	if err != nil || sel.NumMessages != 1 {
		t.Fatalf("SELECT: %v, %+v", err, sel)
	}
	c.Logout()

	br, conn, r := e.popLogin()
	if !strings.HasPrefix(r, "+OK") {
		t.Fatalf("POP3 login: %q", r)
	}
	conn.Write([]byte("QUIT\r\n"))
	br.ReadString('\n')

	for _, up := range []struct {
		name     string
		s        *bridgetest.SMTP
		implicit bool
	}{{"465", e.smtps, true}, {"587", e.smtp587, false}} {
		e.setSMTP(up.s.Addr(), up.implicit)
		s, err := e.smtpLogin()
		if err != nil {
			t.Fatalf("SMTP %s login: %v", up.name, err)
		}
		if err := s.SendMail(gmailUser, []string{"bob@example.com"}, bytes.NewReader([]byte("Subject: via "+up.name+"\r\n\r\nhi\r\n"))); err != nil {
			t.Fatalf("SMTP %s send: %v", up.name, err)
		}
		s.Quit()
		msgs := up.s.Messages()
		if len(msgs) != 1 || msgs[0].AuthUser != gmailUser {
			t.Errorf("SMTP %s: %d messages upstream", up.name, len(msgs))
		}
	}
	for _, p := range []Proto{IMAP, POP3, SMTP} {
		if id, _ := e.last(p); id != "" {
			t.Errorf("%s diagnosis %q after success", p, id)
		}
	}
}

// TestGmailTokenExpiredOrRevoked: a refresh token that Google calls
// "expired or revoked" (7 days after consent for an app in Testing, or
// revoked by the user or a password change) asks for `bridge login` with
// both causes, on every protocol.
func TestGmailTokenExpiredOrRevoked(t *testing.T) {
	e := newGmailEnv(t, tokenstest.Options{RefreshLifetime: time.Millisecond})
	time.Sleep(5 * time.Millisecond)
	lines := e.imapLogin()
	if len(lines) != 2 || !strings.Contains(lines[0], "[ALERT] The bridge must sign in to Google again for "+gmailUser) ||
		!strings.Contains(lines[0], "expired or revoked") {
		t.Errorf("IMAP reply %q", lines)
	}
	e.wantDiagnosis(IMAP, "gmail-token-expired-or-revoked", "Publish app")

	_, _, r := e.popLogin()
	if !strings.HasPrefix(r, "-ERR [AUTH] ") || !strings.Contains(r, "expired or revoked") {
		t.Errorf("POP3 reply %q", r)
	}
	_, err := e.smtpLogin()
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 || !strings.Contains(se.Message, "sign in to Google again") || !strings.Contains(se.Message, "expired or revoked") {
		t.Errorf("SMTP reply %v", err)
	}
	e.wantDiagnosis(SMTP, "gmail-token-expired-or-revoked", "Publish app")
}

// TestGmailRevokedByUser: the user removed the app's access (or changed the
// password): Google's words are the same as for the Testing expiry.
func TestGmailRevokedByUser(t *testing.T) {
	e := newGmailEnv(t, tokenstest.Options{})
	ent, err := e.Store.Get(gmailUser)
	if err != nil {
		t.Fatal(err)
	}
	e.Tokens.RevokeRefresh(ent.RefreshToken)
	lines := e.imapLogin()
	if !strings.HasPrefix(lines[len(lines)-1], "a1 NO [AUTHENTICATIONFAILED] Sign-in needed") {
		t.Errorf("IMAP reply %q", lines)
	}
	e.wantDiagnosis(IMAP, "gmail-token-expired-or-revoked", "bridge login "+gmailUser)
	if e.B.Status().Accounts[0].Token.NeedsLogin == "" {
		t.Error("status does not say the account needs a sign-in")
	}
}

// TestGmailIMAPDisabledByAdmin: a Workspace administrator turned IMAP off.
func TestGmailIMAPDisabledByAdmin(t *testing.T) {
	e := newGmailEnv(t, tokenstest.Options{})
	e.IMAP.SetMode(bridgetest.Disabled)
	c := e.dialIMAP(e.imap, "plain", nil)
	err := c.Login(gmailUser, e.password(gmailUser)).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeContactAdmin {
		t.Fatalf("login: %v, want NO [CONTACTADMIN]", err)
	}
	for _, want := range []string{"IMAP is switched off for the Google Workspace domain", `Google said: "IMAP access is disabled for your domain.`, "bridge doctor " + gmailUser} {
		if !strings.Contains(ie.Text, want) {
			t.Errorf("reply %q lacks %q", ie.Text, want)
		}
	}
	e.wantDiagnosis(IMAP, "gmail-imap-disabled", "End User Access > POP and IMAP access")
}

// TestGmailTokenRefused: Gmail refuses the token on every protocol with
// its error challenge, which the bridge answers so that the final words
// arrive and are explained.
func TestGmailTokenRefused(t *testing.T) {
	e := newGmailEnv(t, tokenstest.Options{})
	e.Tokens.RefuseMail(gmailUser)

	c := e.dialIMAP(e.imap, "plain", nil)
	err := c.Login(gmailUser, e.password(gmailUser)).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) || !strings.Contains(ie.Text, "Google refused the IMAP login") || !strings.Contains(ie.Text, `Google said: "Invalid credentials (Failure)"`) {
		t.Fatalf("IMAP login: %v", err)
	}
	e.wantDiagnosis(IMAP, "gmail-imap-auth-failed", "permanently delete all your email")

	_, _, r := e.popLogin()
	if r != "-ERR [AUTH] Google refused the POP login; run `bridge doctor "+gmailUser+"` for the fix" {
		t.Errorf("POP3 reply %q", r)
	}
	e.wantDiagnosis(POP3, "gmail-pop-auth-failed", "Forwarding and POP/IMAP")

	for _, up := range []struct {
		s        *bridgetest.SMTP
		implicit bool
	}{{e.smtps, true}, {e.smtp587, false}} {
		e.setSMTP(up.s.Addr(), up.implicit)
		_, err := e.smtpLogin()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 || !strings.Contains(se.Message, "Username and Password not accepted") ||
			!strings.Contains(se.Message, "Google refused the SMTP login") {
			t.Errorf("SMTP (implicit %v) reply %v", up.implicit, err)
		}
		e.wantDiagnosis(SMTP, "gmail-smtp-auth-failed", "bridge login "+gmailUser)
	}
}
