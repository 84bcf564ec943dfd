package bridge

import (
	"io"
	"net"
	"time"
)

// smtpShutdownReply is the goodbye to an SMTP client when the server stops
// (RFC 5321 section 3.8: a server that must shut down sends 421 before it
// closes; RFC 3463 4.3.2: system not accepting network messages).
const smtpShutdownReply = "421 4.3.2 Service shutting down, try again later\r\n"

// goodbye is the connection's goodbye (connSet): when go-smtp waits for the
// client's next command, outside a message, the client gets
// smtpShutdownReply and the connection is half-closed, so go-smtp's read
// ends once the client has read it (lingerTime at most) and the session
// logs out upstream. A connection in TLS that has not said EHLO since the
// handshake (the handshake itself may be under way) is closed without a
// word. Sessions in DATA or in a login are busy until they finish or the
// grace period ends.
func (c *smtpConn) goodbye(bool) bool {
	if !c.reading.Load() || !c.cmdRead.Load() || c.inData.Load() {
		return false
	}
	end := time.Now().Add(lingerTime)
	c.endBy.Store(end.UnixNano())
	var w io.Writer = c.Conn
	if c.tls.Load() {
		w = nil
		if tc := c.tlsOut.Load(); tc != nil {
			w = tc
		}
	}
	if w != nil {
		c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(w, smtpShutdownReply)
	}
	if tc := c.tlsOut.Load(); tc != nil {
		tc.CloseWrite()
	}
	if tc, ok := c.Conn.(*net.TCPConn); ok {
		tc.CloseWrite()
	} else {
		c.Conn.Close()
	}
	c.Conn.SetReadDeadline(end)
	return true
}
