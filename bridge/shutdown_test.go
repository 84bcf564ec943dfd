package bridge

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"net"
	"strings"
	"testing"
	"time"
)

// lineClient is a line-level client over any connection (imapWire serves
// every protocol here).
func lineClient(t *testing.T, c net.Conn) *imapWire {
	t.Cleanup(func() { c.Close() })
	return &imapWire{t: t, c: c, br: bufio.NewReader(c)}
}

// smtpWireLogin says EHLO and logs in with AUTH PLAIN on w, whose greeting
// has been read.
func smtpWireLogin(w *imapWire, user, pw string) {
	w.t.Helper()
	w.send("EHLO client.example\r\n")
	for !strings.HasPrefix(w.line(), "250 ") {
	}
	w.send("AUTH PLAIN " + base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+pw)) + "\r\n")
	w.expectPrefix("235 ")
}

// TestServerShutdownSaysGoodbye: at a stop, every idle session is told so
// the way its protocol does, at once: a relayed IMAP session in IDLE gets
// "* BYE", a relayed POP3 session "-ERR", a logged-in SMTP session "421"
// (in the clear, after STARTTLS and on implicit TLS), and sessions before
// login the same. The stop is logged at once, and a server with only
// idle sessions stops well within its 10 s grace period.
func TestServerShutdownSaysGoodbye(t *testing.T) {
	e := newServerEnvGrace(t, false, 10*time.Second)
	pw := e.password(alice)
	tlsConf := e.ClientTLS.Clone()
	tlsConf.ServerName = "127.0.0.1"
	dial := func(key string) *imapWire {
		c, err := net.DialTimeout("tcp", e.addrs[key], 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return lineClient(t, c)
	}
	type goodbye struct {
		what string
		w    *imapWire
		want string
	}
	var all []goodbye

	imap := dial("listen.imap")
	imap.expectPrefix("* OK ")
	imap.send("a1 LOGIN " + alice + " " + pw + "\r\na2 SELECT INBOX\r\n")
	imap.expectPrefix("a1 OK ")
	for !strings.HasPrefix(imap.line(), "a2 ") {
	}
	imap.send("a3 IDLE\r\n")
	imap.expectPrefix("+ ")
	all = append(all, goodbye{"IMAP in IDLE", imap, "* BYE Server shutting down"})

	pop := dial("listen.pop3")
	pop.expect(pop3Greeting)
	pop.send("USER " + alice + "\r\nPASS " + pw + "\r\n")
	pop.expect(pop3UserOK)
	pop.expect(pop3LoggedIn)
	pop.send("STAT\r\n")
	pop.expectPrefix("+OK ")
	all = append(all, goodbye{"relayed POP3", pop, pop3ShutdownBye})

	smtpPlain := dial("listen.smtp")
	smtpPlain.expectPrefix("220 ")
	smtpWireLogin(smtpPlain, alice, pw)
	all = append(all, goodbye{"SMTP in the clear", smtpPlain, "421 4.3.2 "})

	raw := dial("listen.smtp")
	raw.expectPrefix("220 ")
	raw.send("EHLO client.example\r\n")
	for !strings.HasPrefix(raw.line(), "250 ") {
	}
	raw.send("STARTTLS\r\n")
	raw.expectPrefix("220 ")
	smtpTLS := lineClient(t, tls.Client(raw.c, tlsConf))
	smtpWireLogin(smtpTLS, alice, pw)
	all = append(all, goodbye{"SMTP after STARTTLS", smtpTLS, "421 4.3.2 "})

	ic, err := tls.Dial("tcp", e.addrs["listen.smtps"], tlsConf)
	if err != nil {
		t.Fatal(err)
	}
	smtps := lineClient(t, ic)
	smtps.expectPrefix("220 ")
	smtpWireLogin(smtps, alice, pw)
	all = append(all, goodbye{"SMTP on implicit TLS", smtps, "421 4.3.2 "})

	for _, p := range []struct{ key, greeting, want string }{
		{"listen.imap", "* OK ", "* BYE Server shutting down"},
		{"listen.pop3", "+OK ", pop3ShutdownBye},
		{"listen.smtp", "220 ", "421 4.3.2 "},
	} {
		w := dial(p.key)
		w.expectPrefix(p.greeting)
		all = append(all, goodbye{"before login on " + p.key, w, p.want})
	}

	start := time.Now()
	e.shutdown(t)
	// The clients here read nothing until the server has stopped, so each
	// connection lingers its full second (a real client closes on the
	// goodbye).
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a server with idle sessions took %v to stop (grace 10 s)", d)
	}
	for _, g := range all {
		if l := g.w.line(); !strings.HasPrefix(l, g.want) {
			t.Errorf("%s: got %q, want %q...", g.what, l, g.want)
		}
		g.w.expectClosed(5 * time.Second)
	}
	logs := e.logs.String()
	if !strings.Contains(logs, "msg=stopping sessions_open=8 grace=10s") {
		t.Errorf("the stop is not logged with its sessions and grace:\n%s", logs)
	}
}

// TestServerShutdownWaitsForBusySMTP: a message in DATA is not cut by a
// goodbye; the session keeps the grace period, and Hurry ends it at once
// without the message reaching the upstream.
func TestServerShutdownWaitsForBusySMTP(t *testing.T) {
	e := newServerEnvGrace(t, false, 10*time.Second)
	c, err := net.DialTimeout("tcp", e.addrs["listen.smtp"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	w := lineClient(t, c)
	w.expectPrefix("220 ")
	smtpWireLogin(w, alice, e.password(alice))
	w.send("MAIL FROM:<" + alice + ">\r\nRCPT TO:<bob@example.com>\r\nDATA\r\n")
	w.expectPrefix("250 ")
	w.expectPrefix("250 ")
	w.expectPrefix("354 ")
	w.send("Subject: half a message\r\n\r\nthe rest never comes\r\n")

	e.stop()
	e.stop = nil
	select {
	case <-e.done:
		t.Fatal("the server stopped while a message was in DATA")
	case <-time.After(time.Second):
	}
	start := time.Now()
	e.srv.Hurry()
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Hurry did not end the grace period")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("Hurry took %v", d)
	}
	w.expectClosed(5 * time.Second)
	if n := len(e.smtp.Messages()); n != 0 {
		t.Errorf("%d messages reached the upstream", n)
	}
	if !strings.Contains(e.logs.String(), "sessions still busy were closed") {
		t.Error("the cut sessions are not logged")
	}
}
