package bridge

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// secretSet collects every secret a session set handled, in each form it
// could take on the wire, for a search of the logs.
type secretSet struct {
	t    *testing.T
	list map[string]string // secret -> what it is (never printed with it)
}

func (s *secretSet) add(what string, secret string) {
	if len(secret) >= 6 {
		s.list[secret] = what
	}
}

// addPassword adds a local password with its PLAIN and LOGIN payloads.
func (s *secretSet) addPassword(user, pw string) {
	b64 := base64.StdEncoding.EncodeToString
	s.add("local password", pw)
	s.add("local password, base64 (AUTH LOGIN)", b64([]byte(pw)))
	s.add("PLAIN payload, base64", b64([]byte("\x00"+user+"\x00"+pw)))
	s.add("PLAIN payload with authzid, base64", b64([]byte(user+"\x00"+user+"\x00"+pw)))
	s.add("PLAIN payload, raw", "\x00"+user+"\x00"+pw)
}

// addToken adds an access token with its XOAUTH2 forms for user.
func (s *secretSet) addToken(user, tok string) {
	s.add("access token", tok)
	s.add("access token, base64", base64.StdEncoding.EncodeToString([]byte(tok)))
	s.add("XOAUTH2 payload, raw", string(xoauth2.Payload(user, tok)))
	s.add("XOAUTH2 payload, base64", string(xoauth2.Encoded(user, tok)))
}

// check fails for every secret found in text, whole or as a 32-byte piece
// of a long one (a truncated trace line would carry a prefix).
func (s *secretSet) check(text string) {
	s.t.Helper()
	for sec, what := range s.list {
		if strings.Contains(text, sec) {
			s.t.Errorf("the log holds a secret: %s", what)
			continue
		}
		if len(sec) < 48 {
			continue
		}
		for i := 0; i+32 <= len(sec); i += 16 {
			if strings.Contains(text, sec[i:i+32]) {
				s.t.Errorf("the log holds part of a secret: %s (bytes %d-%d)", what, i, i+32)
				break
			}
		}
	}
}

// TestSecretsNeverLogged runs logins of every kind over IMAP, POP3 and
// SMTP, a token refresh and failed refreshes, with debug logging and the
// wire trace on, and then searches the whole log for every secret in
// every form.
func TestSecretsNeverLogged(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Front: func(o *FrontOptions) { o.Trace = true }})
	popUp, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: e.Tokens.Validate, TLS: e.UpstreamTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { popUp.Close() })
	e.setServer(POP3, popUp.Addr())
	imapAddr, _ := e.startIMAP(FrontOptions{Trace: true, TLS: e.Local}, false)
	pop3Addr := e.startPOP3(FrontOptions{Trace: true})

	secrets := &secretSet{t: t, list: map[string]string{}}
	for _, u := range []string{smtpUser, smtpOther, smtpShared} {
		secrets.addPassword(u, e.password(u))
		if en, err := e.Store.Get(u); err == nil {
			secrets.add("refresh token", en.RefreshToken)
		}
	}
	ctx := context.Background()
	collect := func() {
		for _, u := range []string{smtpUser, smtpOther} {
			if en, err := e.Store.Get(u); err == nil {
				secrets.add("refresh token", en.RefreshToken)
			}
			secrets.add("refresh token", e.Tokens.LatestRefresh(u))
			if tok, err := e.B.Source(e.account(u)).Token(ctx); err == nil {
				secrets.addToken(u, tok.AccessToken)
			}
		}
	}
	pw := e.password(smtpUser)
	plain := func(authz string) string {
		return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + smtpUser + "\x00" + pw))
	}

	// IMAP: LOGIN with atoms, with a literal, AUTHENTICATE PLAIN both ways.
	for i, script := range []func(w *imapWire){
		func(w *imapWire) { w.send("a1 LOGIN " + smtpUser + " " + pw + "\r\n") },
		func(w *imapWire) {
			w.send("a1 LOGIN " + smtpUser + " {" + itoa(len(pw)) + "}\r\n")
			w.expect("+ Ready")
			w.send(pw + "\r\n")
		},
		func(w *imapWire) { w.send("a1 LOGIN " + smtpUser + " {" + itoa(len(pw)) + "+}\r\n" + pw + "\r\n") },
		func(w *imapWire) { w.send("a1 AUTHENTICATE PLAIN " + plain("") + "\r\n") },
		func(w *imapWire) {
			w.send("a1 AUTHENTICATE PLAIN\r\n")
			w.expect("+ ")
			w.send(plain(smtpUser) + "\r\n")
		},
		// Pipelined after a NOOP, whose reply comes first.
		func(w *imapWire) {
			w.send("a0 NOOP\r\na1 LOGIN " + smtpUser + " {" + itoa(len(pw)) + "}\r\n")
			w.expectPrefix("a0 OK ")
			w.expect("+ Ready")
			w.send(pw + "\r\n")
		},
		func(w *imapWire) {
			w.send("a0 NOOP\r\na1 AUTHENTICATE PLAIN\r\n")
			w.expectPrefix("a0 OK ")
			w.expect("+ ")
			w.send(plain("") + "\r\n")
		},
	} {
		w := dialIMAPWire(t, imapAddr)
		w.expectPrefix("* OK ")
		script(w)
		if l := w.line(); !strings.HasPrefix(l, "a1 OK ") {
			t.Fatalf("IMAP login %d: %q", i, l)
		}
		w.send("a2 SELECT INBOX\r\na3 LOGOUT\r\n")
		for !strings.HasPrefix(w.line(), "a3 ") {
		}
		collect()
	}
	// A wrong password, traced too.
	w := dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + smtpUser + " wrong-" + pw + "\r\n")
	w.expectPrefix("a1 NO ")
	secrets.add("wrong password", "wrong-"+pw)
	// Login lines refused before they are parsed.
	w.send("a2  LOGIN " + smtpUser + " " + pw + "\r\n")
	w.expectPrefix("a2 BAD ")
	w.send("a3 LOGIN\t" + smtpUser + " " + pw + "\r\n")
	w.expectPrefix("a3 BAD ")

	// POP3: USER/PASS and AUTH PLAIN after a continuation.
	p := dialIMAPWire(t, pop3Addr)
	p.expect(pop3Greeting)
	p.send("USER " + smtpUser + "\r\n")
	p.expect(pop3UserOK)
	p.send("PASS " + pw + "\r\n")
	p.expect(pop3LoggedIn)
	p.send("STAT\r\nQUIT\r\n")
	p.expectPrefix("+OK")
	p.expectPrefix("+OK")
	p = dialIMAPWire(t, pop3Addr)
	p.expect(pop3Greeting)
	p.send("AUTH PLAIN\r\n")
	p.expect("+ ")
	p.send(plain("") + "\r\n")
	p.expect(pop3LoggedIn)
	p.send("QUIT\r\n")
	p.expectPrefix("+OK")
	// Pipelined after a NOOP, and a PASS line refused before it is parsed.
	p = dialIMAPWire(t, pop3Addr)
	p.expect(pop3Greeting)
	p.send("PASS\t" + pw + "\r\nNOOP\r\nAUTH PLAIN\r\n")
	p.expectPrefix("-ERR ")
	p.expectPrefix("+OK")
	p.expect("+ ")
	p.send(plain("") + "\r\n")
	p.expect(pop3LoggedIn)
	p.send("QUIT\r\n")
	p.expectPrefix("+OK")
	collect()

	// SMTP: AUTH LOGIN in the clear (traced line by line), then AUTH PLAIN
	// after STARTTLS, each sending a message.
	s := e.wire()
	s.expect("EHLO client.example", "250 ")
	s.expect("AUTH LOGIN", "334 ")
	s.expect(base64.StdEncoding.EncodeToString([]byte(smtpUser)), "334 ")
	s.expect(base64.StdEncoding.EncodeToString([]byte(pw)), "235 ")
	s.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	s.expect("RCPT TO:<"+smtpOther+">", "250 ")
	s.expect("DATA", "354 ")
	s.expect("Subject: traced\r\n\r\nhello\r\n.", "250 ")
	s.expect("QUIT", "221 ")
	// AUTH PLAIN pipelined after a NOOP, whose reply comes first.
	s = e.wire()
	s.expect("EHLO client.example", "250 ")
	s.send("NOOP\r\nAUTH PLAIN")
	if r := s.reply(); !strings.HasPrefix(r, "250 ") {
		t.Fatalf("NOOP: %q", r)
	}
	if r := s.reply(); !strings.HasPrefix(r, "334 ") {
		t.Fatalf("AUTH PLAIN: %q", r)
	}
	s.expect(plain(""), "235 ")
	s.expect("QUIT", "221 ")
	c := e.login(smtpUser)
	if err := smtpSend(c, smtpUser, smtpMessage("tls", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	c.Quit()
	collect()

	// A refresh: the server refused the token, the next login refreshes.
	before := e.Tokens.RefreshRequests()
	tok, err := e.B.Source(e.account(smtpUser)).Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	e.B.Source(e.account(smtpUser)).Invalidate(tok.AccessToken)
	w = dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + smtpUser + " " + pw + "\r\na2 LOGOUT\r\n")
	w.expectPrefix("a1 OK ")
	if e.Tokens.RefreshRequests() == before {
		t.Error("no refresh happened")
	}
	collect()

	// Failed refreshes: the identity platform down (5xx), then a revoked
	// grant for bob.
	invalidate := func(u string) {
		src := e.B.Source(e.account(u))
		if tok, err := src.Token(ctx); err == nil {
			src.Invalidate(tok.AccessToken)
		}
	}
	invalidate(smtpUser)
	invalidate(smtpOther)
	e.Tokens.FailNext(3, tokenstest.ServerError())
	w = dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + smtpUser + " " + pw + "\r\n")
	w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	w.expectPrefix("a1 NO [UNAVAILABLE] ")
	e.Tokens.FailNext(1, tokenstest.InvalidGrant(70008, "The refresh token has expired."))
	c = e.dial(false)
	if err := c.Auth(sasl.NewPlainClient("", smtpOther, e.password(smtpOther))); err == nil {
		t.Error("bob logged in with a revoked grant")
	}
	collect()

	logs := e.logs.String()
	for _, want := range []string{
		"trace=client", "trace=upstream", "LOGIN [redacted]", "AUTHENTICATE PLAIN [redacted]",
		"PASS [redacted]", "AUTH PLAIN [redacted]", "AUTH LOGIN", "B1 AUTHENTICATE XOAUTH2 [redacted]",
		"AUTH XOAUTH2", "line=[redacted]", "refresh failed",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log has no %q", want)
		}
	}
	if len(secrets.list) < 20 {
		t.Fatalf("only %d secrets collected", len(secrets.list))
	}
	secrets.check(logs)
}
