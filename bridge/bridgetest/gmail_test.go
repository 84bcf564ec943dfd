package bridgetest

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/internal/xoauth2"
)

// googleChallenge is the challenge line Gmail sends after a refused token,
// as captured (google/gmail-oauth2-tools#78).
const googleChallenge = "eyJzdGF0dXMiOiI0MDAiLCJzY2hlbWVzIjoiQmVhcmVyIiwic2NvcGUiOiJodHRwczovL21haWwuZ29vZ2xlLmNvbS8ifQ=="

// TestGmailIMAPWire checks Gmail's IMAP texts: the greeting, the error
// challenge answered by an empty line, the final NO, and IMAP switched off
// by a Workspace administrator.
func TestGmailIMAPWire(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{Service: Gmail})
	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("* OK Gimap ready for requests from 127.0.0.1 ")
	w.send("a1 CAPABILITY")
	capLine := w.expectPrefix("* CAPABILITY IMAP4rev1 ")
	for _, c := range []string{" AUTH=XOAUTH2", " SASL-IR", " LITERAL-"} {
		if !strings.Contains(capLine, c) {
			t.Errorf("%q lacks %q", capLine, c)
		}
	}
	w.expectPrefix("a1 OK")
	w.send("a2 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "expired"))
	w.expect("+ " + googleChallenge)
	w.send("")
	w.expect("a2 NO [AUTHENTICATIONFAILED] Invalid credentials (Failure)")

	s.SetMode(Disabled)
	w.send("a3 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expect("a3 NO [ALERT] IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)")

	s.SetMode(Normal)
	w.send("a4 AUTHENTICATE XOAUTH2 " + xoauth2B64(imapAlice, "good-"+imapAlice))
	w.expectPrefix("a4 OK ")
	if s.Logins() != 1 || s.FailedLogins() != 2 {
		t.Errorf("counters: logins %d failed %d, want 1 2", s.Logins(), s.FailedLogins())
	}
}

// TestGmailIMAPClient: the bridge's own XOAUTH2 client answers the
// challenge, so the final refusal arrives.
func TestGmailIMAPClient(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestIMAP(t, IMAPOptions{Service: Gmail})
	c := dialIMAP(t, s, cfg, nil)
	err := c.Authenticate(xoauth2.OneStep(imapAlice, "expired"))
	if err == nil || !strings.Contains(err.Error(), "Invalid credentials (Failure)") {
		t.Fatalf("Authenticate: %v, want Gmail's refusal", err)
	}
}

func TestGmailPOP3Wire(t *testing.T) {
	checkNoGoroutineLeak(t)
	serverTLS, clientTLS := selfSignedTLS(t)
	s, err := NewPOP3(POP3Options{Validate: goodTokenOnly, TLS: serverTLS, Service: Gmail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	s.Add(popUser, []byte("Subject: hi\r\n\r\nhello\r\n"))
	w := dialLines(t, s.Addr(), clientTLS)
	w.expectPrefix("+OK Gpop ready for requests from 127.0.0.1 ")
	w.send("CAPA")
	w.expect("+OK Capability list follows")
	var capa []string
	for l := w.line(); l != "."; l = w.line() {
		capa = append(capa, l)
	}
	if !strings.Contains(strings.Join(capa, "|"), "SASL PLAIN XOAUTH2 OAUTHBEARER") {
		t.Errorf("CAPA %q", capa)
	}
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "expired"))
	w.expect("+ " + googleChallenge)
	w.send("")
	w.expect("-ERR [AUTH] Username and password not accepted.")
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "good-"+popUser))
	w.expect("+OK Welcome.")
	w.send("STAT")
	w.expectPrefix("+OK 1 ")
	w.send("QUIT")
	w.expect("+OK Farewell.")
}

// TestGmailSMTPImplicitTLS: smtp.gmail.com:465 speaks TLS from the first
// byte, offers AUTH at once, and refuses a token with the error challenge
// and a two-line 535 5.7.8.
func TestGmailSMTPImplicitTLS(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, tc := smtpFixture(t, SMTPOptions{Service: Gmail, ImplicitTLS: true})
	w := dialLines(t, s.Addr(), tc)
	w.expectPrefix("220 smtp.gmail.com ESMTP ")
	w.send("EHLO client.example")
	var ehlo []string
	for {
		l := w.line()
		ehlo = append(ehlo, l)
		if strings.HasPrefix(l, "250 ") {
			break
		}
	}
	all := strings.Join(ehlo, "|")
	if !strings.Contains(all, "AUTH LOGIN PLAIN XOAUTH2") || strings.Contains(all, "STARTTLS") {
		t.Errorf("EHLO %q: want AUTH at once and no STARTTLS", ehlo)
	}
	w.send("AUTH XOAUTH2")
	w.expect("334 ")
	w.send(xoauth2B64("alice@gmail.example", "expired"))
	w.expect("334 " + googleChallenge)
	w.send("")
	w.expect("535-5.7.8 Username and Password not accepted. For more information, go to")
	last := w.expectPrefix("535 5.7.8  https://support.google.com/mail/?p=BadCredentials ")
	if !strings.HasSuffix(last, " - gsmtp") {
		t.Errorf("last line %q", last)
	}

	c, err := smtp.DialTLS(s.Addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(xoauth2.TwoStep("alice@gmail.example", "tok-alice@gmail.example")); err != nil {
		t.Fatalf("Auth: %v", err)
	}
	if err := c.SendMail("alice@gmail.example", []string{"bob@example.com"}, bytes.NewReader([]byte("Subject: x\r\n\r\nhi\r\n"))); err != nil {
		t.Fatalf("SendMail: %v", err)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages stored", n)
	}
}

// TestGmailSMTPStartTLS: on 587 the first EHLO offers STARTTLS and no
// AUTH; after it, AUTH.
func TestGmailSMTPStartTLS(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, tc := smtpFixture(t, SMTPOptions{Service: Gmail})
	w := dialLines(t, s.Addr(), nil)
	w.expectPrefix("220 smtp.gmail.com ESMTP ")
	w.send("EHLO client.example")
	var ehlo []string
	for {
		l := w.line()
		ehlo = append(ehlo, l)
		if strings.HasPrefix(l, "250 ") {
			break
		}
	}
	if all := strings.Join(ehlo, "|"); !strings.Contains(all, "STARTTLS") || strings.Contains(all, "AUTH") {
		t.Errorf("EHLO before TLS %q: want STARTTLS and no AUTH", ehlo)
	}
	c := smtpDial(t, s, tc)
	if ok, mechs := c.Extension("AUTH"); !ok || !strings.Contains(mechs, "XOAUTH2") {
		t.Errorf("AUTH after STARTTLS: %v %q", ok, mechs)
	}
	err := c.Auth(xoauth2.TwoStep("alice@gmail.example", "expired"))
	code, enh, msg := smtpCode(t, err)
	if code != 535 || enh != (smtp.EnhancedCode{5, 7, 8}) || !strings.Contains(msg, "Username and Password not accepted") {
		t.Errorf("refusal %d %v %q", code, enh, msg)
	}
}
