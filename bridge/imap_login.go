package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

const (
	// imapLoginTimeout bounds a login's upstream part: token refresh, dial,
	// TLS and AUTHENTICATE.
	imapLoginTimeout = 45 * time.Second
	// imapReplyTimeout is how long the client gets to take a login reply,
	// however long the upstream took.
	imapReplyTimeout = 10 * time.Second
	// imapUpstreamBuf is the upstream read buffer during login; it is
	// dropped at handover.
	imapUpstreamBuf = 1 << 10
)

// authenticate runs AUTHENTICATE PLAIN (RFC 3501 section 6.2.2, RFC 4616),
// with the initial response on the command line (RFC 4959) or after a "+"
// continuation.
func (c *imapSession) authenticate(cmd *imapCmd) bool {
	if len(cmd.args) < 1 || len(cmd.args) > 2 || cmd.args[0].isList || len(cmd.args) == 2 && cmd.args[1].isList {
		return c.bad(cmd, "AUTHENTICATE takes a mechanism and an optional initial response")
	}
	if !strings.EqualFold(cmd.args[0].s, "PLAIN") {
		return c.write("%s NO Unsupported authentication mechanism\r\n", cmd.tag) != nil
	}
	if c.loginDisabled() {
		return c.refusePlain(cmd.tag)
	}
	var resp []byte
	if len(cmd.args) == 2 {
		resp = []byte(cmd.args[1].s)
	} else {
		if c.write("+ \r\n") != nil {
			return true
		}
		line, err := c.r.readSASL()
		if err != nil {
			c.readFailed(err)
			return true
		}
		resp = line
	}
	if string(resp) == "*" {
		return c.write("%s BAD Authentication cancelled\r\n", cmd.tag) != nil
	}
	var raw []byte
	if string(resp) != "=" {
		var err error
		if raw, err = base64.StdEncoding.AppendDecode(nil, resp); err != nil {
			return c.write("%s BAD Invalid base64 in the PLAIN response\r\n", cmd.tag) != nil
		}
	}
	defer clear(raw)
	parts := bytes.Split(raw, []byte{0})
	if len(parts) != 3 || len(parts[1]) == 0 {
		return c.write("%s BAD Invalid PLAIN response\r\n", cmd.tag) != nil
	}
	if len(parts[0]) > 0 && !bytes.EqualFold(parts[0], parts[1]) {
		c.failures++
		if c.write("%s NO [AUTHORIZATIONFAILED] Log in as the mailbox itself; acting as another user is not supported\r\n", cmd.tag) != nil {
			return true
		}
		return c.tooMany()
	}
	return c.login(cmd.tag, string(parts[1]), string(parts[2]))
}

// refusePlain refuses a login before TLS when TLS is required (RFC 5530
// PRIVACYREQUIRED).
func (c *imapSession) refusePlain(tag string) bool {
	c.failures++
	if c.write("%s NO [PRIVACYREQUIRED] Use STARTTLS or the implicit-TLS port before logging in\r\n", tag) != nil {
		return true
	}
	return c.tooMany()
}

// tooMany ends the session after FrontOptions.MaxFailures refusals.
func (c *imapSession) tooMany() bool {
	if c.failures < c.s.o.maxFailures() {
		return false
	}
	c.write("* BYE Too many failed logins\r\n")
	return true
}

// login checks the local login and logs in upstream; on success it sets
// c.relay to the relayed session. It reports whether the pre-login phase
// is over.
func (c *imapSession) login(tag, user, pass string) bool {
	if c.loginDisabled() {
		return c.refusePlain(tag)
	}
	defer c.s.conns.hold(c.raw)()
	b := c.s.b
	ctx, cancel := context.WithTimeout(c.s.ctx, imapLoginTimeout)
	defer cancel()
	l, err := b.Login(ctx, IMAP, user, pass, c.peer, c.client)
	if err != nil {
		return c.refuse(tag, err)
	}
	var up net.Conn
	var ubr *bufio.Reader
	var caps []string
	err = b.upstreamLogin(ctx, IMAP, l, func() (err error) {
		up, ubr, caps, err = c.upstream(ctx, l)
		return err
	})
	watch := &imapWatch{b: b, acct: l.Account, token: l.Token}
	l.Token = ""
	if err != nil {
		return c.refuse(tag, loginError(l.Account, err))
	}
	b.Record(l.Account, IMAP, nil)
	c.conn.SetDeadline(time.Time{})
	reply := tag + " OK Logged in\r\n"
	if caps = postLoginCaps(caps); len(caps) > 0 {
		reply = tag + " OK [CAPABILITY " + strings.Join(caps, " ") + "] Logged in\r\n"
	}
	if _, err := c.conn.Write([]byte(reply)); err != nil {
		up.Close()
		return true
	}
	c.s.log.Info("session started", "account", l.Account.Email, "peer", peerString(c.peer))
	done := b.Track(IMAP)
	br := c.br
	c.br, c.r.br = nil, nil // the relay owns the connection from here
	c.trace.stop()
	r := newRelay(untraced(c.conn), up, c.s.o.idle(), &replyLines{imap: true})
	c.s.conns.onStop(c.raw, func(last bool) bool { return r.goodbye(imapShutdownBye, last) })
	release := c.s.conns.hold(c.raw) // the login's own hold ends when it returns
	s, email, peer := c.s, l.Account.Email, c.peer
	c.relay = func() {
		defer release()
		defer done()
		st := r.run(br, ubr, watch)
		s.log.Info("session ended", "account", email, "peer", peerString(peer),
			"bytes_up", st.toUpstream, "bytes_down", st.toClient)
	}
	return true
}

// upstream dials the IMAP server of l's account and logs in there with
// l.Token. It returns the connection with its reader, which may hold
// bytes already, and the post-login capabilities.
func (c *imapSession) upstream(ctx context.Context, l *Login) (net.Conn, *bufio.Reader, []string, error) {
	b := c.s.b
	up, err := b.DialUpstream(ctx, l.Account, IMAP)
	if err != nil {
		return nil, nil, nil, err
	}
	// Closing the upstream is what interrupts its reads when the login
	// times out or the server shuts down.
	stop := context.AfterFunc(ctx, func() { up.Close() })
	up.SetDeadline(time.Now().Add(imapLoginTimeout))
	ut := newWireTrace(b.Logger(), c.s.o.tracing(), IMAP, "upstream", up.RemoteAddr())
	tup := traced(up, ut, false)
	ubr := bufio.NewReaderSize(tup, imapUpstreamBuf)
	caps, err := IMAPUpstreamLogin(tup, ubr, l.User, l.Token)
	ut.stop()
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = up.SetDeadline(time.Time{})
	}
	if err != nil {
		up.Close()
		return nil, nil, nil, err
	}
	return up, ubr, caps, nil
}

// refuse answers a failed login (Bridge.Refuse) with the RFC 5530 code
// that fits its Outcome, and a text that says what happened and where to
// look.
func (c *imapSession) refuse(tag string, err error) bool {
	c.failures++
	c.conn.SetWriteDeadline(time.Now().Add(imapReplyTimeout))
	r := c.s.b.Refuse(IMAP, err)
	d := r.Diagnosis
	var reply string
	switch r.Outcome {
	case OutcomeBadPassword:
		reply = tag + " NO [AUTHENTICATIONFAILED] " + badPasswordText + "\r\n"
	case OutcomeNeedsLogin:
		run := "run `bridge login`"
		alert := "The bridge must sign in to Microsoft again: " + run
		if r.Account != nil {
			who := r.Account.TokenAccount()
			run = "run `" + r.Account.LoginCommand() + "`"
			alert = "The bridge must sign in to " + r.Account.Service() + " again for " + who + ": " + run
		}
		if d.Title != "" {
			alert += " -- " + diag.ReplyText(d.Title, 0)
		}
		reply = "* OK [ALERT] " + alert + "\r\n" +
			tag + " NO [AUTHENTICATIONFAILED] Sign-in needed: " + run + "\r\n"
	case OutcomeUnavailable:
		reply = tag + " NO [UNAVAILABLE] " + d.Short() + "\r\n"
	default:
		code := "AUTHENTICATIONFAILED"
		if d.Kind == diag.KindAdmin {
			code = "CONTACTADMIN"
		}
		text := d.Short()
		if f := r.Failure; f != nil && f.Text != "" {
			text += " (" + r.Account.Service() + " said: \"" + strings.ReplaceAll(diag.ReplyText(f.Text, 80), `"`, "'") + "\")"
		}
		reply = tag + " NO [" + code + "] " + text + "\r\n"
	}
	if c.write("%s", reply) != nil {
		return true
	}
	return c.tooMany()
}
