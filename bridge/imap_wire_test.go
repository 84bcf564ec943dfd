package bridge

import (
	"bufio"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// imapWire is a scripted IMAP client: it sends exact lines and expects exact
// replies.
type imapWire struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialIMAPWire(t *testing.T, addr string) *imapWire {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial %s: %v", addr, err)
	}
	t.Cleanup(func() { c.Close() })
	return &imapWire{t: t, c: c, br: bufio.NewReader(c)}
}

func (w *imapWire) send(s string) {
	w.t.Helper()
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(w.c, s); err != nil {
		w.t.Fatalf("send: %v", err)
	}
}

func (w *imapWire) line() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := w.br.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: %v (after %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		w.t.Fatalf("reply line without CRLF: %q", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// expect reads one line and requires it to equal want.
func (w *imapWire) expect(want string) {
	w.t.Helper()
	if got := w.line(); got != want {
		w.t.Fatalf("got  %q\nwant %q", got, want)
	}
}

// expectPrefix reads one line and requires it to start with want.
func (w *imapWire) expectPrefix(want string) string {
	w.t.Helper()
	got := w.line()
	if !strings.HasPrefix(got, want) {
		w.t.Fatalf("got  %q\nwant prefix %q", got, want)
	}
	return got
}

// expectClosed requires the server to close the connection within d.
func (w *imapWire) expectClosed(d time.Duration) {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(d))
	l, err := w.br.ReadString('\n')
	if err == nil {
		w.t.Fatalf("connection still open; read %q", l)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection not closed within %v", d)
	}
}

const plainCaps = "IMAP4rev1 LITERAL+ ID SASL-IR AUTH=PLAIN"

func TestIMAPWirePreLogin(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expect("* OK [CAPABILITY " + plainCaps + "] bridge ready")

	steps := []struct{ send, want string }{
		{"a1 CAPABILITY\r\n", "* CAPABILITY " + plainCaps},
		{"", "a1 OK CAPABILITY completed"},
		{"a2 noop\r\n", "a2 OK NOOP completed"},
		{"a3 ID (\"name\" \"mutt\" \"version\" {3+}\r\n1.2)\r\n", "* ID (\"name\" \"bridge\")"},
		{"", "a3 OK ID completed"},
		{"a4 ID NIL\r\n", "* ID (\"name\" \"bridge\")"},
		{"", "a4 OK ID completed"},
		{"a5 ID (\"odd\")\r\n", "a5 BAD ID takes a list of field/value pairs or NIL"},
		{"a6 SELECT INBOX\r\n", "a6 BAD Command not available before login"},
		{"a7 STARTTLS\r\n", "a7 BAD STARTTLS not available"},
		{"a8 AUTHENTICATE XOAUTH2 dGVzdA==\r\n", "a8 NO Unsupported authentication mechanism"},
		{"\r\n", "* BAD Empty command line"},
		{"+x NOOP\r\n", "* BAD Invalid tag"},
		{"a9\r\n", "a9 BAD Missing command"},
		{"b1 LOGIN \"unterminated\r\n", "b1 BAD Unterminated quoted string"},
		{"b2 LOGIN \"bad\\escape\" x\r\n", "b2 BAD Invalid escape in quoted string"},
		{"b3 LOGIN {5}x\r\n", "b3 BAD A literal must end the line"},
		{"b4 LOGIN a\r\n", "b4 BAD LOGIN takes a user name and a password"},
		{"b5 NOOP extra\r\n", "b5 BAD NOOP takes no arguments"},
		{"b6 LOGIN a%b c\r\n", "b6 BAD Invalid atom"},
		{"b7 AUTHENTICATE PLAIN !!!\r\n", "b7 BAD Invalid base64 in the PLAIN response"},
		{"b8 NOOP  \r\n", "b8 OK NOOP completed"},
		{"b9 LOGOUT\r\n", "* BYE Logging out"},
		{"", "b9 OK LOGOUT completed"},
	}
	for _, s := range steps {
		if s.send != "" {
			w.send(s.send)
		}
		w.expect(s.want)
	}
	w.expectClosed(2 * time.Second)
}

func TestIMAPWireLoginForms(t *testing.T) {
	h := newHarness(t)
	const email = "alice@example.com"
	h.setPassword(email, `p"w\d x`)
	addr, _ := h.startIMAP(FrontOptions{}, false)

	plain := func(authz, user, pass string) string {
		return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
	}
	cases := []struct {
		name   string
		script func(w *imapWire)
	}{
		{"quoted", func(w *imapWire) {
			w.send("a1 LOGIN \"alice@example.com\" \"p\\\"w\\\\d x\"\r\n")
		}},
		{"sync literal", func(w *imapWire) {
			w.send("a1 LOGIN alice@example.com {7}\r\n")
			w.expect("+ Ready")
			w.send("p\"w\\d x\r\n")
		}},
		{"two literals", func(w *imapWire) {
			w.send("a1 LOGIN {17}\r\n")
			w.expect("+ Ready")
			w.send("alice@example.com {7}\r\n")
			w.expect("+ Ready")
			w.send("p\"w\\d x\r\n")
		}},
		{"non-sync literal", func(w *imapWire) {
			w.send("a1 LOGIN alice@example.com {7+}\r\np\"w\\d x\r\n")
		}},
		{"plain with initial response", func(w *imapWire) {
			w.send("a1 AUTHENTICATE PLAIN " + plain("", email, `p"w\d x`) + "\r\n")
		}},
		{"plain after continuation", func(w *imapWire) {
			w.send("a1 AUTHENTICATE PLAIN\r\n")
			w.expect("+ ")
			w.send(plain(email, email, `p"w\d x`) + "\r\n")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			w := dialIMAPWire(t, addr)
			w.expectPrefix("* OK ")
			tc.script(w)
			ok := w.expectPrefix("a1 OK [CAPABILITY ")
			if strings.Contains(ok, "AUTH=") || strings.Contains(ok, "SASL-IR") || strings.Contains(ok, "STARTTLS") {
				t.Errorf("post-login capabilities keep pre-login items: %q", ok)
			}
			if !strings.Contains(ok, "MOVE") {
				t.Errorf("post-login capabilities are not the upstream's: %q", ok)
			}
			// The session is now relayed to the upstream.
			w.send("a2 NOOP\r\n")
			w.expectPrefix("a2 OK")
			w.send("a3 LOGOUT\r\n")
			w.expectPrefix("* BYE")
			w.expectPrefix("a3 OK")
		})
	}
	h.checkLogs()
}

func TestIMAPWireAuthenticateCancelAndRefusals(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 AUTHENTICATE PLAIN\r\n")
	w.expect("+ ")
	w.send("*\r\n")
	w.expect("a1 BAD Authentication cancelled")

	pl := base64.StdEncoding.EncodeToString([]byte("bob@example.com\x00alice@example.com\x00x"))
	w.send("a2 AUTHENTICATE PLAIN " + pl + "\r\n")
	w.expectPrefix("a2 NO [AUTHORIZATIONFAILED] ")

	w.send("a3 AUTHENTICATE PLAIN " + base64.StdEncoding.EncodeToString([]byte("only-one-part")) + "\r\n")
	w.expect("a3 BAD Invalid PLAIN response")
	w.send("a4 NOOP\r\n")
	w.expect("a4 OK NOOP completed")
}

func TestIMAPWireBounds(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)

	t.Run("long line", func(t *testing.T) {
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN " + strings.Repeat("x", imapMaxLine+10) + "\r\n")
		w.expect("* BAD Command line too long")
		w.expect("* BYE Closing the connection")
		w.expectClosed(2 * time.Second)
	})
	t.Run("huge sync literal", func(t *testing.T) {
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN {1073741824}\r\n")
		w.expect("a1 BAD [TOOBIG] Literal too big")
		w.send("a2 NOOP\r\n")
		w.expect("a2 OK NOOP completed")
	})
	t.Run("huge non-sync literal", func(t *testing.T) {
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN {1073741824+}\r\nxxxxxxxx")
		w.expect("a1 BAD [TOOBIG] Literal too big")
		w.expect("* BYE Closing the connection")
		w.expectClosed(2 * time.Second)
	})
	t.Run("failures then BYE", func(t *testing.T) {
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		for i := range 3 {
			w.send("a1 LOGIN alice@example.com wrong\r\n")
			w.expect("a1 NO [AUTHENTICATIONFAILED] " + badPasswordText)
			if i == 2 {
				w.expect("* BYE Too many failed logins")
			}
		}
		w.expectClosed(2 * time.Second)
	})
	t.Run("pre-login timeout", func(t *testing.T) {
		addr, _ := h.startIMAP(FrontOptions{PreLoginTimeout: 300 * time.Millisecond}, false)
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		start := time.Now()
		w.expect("* BYE Timed out waiting for login")
		w.expectClosed(2 * time.Second)
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("closed after %v, want about 300ms", d)
		}
	})
}

func TestIMAPWireRequireTLS(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{TLS: h.Local, RequireTLS: true}, false)
	w := dialIMAPWire(t, addr)
	w.expect("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID STARTTLS LOGINDISABLED] bridge ready")
	w.send("a1 LOGIN alice@example.com " + h.password("alice@example.com") + "\r\n")
	w.expectPrefix("a1 NO [PRIVACYREQUIRED] ")
	w.send("a2 AUTHENTICATE PLAIN\r\n")
	w.expectPrefix("a2 NO [PRIVACYREQUIRED] ")
	before := h.IMAP.Connections()

	// Commands pipelined behind STARTTLS are refused, not carried over.
	w.send("a3 STARTTLS\r\na4 NOOP\r\n")
	w.expect("a3 BAD STARTTLS must be the last command before the handshake")
	w.expect("a4 OK NOOP completed")

	w.send("a5 STARTTLS\r\n")
	w.expect("a5 OK Begin TLS negotiation now")
	cfg := h.ClientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(w.c, cfg)
	tc.SetDeadline(time.Now().Add(5 * time.Second))
	if err := tc.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	w = &imapWire{t: t, c: tc, br: bufio.NewReader(tc)}
	w.send("a6 CAPABILITY\r\n")
	w.expect("* CAPABILITY " + plainCaps)
	w.expect("a6 OK CAPABILITY completed")
	w.send("a7 STARTTLS\r\n")
	w.expect("a7 BAD STARTTLS not available")
	w.send("a8 LOGIN alice@example.com " + h.password("alice@example.com") + "\r\n")
	w.expectPrefix("a8 OK [CAPABILITY ")
	if got := h.IMAP.Connections(); got != before+1 {
		t.Errorf("upstream connections = %d, want %d", got, before+1)
	}
	h.checkLogs()
}

// TestIMAPWirePipelinedAfterLogin: commands sent right behind LOGIN, before
// its reply, reach the upstream first.
func TestIMAPWirePipelinedAfterLogin(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN alice@example.com " + h.password("alice@example.com") + "\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n")
	w.expectPrefix("a1 OK [CAPABILITY ")
	var sawSelect bool
	for range 20 {
		l := w.line()
		if strings.HasPrefix(l, "a2 OK") {
			sawSelect = true
		}
		if strings.HasPrefix(l, "a3 ") {
			break
		}
	}
	if !sawSelect {
		t.Fatal("the pipelined SELECT got no OK")
	}
}
