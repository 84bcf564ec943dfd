package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/tlsutil"
)

// IMAPServer is the IMAP front end. It speaks the pre-login part of IMAP4rev1
// itself (greeting, CAPABILITY, NOOP, LOGOUT, ID, STARTTLS, LOGIN and
// AUTHENTICATE PLAIN), logs in upstream with XOAUTH2, and from then on
// relays bytes unchanged, so every extension the upstream offers works.
type IMAPServer struct {
	relayFront
}

// NewIMAPServer returns an IMAP front end for b. It does no I/O.
func NewIMAPServer(b *Bridge, o FrontOptions) *IMAPServer {
	return &IMAPServer{relayFront: newRelayFront(b, o, IMAP)}
}

// Serve accepts IMAP clients on ln until Shutdown, and closes ln. With
// implicitTLS every connection starts with a TLS handshake (port 993
// style), which needs FrontOptions.TLS. After Shutdown it returns an error
// saying the server is closed.
func (s *IMAPServer) Serve(ln net.Listener, implicitTLS bool) error {
	return s.serve(ln, implicitTLS, IMAP, s.handle)
}

// handle runs one client connection up to its login; serve closes c
// afterwards, after running the relay handle returns, if any.
func (s *IMAPServer) handle(c net.Conn, implicitTLS bool) (relay func()) {
	c.SetDeadline(time.Now().Add(s.o.preLogin()))
	sess := &imapSession{s: s, raw: c, conn: c, peer: c.RemoteAddr()}
	if implicitTLS {
		tc := tlsutil.Server(c, s.o.TLS)
		if err := tc.HandshakeContext(s.ctx); err != nil {
			s.log.Debug("tls handshake failed", "peer", peerString(sess.peer), "err", err)
			return nil
		}
		sess.conn, sess.tls = tc, true
	}
	sess.trace = newWireTrace(s.b.Logger(), s.o.tracing(), IMAP, "client", sess.peer)
	sess.conn = traced(sess.conn, sess.trace, true)
	sess.setReader()
	sess.run()
	return sess.relay
}

// imapSession is one client connection before login.
type imapSession struct {
	s        *IMAPServer
	raw      net.Conn // the accepted connection, as the connection set tracks it
	conn     net.Conn // the client connection, TLS once negotiated
	peer     net.Addr
	tls      bool
	br       *bufio.Reader
	r        imapReader
	failures int
	client   string // the ID command's "name", cleaned (clientName)
	out      []byte
	trace    *wireTrace // nil unless FrontOptions.Trace
	relay    func()     // set by a login: the relayed session, for handle to return
}

// imapShutdownBye tells a client the server is stopping (RFC 3501 section
// 7.1.5: BYE announces that the server closes the connection).
const imapShutdownBye = "* BYE Server shutting down\r\n"

// imapMaxPreLoginCommands bounds the commands (refused ones included) a
// connection may send before logging in, so a stream of garbage ends
// before the pre-login deadline; a real client needs a handful.
const imapMaxPreLoginCommands = 100

// imapReaderSize is the client-side read buffer before login. Pre-login
// lines are short; the buffer is dropped at handover.
const imapReaderSize = 2 << 10

func (c *imapSession) setReader() {
	c.br = bufio.NewReaderSize(c.conn, imapReaderSize)
	c.r = imapReader{br: c.br, cont: func() error { return c.write("+ Ready\r\n") }}
}

// write sends one or more complete reply lines.
func (c *imapSession) write(format string, args ...any) error {
	c.out = fmt.Appendf(c.out[:0], format, args...)
	_, err := c.conn.Write(c.out)
	return err
}

// caps lists what the connection can do now; before TLS with RequireTLS,
// logins are off (RFC 3501 section 6.2.3 LOGINDISABLED) and no AUTH=
// mechanism is offered. XOAUTH2 is never offered: clients log in with the
// local password.
func (c *imapSession) caps() string {
	caps := "IMAP4rev1 LITERAL+ ID"
	if c.s.o.TLS != nil && !c.tls {
		caps += " STARTTLS"
	}
	if c.loginDisabled() {
		return caps + " LOGINDISABLED"
	}
	return caps + " SASL-IR AUTH=PLAIN"
}

func (c *imapSession) loginDisabled() bool { return c.s.o.RequireTLS && !c.tls }

// run reads commands until the session logs in (and its relay ends), logs
// out, fails too often or breaks.
func (c *imapSession) run() {
	if c.write("* OK [CAPABILITY %s] bridge ready\r\n", c.caps()) != nil {
		return
	}
	for n := 0; ; n++ {
		if n == imapMaxPreLoginCommands {
			c.write("* BYE Too many commands without logging in\r\n")
			return
		}
		cmd, err := c.r.readCommand()
		if err != nil {
			c.readFailed(err)
			var re *imapReadError
			if errors.As(err, &re) && !re.fatal {
				continue
			}
			return
		}
		if done := c.dispatch(cmd); done {
			return
		}
	}
}

// readFailed answers a refused command, or says goodbye on a timeout.
func (c *imapSession) readFailed(err error) {
	var re *imapReadError
	switch {
	case errors.As(err, &re):
		tag := re.tag
		if tag == "" {
			tag = "*"
		}
		if re.fatal {
			c.write("%s BAD %s\r\n* BYE Closing the connection\r\n", tag, re.text)
		} else {
			c.write("%s BAD %s\r\n", tag, re.text)
		}
	case isTimeout(err) && c.s.stopping.Load():
		// Shutdown moved the deadline (preLoginGoodbye).
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.write(imapShutdownBye)
	case isTimeout(err):
		// The read deadline has passed; give the goodbye a moment.
		c.conn.SetWriteDeadline(time.Now().Add(time.Second))
		c.write("* BYE Timed out waiting for login\r\n")
	}
}

// isTimeout reports a deadline error of net.Conn or tls.Conn.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// dispatch runs one command and reports whether the session is over.
func (c *imapSession) dispatch(cmd *imapCmd) bool {
	var err error
	switch cmd.name {
	case "CAPABILITY":
		if len(cmd.args) != 0 {
			return c.bad(cmd, "CAPABILITY takes no arguments")
		}
		err = c.write("* CAPABILITY %s\r\n%s OK CAPABILITY completed\r\n", c.caps(), cmd.tag)
	case "NOOP":
		if len(cmd.args) != 0 {
			return c.bad(cmd, "NOOP takes no arguments")
		}
		err = c.write("%s OK NOOP completed\r\n", cmd.tag)
	case "LOGOUT":
		if len(cmd.args) != 0 {
			return c.bad(cmd, "LOGOUT takes no arguments")
		}
		c.write("* BYE Logging out\r\n%s OK LOGOUT completed\r\n", cmd.tag)
		return true
	case "ID":
		// RFC 2971: the argument is a list of field/value pairs or NIL.
		if len(cmd.args) != 1 || !cmd.args[0].isList && (cmd.args[0].quoted || !strings.EqualFold(cmd.args[0].s, "NIL")) ||
			len(cmd.args[0].list)%2 != 0 {
			return c.bad(cmd, "ID takes a list of field/value pairs or NIL")
		}
		c.client = idName(cmd.args[0].list)
		err = c.write("* ID (\"name\" \"bridge\")\r\n%s OK ID completed\r\n", cmd.tag)
	case "STARTTLS":
		return c.startTLS(cmd)
	case "LOGIN":
		if len(cmd.args) != 2 || cmd.args[0].isList || cmd.args[1].isList {
			return c.bad(cmd, "LOGIN takes a user name and a password")
		}
		return c.login(cmd.tag, cmd.args[0].s, cmd.args[1].s)
	case "AUTHENTICATE":
		return c.authenticate(cmd)
	default:
		return c.bad(cmd, "Command not available before login")
	}
	return err != nil
}

// idName returns the "name" field of an ID list (RFC 2971), cleaned for
// display; "" when there is none or it is NIL.
func idName(fields []string) string {
	for i := 0; i+1 < len(fields); i += 2 {
		if strings.EqualFold(fields[i], "name") && !strings.EqualFold(fields[i+1], "NIL") {
			return clientName(fields[i+1])
		}
	}
	return ""
}

func (c *imapSession) bad(cmd *imapCmd, text string) bool {
	return c.write("%s BAD %s\r\n", cmd.tag, text) != nil
}

// startTLS upgrades the connection (RFC 3501 section 6.2.1). Bytes the
// client sent after the command, before the handshake, are refused rather
// than carried into the TLS session (the STARTTLS injection attack).
func (c *imapSession) startTLS(cmd *imapCmd) bool {
	if c.s.o.TLS == nil || c.tls || len(cmd.args) != 0 {
		return c.bad(cmd, "STARTTLS not available")
	}
	if c.br.Buffered() > 0 {
		return c.bad(cmd, "STARTTLS must be the last command before the handshake")
	}
	if c.write("%s OK Begin TLS negotiation now\r\n", cmd.tag) != nil {
		return true
	}
	tc := tlsutil.Server(untraced(c.conn), c.s.o.TLS)
	if err := tc.HandshakeContext(c.s.ctx); err != nil {
		c.s.log.Debug("starttls handshake failed", "peer", peerString(c.peer), "err", err)
		return true
	}
	c.trace.note("TLS started")
	c.conn, c.tls = traced(tc, c.trace, true), true
	c.client = "" // nothing said before TLS is kept (RFC 3501 section 6.2.1)
	c.setReader()
	return false
}
