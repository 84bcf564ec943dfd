package bridgetest

import (
	"bytes"
	"encoding/base64"
	"net"
	"sync"
	"sync/atomic"
	"unicode/utf16"
)

// exchangeBackend is the made-up back-end host name that the imitation puts
// in its greetings, encoded the way Exchange does.
const exchangeBackend = "BT0PR01MB0001.prod.bridgetest.invalid"

// backendTag returns the bracketed suffix of Exchange's greetings: the base64
// of the back-end host name in UTF-16LE.
func backendTag() string {
	u := utf16.Encode([]rune(exchangeBackend))
	b := make([]byte, 0, 2*len(u))
	for _, r := range u {
		b = append(b, byte(r), byte(r>>8))
	}
	return "[" + base64.StdEncoding.EncodeToString(b) + "]"
}

// imapGreeting replaces imapserver's fixed greeting. Exchange sends no
// CAPABILITY code in it, so clients must ask (RFC 3501 section 7.1);
// neither does Gmail's "* OK Gimap ready for requests from ...".
var imapGreeting = []byte("* OK The Microsoft Exchange IMAP4 service is ready. " + backendTag() + "\r\n")

// imapByeNotConnected is the untagged line Exchange sends after
// "BAD User is authenticated but not connected.".
var imapByeNotConnected = []byte("* BYE Connection closed. 14\r\n")

// imapByeAfterLogin is how some mailboxes refuse the token's identity
// right after the tagged OK of the login (Mode NotConnectedBye).
var imapByeAfterLogin = []byte("* BYE " + imapNotConnected + "\r\n")

// imapListener counts accepted connections and wraps each one so the
// server's greeting can be rewritten and every connection closed on Close,
// including ones imapserver has not registered yet.
type imapListener struct {
	net.Listener
	srv *IMAP
}

func (l *imapListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.srv.conns.Add(1)
	wc := &imapConn{Conn: c, greeting: l.srv.greeting}
	if !l.srv.track(wc) {
		c.Close()
		return nil, net.ErrClosed
	}
	return wc, nil
}

// imapConn rewrites the first line the server writes (the greeting) and can
// append a BYE after the next complete reply, then close.
type imapConn struct {
	net.Conn
	greeting []byte

	mu       sync.Mutex // serialises writes with the greeting/BYE rewriting
	greeted  bool
	byeAfter atomic.Pointer[[]byte] // the BYE line to append, if any
	// loginBye: the next reply is the login's OK; write it as Exchange
	// words it, then imapByeAfterLogin, and close (Mode NotConnectedBye).
	loginBye atomic.Bool
	once     sync.Once
	closeErr error
	dead     bool // a write failed: the peer is gone (guarded by mu)
}

func (c *imapConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.greeted {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			// Still inside imapserver's own greeting: drop it.
			return len(p), nil
		}
		c.greeted = true
		out := append(append([]byte{}, c.greeting...), p[i+1:]...)
		if _, err := c.Conn.Write(out); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if c.dead {
		return len(p), nil
	}
	if c.loginBye.Load() && bytes.HasSuffix(p, []byte("\r\n")) {
		// Exchange's OK carries no CAPABILITY code, so a client asks next.
		tag, _, _ := bytes.Cut(p, []byte(" "))
		out := append(append(append([]byte{}, tag...), " OK AUTHENTICATE completed.\r\n"...), imapByeAfterLogin...)
		c.Conn.Write(out)
		c.Close()
		return len(p), nil
	}
	if _, err := c.Conn.Write(p); err != nil {
		// imapmemserver returns from a FETCH whose write failed without
		// closing its response writer, which leaves imapserver's encoder
		// locked and the session goroutine stuck on its next reply. Report
		// success instead, and close so that the next read ends the session.
		c.dead = true
		c.Close()
		return len(p), nil
	}
	if bye := c.byeAfter.Load(); bye != nil && bytes.HasSuffix(p, []byte("\r\n")) {
		c.Conn.Write(*bye)
		c.Close()
	}
	return len(p), nil
}

// Close is idempotent: imapserver, the session and IMAP.Close may all call it.
func (c *imapConn) Close() error {
	c.once.Do(func() { c.closeErr = c.Conn.Close() })
	return c.closeErr
}
