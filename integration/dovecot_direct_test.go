package integration

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// xoauth2IR is the base64 XOAUTH2 initial response for user and token.
func xoauth2IR(user, token string) string { return string(xoauth2.Encoded(user, token)) }

// lineConn is a bare text-protocol client for the checks that need exact
// control of the wire (AUTH line lengths, refusals).
type lineConn struct {
	t  testing.TB
	c  net.Conn
	br *bufio.Reader
}

func dialLine(t testing.TB, addr string, tlsConf *tls.Config) *lineConn {
	t.Helper()
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: 10 * time.Second}
	if tlsConf != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tlsConf)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(60 * time.Second))
	return &lineConn{t: t, c: c, br: bufio.NewReader(c)}
}

func (l *lineConn) send(line string) {
	l.t.Helper()
	if _, err := l.c.Write([]byte(line + "\r\n")); err != nil {
		l.t.Fatalf("write: %v", err)
	}
}

func (l *lineConn) read() string {
	l.t.Helper()
	s, err := l.br.ReadString('\n')
	if err != nil {
		l.t.Fatalf("read: %v (after %q)", err, s)
	}
	return strings.TrimRight(s, "\r\n")
}

// readUntil reads lines until one starts with prefix, returning it.
func (l *lineConn) readUntil(prefix string) string {
	l.t.Helper()
	for range 200 {
		if s := l.read(); strings.HasPrefix(s, prefix) {
			return s
		}
	}
	l.t.Fatalf("no line starting %q", prefix)
	return ""
}

// startTLS upgrades the connection after a STARTTLS exchange.
func (l *lineConn) startTLS(conf *tls.Config) {
	l.t.Helper()
	tc := tls.Client(l.c, conf)
	if err := tc.Handshake(); err != nil {
		l.t.Fatalf("tls: %v", err)
	}
	l.c, l.br = tc, bufio.NewReader(tc)
}

// TestDovecotUpstream checks the harness itself, with no bridge: Dovecot
// takes a live token from the identity platform over XOAUTH2 on each of
// its three services, refuses an expired one, and relays submissions to
// the sink. It also pins the Dovecot traits the bridge must live with.
func TestDovecotUpstream(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, tokenstest.Options{})
	access, _, _ := up.idp.Issue(testUser)
	tc := &tls.Config{RootCAs: up.ca.Pool, ServerName: "127.0.0.1"}

	t.Run("imap", func(t *testing.T) {
		c, err := imapclient.DialTLS(up.dc.imaps, &imapclient.Options{TLSConfig: tc})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Authenticate(xoauth2.OneStep(testUser, access)); err != nil {
			t.Fatalf("XOAUTH2 with a live token: %v", err)
		}
		sel, err := c.Select("INBOX", nil).Wait()
		if err != nil {
			t.Fatal(err)
		}
		if int(sel.NumMessages) != len(up.seed) {
			t.Fatalf("INBOX has %d messages, want %d", sel.NumMessages, len(up.seed))
		}
		msgs, err := c.Fetch(imap.SeqSetNum(1, 2, 3), &imap.FetchOptions{
			BodySection: []*imap.FetchItemBodySection{{Peek: true}},
		}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for i, m := range msgs {
			raw := m.FindBodySection(&imap.FetchItemBodySection{Peek: true})
			if got := subjectOf(raw); got != up.seed[i].subject {
				t.Errorf("message %d subject %q, want %q", i+1, got, up.seed[i].subject)
			}
			sameBody(t, up.seed[i].subject, bodyOf(raw), up.seed[i].body())
		}
		_ = c.Logout().Wait()
	})

	t.Run("imap expired token", func(t *testing.T) {
		old, _, _ := up.idp.Issue(testUser)
		up.idp.Expire(old)
		l := dialLine(t, up.dc.imaps, tc)
		l.read()
		l.send("a AUTHENTICATE XOAUTH2 " + xoauth2IR(testUser, old))
		resp := l.read()
		if strings.HasPrefix(resp, "+") {
			l.send("")
			resp = l.read()
		}
		if !strings.HasPrefix(resp, "a NO") {
			t.Fatalf("expired token: got %q, want a NO", resp)
		}
		// With the auth penalty off, a good login right after is not
		// delayed.
		start := time.Now()
		l.send("b AUTHENTICATE XOAUTH2 " + xoauth2IR(testUser, access))
		if resp := l.readUntil("b "); !strings.HasPrefix(resp, "b OK") {
			t.Fatalf("live token after a failure: %q", resp)
		}
		if d := time.Since(start); d > 1500*time.Millisecond {
			t.Errorf("login after a failure took %s; the auth penalty is not off", d)
		}
	})

	t.Run("pop3", func(t *testing.T) {
		l := dialLine(t, up.dc.pop3s, tc)
		if g := l.read(); !strings.HasPrefix(g, "+OK") {
			t.Fatalf("greeting %q", g)
		}
		l.send("AUTH XOAUTH2")
		if r := l.read(); !strings.HasPrefix(r, "+") {
			t.Fatalf("AUTH XOAUTH2: %q", r)
		}
		l.send(xoauth2IR(testUser, access))
		if r := l.read(); !strings.HasPrefix(r, "+OK") {
			t.Fatalf("XOAUTH2: %q", r)
		}
		l.send("STAT")
		var n, size int
		r := l.read()
		if _, err := fmt.Sscanf(r, "+OK %d %d", &n, &size); err != nil || n != len(up.seed) {
			t.Fatalf("STAT %q, want %d messages", r, len(up.seed))
		}
		l.send("QUIT")
	})

	t.Run("submission", func(t *testing.T) {
		l := dialLine(t, up.dc.subm, nil)
		l.read()
		l.send("EHLO client.test")
		l.readUntil("250 ")
		l.send("STARTTLS")
		l.readUntil("220 ")
		l.startTLS(tc)
		l.send("EHLO client.test")
		l.readUntil("250 ")
		// Dovecot's submission service refuses an AUTH line longer than
		// its 512-byte limit, which a JWT-sized token always exceeds.
		long := "AUTH XOAUTH2 " + xoauth2IR(testUser, access)
		if len(long) <= 512 {
			t.Fatalf("the test token gives only a %d-byte AUTH line; it must exceed 512 to show the limit", len(long))
		}
		l.send(long)
		if r := l.read(); strings.HasPrefix(r, "235") {
			t.Fatalf("a %d-byte AUTH line was accepted; the trait this test pins is gone", len(long))
		} else {
			t.Logf("one-line AUTH of %d bytes: %q", len(long), r)
		}
		// Dovecot closes the connection after a too-long line, so the
		// two-step form needs a new one.
		l = dialLine(t, up.dc.subm, nil)
		l.read()
		l.send("EHLO client.test")
		l.readUntil("250 ")
		l.send("STARTTLS")
		l.readUntil("220 ")
		l.startTLS(tc)
		l.send("EHLO client.test")
		l.readUntil("250 ")
		l.send("AUTH XOAUTH2")
		if r := l.read(); !strings.HasPrefix(r, "334") {
			t.Fatalf("AUTH XOAUTH2: %q", r)
		}
		l.send(xoauth2IR(testUser, access))
		if r := l.read(); !strings.HasPrefix(r, "235") {
			t.Fatalf("two-step XOAUTH2: %q", r)
		}
		msg := newMessage(testUser, "rcpt@example.net", "Direct submission", "Sent straight to Dovecot.\n")
		l.send("MAIL FROM:<" + testUser + ">")
		l.readUntil("250 ")
		l.send("RCPT TO:<rcpt@example.net>")
		l.readUntil("250 ")
		l.send("DATA")
		l.readUntil("354 ")
		if _, err := l.c.Write(append(msg.raw, ".\r\n"...)); err != nil {
			t.Fatal(err)
		}
		if r := l.readUntil("2"); !strings.HasPrefix(r, "250") {
			t.Fatalf("DATA: %q", r)
		}
		l.send("QUIT")
		up.sink.checkDelivered(t, msg, "rcpt@example.net")
	})
}
