package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// Upstream timeouts. A login step gets 30 s; once logged in go-smtp's own
// RFC 5321 timeouts apply (5 min per command, 12 min after the final dot).
const (
	smtpStepTimeout  = 30 * time.Second
	smtpWriteTimeout = 2 * time.Minute
	smtpQuitTimeout  = 2 * time.Second
	// smtpTokenMargin: Exchange ends a session when the token it started
	// with expires, so a session this close to it is replaced at the next
	// MAIL rather than risk losing a message mid-DATA.
	smtpTokenMargin = 2 * time.Minute
)

// errAuthRequired answers MAIL before AUTH (RFC 4954 section 6).
var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

// errUpstreamLost tells the client that the message was not sent and that
// trying again is right (RFC 3463 4.4.2: bad connection).
var errUpstreamLost = &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
	Message: "Connection to Microsoft's SMTP server lost; the message was not sent, please send it again"}

// smtpSession is one local client between EHLO and QUIT (go-smtp starts a
// new one after STARTTLS). Its methods run on the connection's goroutine,
// except Data under BDAT, hence op.
type smtpSession struct {
	s        *SMTPServer
	conn     *smtp.Conn
	peer     net.Addr
	done     func()
	failures int

	op sync.Mutex // serialises use of the upstream client

	mu      sync.Mutex // guards up against Shutdown's abortUpstream
	acct    *Account
	user    string // XOAUTH2 user=: the token owner
	up      *upstream
	release func() // gives back the upstream slot
	inTx    bool   // the upstream has a transaction open
	tx      smtpTx // the message under way, for its log line

	// viaGraph: the session submits through Microsoft Graph, with the
	// envelope gathered in graphTx (smtp_graph.go); up stays nil.
	viaGraph bool
	graphTx  graphTx
}

// upstream is one authenticated session with the upstream server.
type upstream struct {
	c      *smtp.Client
	raw    net.Conn
	expiry time.Time
}

// quit ends the session politely, briefly.
func (u *upstream) quit() {
	u.c.CommandTimeout = smtpQuitTimeout
	if u.c.Quit() != nil {
		u.c.Close()
	}
}

// upstreamConn puts a deadline on every write: go-smtp's client sets none
// while a message streams, and a stalled upstream must not hang a session.
type upstreamConn struct{ net.Conn }

func (c *upstreamConn) Write(p []byte) (int, error) {
	c.Conn.SetWriteDeadline(time.Now().Add(smtpWriteTimeout))
	return c.Conn.Write(p)
}

// openUpstream dials the SMTP server of l's account, upgrades with
// STARTTLS unless it speaks implicit TLS (Provider.SMTPImplicitTLS), and
// logs in as l.User with l.Token. Failures are *diag.Failure, or
// DialUpstream's *LoginError.
func (s *SMTPServer) openUpstream(ctx context.Context, l *Login) (*upstream, error) {
	a := l.Account
	raw, err := s.b.DialUpstream(ctx, a, SMTP)
	if err != nil {
		return nil, err
	}
	addr := a.Server(SMTP)
	// The greeting wait is go-smtp's 5 minutes; ctx bounds the whole login.
	stop := context.AfterFunc(ctx, func() { raw.Close() })
	defer stop()
	cfg, err := s.b.UpstreamTLS(addr)
	if err != nil {
		raw.Close()
		return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageTLS, Text: addr, Err: err}
	}
	newClient := smtp.NewClientStartTLS
	implicit := a.Provider.SMTPImplicitTLS
	if implicit {
		// DialUpstream did the handshake; the greeting comes with EHLO.
		newClient = func(conn net.Conn, _ *tls.Config) (*smtp.Client, error) { return smtp.NewClient(conn), nil }
	}
	c, err := newClient(&upstreamConn{raw}, cfg)
	if err != nil {
		raw.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return nil, smtpFailure(diag.StageGreeting, se)
		}
		if ctx.Err() == nil && err.Error() == "smtp: server doesn't support STARTTLS" {
			return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageTLS, Text: addr + " offers no STARTTLS", Err: err}
		}
		return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageGreeting, Text: addr, Err: err}
	}
	c.CommandTimeout = smtpStepTimeout
	if ut := newWireTrace(s.b.Logger(), s.o.tracing(), SMTP, "upstream", raw.RemoteAddr()); ut != nil {
		// go-smtp shows both directions in one stream; the trace tells
		// them apart by the reply codes. It ends with the login.
		c.DebugWriter = &traceWriter{t: ut}
		defer func() { c.DebugWriter = nil }()
	}
	// EHLO again, over TLS: after STARTTLS this runs the handshake.
	if err := c.Hello("localhost"); err != nil {
		c.Close()
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return nil, smtpFailure(diag.StageGreeting, se)
		}
		if implicit {
			return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageGreeting, Text: addr, Err: err}
		}
		return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageTLS, Text: addr, Err: err}
	}
	if err := SMTPUpstreamLogin(c, l.User, l.Token); err != nil {
		c.Close()
		var f *diag.Failure
		if errors.As(err, &f) {
			return nil, err
		}
		return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageAuth, Text: addr, Err: err}
	}
	if !stop() {
		c.Close()
		return nil, &diag.Failure{Proto: SMTP, Stage: diag.StageAuth, Text: addr, Err: ctx.Err()}
	}
	c.CommandTimeout = 5 * time.Minute
	return &upstream{c: c, raw: raw, expiry: l.Expiry}, nil
}

// SMTPUpstreamLogin logs in as user with token on an upstream SMTP
// session that has said EHLO over TLS, with AUTH XOAUTH2 in two steps
// (RFC 4954 section 4): the credentials follow the server's empty 334,
// because a token on the AUTH line passes the 512-octet command limit
// that Dovecot's submission service enforces. `bridge serve` and `bridge
// doctor` both log in with it.
//
// A refusal is a *diag.Failure with Stage "auth" holding the server's
// reply; a broken connection is go-smtp's error.
func SMTPUpstreamLogin(c *smtp.Client, user, token string) error {
	err := c.Auth(xoauth2.TwoStep(user, token))
	var se *smtp.SMTPError
	if errors.As(err, &se) {
		return smtpFailure(diag.StageAuth, se)
	}
	return err
}

// current returns the upstream session, or nil.
func (ss *smtpSession) current() *upstream {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	return ss.up
}

// connect returns a usable upstream session, opening a new one (fresh)
// when the last one dropped or its token is about to expire. Errors are
// client replies.
func (ss *smtpSession) connect() (up *upstream, fresh bool, err error) {
	up = ss.current()
	if up != nil && (up.expiry.IsZero() || ss.s.b.opts.Now().Add(smtpTokenMargin).Before(up.expiry)) {
		return up, false, nil
	}
	if up != nil {
		ss.setUpstream(nil)
		up.quit()
	}
	ctx, cancel := context.WithTimeout(ss.s.ctx, smtpLoginTimeout)
	defer cancel()
	b := ss.s.b
	src := b.Source(ss.acct)
	if src == nil {
		return nil, false, errUpstreamLost
	}
	l, err := b.takeToken(ctx, src, ss.acct, ss.user)
	if err != nil {
		return nil, false, ss.refused(diag.StageMail, loginError(ss.acct, err))
	}
	err = b.upstreamLogin(ctx, SMTP, l, func() (err error) {
		up, err = ss.s.openUpstream(ctx, l)
		return err
	})
	l.Token = ""
	if err != nil {
		if graph, reply := ss.smtpRefused(ss.acct, diag.StageMail, err); !graph {
			return nil, false, reply
		}
		ss.viaGraph = true
		return nil, false, errViaGraph
	}
	ss.s.b.Record(ss.acct, SMTP, nil)
	ss.s.log.Debug("upstream session reopened", "account", ss.acct.Email)
	ss.setUpstream(up)
	return up, true, nil
}

func (ss *smtpSession) setUpstream(up *upstream) {
	ss.mu.Lock()
	ss.up = up
	ss.mu.Unlock()
	ss.inTx = false
}

// dropUpstream closes the upstream connection without QUIT: its state is
// unknown, and an open DATA must never see its final dot.
func (ss *smtpSession) dropUpstream() {
	up := ss.current()
	ss.setUpstream(nil)
	if up != nil {
		up.c.Close()
	}
}

// abortUpstream closes the upstream connection from another goroutine
// (Shutdown), making any call blocked on it return.
func (ss *smtpSession) abortUpstream() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.up != nil {
		ss.up.raw.Close()
	}
}

// hangUp closes the local connection after the reply being prepared.
func (ss *smtpSession) hangUp() {
	if lc := localConn(ss.conn.Conn()); lc != nil {
		lc.hangUpAfterReply()
	}
}

// Reset needs no upstream round trip: an upstream transaction left open
// is reset at the next MAIL.
func (ss *smtpSession) Reset() {}

// Logout ends the upstream session and gives its slot back.
func (ss *smtpSession) Logout() error {
	ss.op.Lock()
	defer ss.op.Unlock()
	ss.s.forget(ss)
	ss.mu.Lock()
	up, release := ss.up, ss.release
	ss.up, ss.release = nil, nil
	ss.mu.Unlock()
	if up != nil {
		up.quit()
	}
	if release != nil {
		release()
	}
	ss.done()
	return nil
}

// Mail starts a transaction upstream. An upstream that dropped since the
// last message (or answers 421) is redialled once, transparently.
func (ss *smtpSession) Mail(from string, opts *smtp.MailOptions) error {
	if ss.acct == nil {
		return errAuthRequired
	}
	ss.op.Lock()
	defer ss.op.Unlock()
	if ss.viaGraph {
		return ss.graphMail(from, opts)
	}
	for attempt := 0; ; attempt++ {
		up, fresh, err := ss.connect()
		if err == errViaGraph {
			return ss.graphMail(from, opts)
		}
		if err != nil {
			return err
		}
		if ss.inTx {
			err = up.c.Reset()
		}
		if err == nil {
			ss.inTx = false
			err = up.c.Mail(from, opts)
		}
		if err == nil {
			ss.inTx = true
			ss.tx = smtpTx{from: from, start: time.Now()}
			return nil
		}
		var se *smtp.SMTPError
		isReply := errors.As(err, &se)
		if isReply && se.Code != 421 {
			return ss.explain(diag.StageMail, se)
		}
		ss.dropUpstream()
		if fresh || attempt > 0 {
			if isReply {
				return ss.explain(diag.StageMail, se)
			}
			return errUpstreamLost
		}
	}
}

// Rcpt adds a recipient upstream.
func (ss *smtpSession) Rcpt(to string, opts *smtp.RcptOptions) error {
	ss.op.Lock()
	defer ss.op.Unlock()
	if ss.viaGraph {
		return ss.graphRcpt(to)
	}
	up := ss.current()
	if up == nil || !ss.inTx {
		return errUpstreamLost
	}
	if err := up.c.Rcpt(to, opts); err != nil {
		return ss.replied(diag.StageRcpt, err)
	}
	ss.tx.rcpts++
	return nil
}

// replied passes an upstream reply through, dropping the upstream when the
// connection broke or the server is closing it (421).
func (ss *smtpSession) replied(stage diag.Stage, err error) error {
	if err == nil {
		return nil
	}
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		ss.dropUpstream()
		return errUpstreamLost
	}
	if se.Code == 421 {
		ss.dropUpstream()
	}
	return ss.explain(stage, se)
}

// Data streams the message upstream as it arrives. The client gets 250
// only when the upstream said 250 to the final dot, and gets that reply. If the local side
// breaks off, the upstream connection is closed instead of finishing the
// DATA, so a truncated message is never submitted.
func (ss *smtpSession) Data(r io.Reader) error {
	ss.op.Lock()
	defer ss.op.Unlock()
	if lc := localConn(ss.conn.Conn()); lc != nil {
		lc.inData.Store(true) // busy for a goodbye until the message is done
		defer lc.inData.Store(false)
	}
	if ss.viaGraph {
		return ss.graphData(r)
	}
	up := ss.current()
	if up == nil || !ss.inTx {
		return errUpstreamLost
	}
	w, err := up.c.Data()
	if err != nil {
		return ss.replied(diag.StageData, err)
	}
	src := &dataSource{r: r, conn: ss.conn.Conn(), timeout: ss.s.srv.ReadTimeout}
	size, err := io.Copy(w, src)
	if err != nil {
		ss.dropUpstream() // never w.Close(): it would send the final dot
		if src.err != nil {
			ss.s.log.Info("client broke off DATA; upstream transaction abandoned", "account", ss.acct.Email, "err", src.err)
			var se *smtp.SMTPError
			if errors.As(src.err, &se) {
				return se
			}
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the message failed; it was not sent"}
		}
		ss.s.log.Warn("upstream lost during DATA", "account", ss.acct.Email, "err", err)
		return errUpstreamLost
	}
	if lc := localConn(ss.conn.Conn()); lc != nil && lc.sawEOF.Load() {
		// The client left inside a BDAT chunk (RFC 3030): go-smtp ends the
		// chunk at the connection's end without an error, so what came is
		// only part of the message. The final dot must not go out.
		ss.dropUpstream()
		ss.s.log.Info("client left inside a BDAT chunk; upstream transaction abandoned", "account", ss.acct.Email)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the message failed; it was not sent"}
	}
	resp, err := w.CloseWithResponse()
	ss.inTx = false
	if err != nil {
		var se *smtp.SMTPError
		if !errors.As(err, &se) {
			ss.s.log.Warn("upstream lost at the end of DATA", "account", ss.acct.Email, "err", err)
		} else {
			ss.logMessage(size, se)
		}
		return ss.replied(diag.StageData, err)
	}
	// CloseWithResponse succeeds only on exactly 250.
	reply := upstreamReply(250, resp.StatusText)
	ss.logMessage(size, reply)
	return reply
}
