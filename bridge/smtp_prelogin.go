package bridge

import (
	"bytes"
	"errors"
	"io"
	"time"

	"github.com/emersion/go-smtp"
)

// Bounds on what an SMTP client may send before it has logged in. go-smtp
// applies one line limit to commands and message data alike, and data
// lines may be long (smtpMaxLine), so the tighter pre-login bounds live
// here, on the connection.
const (
	// smtpPreLoginLine bounds one line before login: RFC 4954 section 4
	// allows an AUTH command line of 12,288 octets.
	smtpPreLoginLine = 12288 + 2
	// smtpPreLoginBytes bounds everything read before login, TLS
	// handshake records included; a client that logs in sends a few KB.
	smtpPreLoginBytes = 256 << 10
)

// errSMTPPreLoginBudget ends a connection that sent too much before
// logging in.
var errSMTPPreLoginBudget = errors.New("bridge: smtp: too much input before login")

// smtpTooMuch is the reply to a plain-text client that went over the
// pre-login budget (RFC 5321 section 3.8: a 421 before closing).
const smtpTooMuch = "421 4.7.0 Too much input before login; closing the connection\r\n"

// startPreLogin sets the pre-login deadline and budget of a new
// connection. The deadline holds whatever read deadlines go-smtp sets,
// until the client logs in.
func (c *smtpConn) startPreLogin(d time.Duration) {
	c.deadline = time.Now().Add(d)
	c.budget = smtpPreLoginBytes
	c.Conn.SetReadDeadline(c.deadline)
	if c.tls.Load() {
		c.trace.note("implicit TLS: wire lines are encrypted; AUTH is noted")
	}
}

// markLoggedIn lifts the pre-login bounds once AUTH has succeeded, and
// keeps the connection from being closed to make room under the
// connection cap (it is released when forgotten).
func (c *smtpConn) markLoggedIn() {
	c.loggedIn.Store(true)
	c.s.conns.hold(c.Conn)
	c.trace.stop()
}

// Read notes, for the goodbye at shutdown, that go-smtp waits for the
// client, and enforces the pre-login bounds (read).
func (c *smtpConn) Read(p []byte) (int, error) {
	c.reading.Store(true)
	n, err := c.read(p)
	c.reading.Store(false)
	if n > 0 {
		c.cmdRead.Store(false)
	}
	return n, err
}

// read enforces the pre-login bounds: a line longer than smtpPreLoginLine
// gets go-smtp's "500 5.4.0 Too long line" and a close; more than
// smtpPreLoginBytes in all gets a 421 and a close. Reads run on the
// connection's goroutine only.
func (c *smtpConn) read(p []byte) (int, error) {
	if c.loggedIn.Load() {
		n, err := c.Conn.Read(p)
		if err == io.EOF {
			c.sawEOF.Store(true)
		}
		return n, err
	}
	n, err := c.Conn.Read(p)
	if n == 0 {
		return n, err
	}
	c.budget -= n
	if c.budget < 0 {
		if !c.tls.Load() {
			c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
			io.WriteString(c.Conn, smtpTooMuch)
			c.trace.fromOther([]byte(smtpTooMuch))
			return 0, io.EOF
		}
		return 0, errSMTPPreLoginBudget
	}
	if c.tls.Load() {
		return n, err // TLS records: lines are not visible here
	}
	c.trace.fromAuth(p[:n])
	for _, b := range p[:n] {
		if b == '\n' {
			c.line = 0
			continue
		}
		if c.line++; c.line > smtpPreLoginLine {
			return 0, smtp.ErrTooLongLine
		}
	}
	return n, err
}

// SetReadDeadline keeps go-smtp's per-command deadlines from reaching past
// the pre-login deadline, or the end of a goodbye. go-smtp sets one
// before it reads each command line; outside a message, a call means
// that the next read is for a command.
func (c *smtpConn) SetReadDeadline(t time.Time) error {
	if !c.inData.Load() {
		c.cmdRead.Store(true)
	}
	return c.Conn.SetReadDeadline(c.clamp(t))
}

// SetDeadline is SetReadDeadline for both directions.
func (c *smtpConn) SetDeadline(t time.Time) error {
	if err := c.Conn.SetWriteDeadline(t); err != nil {
		return err
	}
	return c.Conn.SetReadDeadline(c.clamp(t))
}

func (c *smtpConn) clamp(t time.Time) time.Time {
	if end := c.endBy.Load(); end != 0 && (t.IsZero() || t.UnixNano() > end) {
		return time.Unix(0, end)
	}
	if c.loggedIn.Load() || c.deadline.IsZero() {
		return t
	}
	if t.IsZero() || t.After(c.deadline) {
		return c.deadline
	}
	return t
}

// smtpStartTLSReply is how go-smtp answers STARTTLS (RFC 3207 section 4):
// the bytes after it are TLS records.
var smtpStartTLSReply = []byte("220 2.0.0 Ready to start TLS")

// traceWrite traces a reply written before login, and notices the switch
// to TLS after STARTTLS.
func (c *smtpConn) traceWrite(p []byte) {
	if c.loggedIn.Load() || c.tls.Load() {
		return
	}
	c.trace.fromOther(p)
	if bytes.HasPrefix(p, smtpStartTLSReply) {
		c.tls.Store(true)
		c.trace.note("STARTTLS: wire lines are encrypted from here; AUTH is noted")
	}
}
