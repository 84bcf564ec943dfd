package bridge

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tlsutil"
)

// pop3MaxUpstreamLine bounds a line read from the upstream during login.
const pop3MaxUpstreamLine = 8 << 10

// Replies for login failures; the ones that depend on the diagnosis are
// built in refusal. RFC 3206 section 4 defines [AUTH] and [SYS/TEMP].
const (
	pop3LoggedIn = "+OK Logged in"
)

// pop3ShutdownBye tells a client the server is stopping. POP3 has no
// unsolicited replies; a client reads it as the answer to its next
// command, and [SYS/TEMP] (RFC 3206) says to try again later.
const pop3ShutdownBye = "-ERR [SYS/TEMP] Server shutting down, try again later"

// POP3Server is the POP3 front end: it speaks the AUTHORIZATION state
// itself, logs in to the upstream with two-step AUTH XOAUTH2, and then
// relays bytes both ways unchanged.
type POP3Server struct {
	relayFront
}

// NewPOP3Server returns a POP3 front end for b. It does no I/O.
func NewPOP3Server(b *Bridge, o FrontOptions) *POP3Server {
	return &POP3Server{relayFront: newRelayFront(b, o, POP3)}
}

// Serve accepts POP3 clients on ln until Shutdown. With implicitTLS every
// connection starts with a TLS handshake (the pop3s port, RFC 8314
// section 3.3); otherwise STLS is offered when a certificate is set.
func (s *POP3Server) Serve(ln net.Listener, implicitTLS bool) error {
	return s.serve(ln, implicitTLS, POP3, s.session)
}

// session runs one client connection up to its login and returns the
// relayed session, if any, for serve to run. The pre-login phase,
// upstream login included, must end within the pre-login timeout.
func (s *POP3Server) session(c net.Conn, implicitTLS bool) (relay func()) {
	deadline := time.Now().Add(s.o.preLogin())
	ctx, cancel := context.WithDeadline(s.ctx, deadline)
	defer cancel()
	c.SetDeadline(deadline)
	peer := c.RemoteAddr()
	log := s.log.With("peer", peerString(peer))

	conn := c
	if implicitTLS {
		tc := tlsutil.Server(c, s.o.TLS)
		if err := tc.HandshakeContext(ctx); err != nil {
			log.Debug("pop3 TLS handshake failed", "err", err)
			return nil
		}
		conn = tc
	}
	tr := newWireTrace(s.b.Logger(), s.o.tracing(), POP3, "client", peer)
	r := newPOP3Reader(traced(conn, tr, true), implicitTLS, s.o)
	if r.reply(pop3Greeting) != nil {
		return nil
	}
	for {
		req, err := r.next()
		if err != nil {
			if isTimeout(err) && s.stopping.Load() {
				// Shutdown moved the deadline (preLoginGoodbye).
				c.SetWriteDeadline(time.Now().Add(time.Second))
				r.reply(pop3ShutdownBye)
			}
			log.Debug("pop3 session ended before login", "err", err)
			return nil
		}
		switch req.kind {
		case pop3Quit:
			return nil
		case pop3STLS:
			tc := tlsutil.Server(conn, s.o.TLS)
			if err := tc.HandshakeContext(ctx); err != nil {
				log.Debug("pop3 STLS handshake failed", "err", err)
				return nil
			}
			tr.note("TLS started")
			conn = tc
			r.reset(traced(tc, tr, true))
		case pop3Login:
			release := s.conns.hold(c)
			up, upBuf, acct, reply := s.login(ctx, req, peer, tr != nil)
			if up == nil {
				release()
				if r.reply(reply) != nil || r.fail() {
					return nil
				}
				continue
			}
			// Counted before the client hears +OK, so a status taken
			// after the reply sees the session.
			done := s.b.Track(POP3)
			s.b.Record(acct, POP3, nil)
			if r.reply(pop3LoggedIn) != nil {
				up.Close()
				done()
				return nil
			}
			log.Info("pop3 session relayed", "account", acct.Email)
			tr.stop()
			br := r.br
			return func() {
				defer release()
				defer done()
				s.relay(c, conn, br, up, upBuf)
			}
		}
	}
}

// relay hands the logged-in session to the byte relay. Commands the client
// pipelined behind its login are still in clientBuf and go upstream first.
// raw is the accepted connection under client. The goodbye at a stop
// waits for a line end and a quiet session; it does not know which
// replies are multi-line, so a RETR stalled at a line end when the server
// stops would end in the goodbye line without its terminating ".", which
// no client takes for a whole message.
func (s *POP3Server) relay(raw, client net.Conn, clientBuf *bufio.Reader, up net.Conn, upBuf *bufio.Reader) {
	client.SetDeadline(time.Time{})
	up.SetDeadline(time.Time{})
	r := newRelay(client, up, s.o.idle(), &replyLines{})
	s.conns.onStop(raw, func(last bool) bool { return r.goodbye(pop3ShutdownBye+"\r\n", last) })
	r.run(clientBuf, upBuf, nil)
}

// login checks the local login, dials the upstream and logs in there. On
// success it returns the upstream connection and its reader (which may
// hold bytes already); on failure up is nil and reply is the -ERR line for
// the client.
func (s *POP3Server) login(ctx context.Context, req pop3Req, peer net.Addr, trace bool) (up net.Conn, upBuf *bufio.Reader, acct *Account, reply string) {
	l, err := s.b.Login(ctx, POP3, req.user, req.pass, peer, "")
	if err != nil {
		return nil, nil, nil, s.refusal(err)
	}
	acct = l.Account
	err = s.b.upstreamLogin(ctx, POP3, l, func() (err error) {
		up, upBuf, err = s.upstream(ctx, l, trace)
		return err
	})
	l.Token = ""
	if err != nil {
		return nil, nil, nil, s.refusal(loginError(acct, err))
	}
	return up, upBuf, acct, ""
}

// upstream dials the POP3 server of l's account and logs in there with
// l.Token. It returns the connection and its reader, which may hold bytes
// already.
func (s *POP3Server) upstream(ctx context.Context, l *Login, trace bool) (net.Conn, *bufio.Reader, error) {
	up, err := s.b.DialUpstream(ctx, l.Account, POP3)
	if err != nil {
		return nil, nil, err
	}
	// Closing the upstream is what interrupts its reads when the server
	// shuts down.
	stop := context.AfterFunc(ctx, func() { up.Close() })
	ut := newWireTrace(s.b.Logger(), trace, POP3, "upstream", up.RemoteAddr())
	br, err := POP3UpstreamLogin(ctx, traced(up, ut, false), l.User, l.Token)
	ut.stop()
	if !stop() && err == nil {
		err = &diag.Failure{Proto: POP3, Stage: diag.StageAuth, Err: fmt.Errorf("bridge: pop3 upstream: %w", ctx.Err())}
	}
	if err != nil {
		up.Close()
		return nil, nil, err
	}
	return up, br, nil
}

// refusal words a failed login (Bridge.Refuse) as the client's -ERR line:
// a temporary failure (the network, the identity platform, a dropped
// upstream) as [SYS/TEMP], anything else as [AUTH] (RFC 3206 section 4),
// with the diagnosis's short text.
func (s *POP3Server) refusal(err error) string {
	r := s.b.Refuse(POP3, err)
	switch r.Outcome {
	case OutcomeBadPassword:
		return pop3BadCreds
	case OutcomeNeedsLogin:
		if r.Account == nil {
			return "-ERR [AUTH] The account must sign in again: run `bridge login`"
		}
		who := diag.ReplyText(r.Account.TokenAccount(), 0)
		return fmt.Sprintf("-ERR [AUTH] %s must sign in again: run `%s` -- %s", who, diag.ReplyText(r.Account.LoginCommand(), 0), diag.ReplyText(r.Diagnosis.Title, 0))
	case OutcomeUnavailable:
		return "-ERR [SYS/TEMP] " + r.Diagnosis.Short()
	}
	if r.Failure != nil && r.Failure.Err != nil {
		return "-ERR [SYS/TEMP] " + r.Diagnosis.Short()
	}
	return "-ERR [AUTH] " + r.Diagnosis.Short()
}

// POP3UpstreamLogin reads the greeting of a fresh upstream POP3
// connection up and logs in as user with token, with the two-step AUTH
// XOAUTH2 Microsoft requires (RFC 5034 section 4: the initial response
// goes after the "+" continuation, not on the AUTH line). It returns the
// reader positioned after the +OK, which may hold bytes already. `bridge
// serve` and `bridge doctor` both log in with it; ctx's deadline becomes
// the connection's.
//
// A refusal is a *diag.Failure carrying the upstream's line; a transport
// failure is a *diag.Failure wrapping the error.
func POP3UpstreamLogin(ctx context.Context, up net.Conn, user, token string) (*bufio.Reader, error) {
	if dl, ok := ctx.Deadline(); ok {
		up.SetDeadline(dl)
	}
	br := bufio.NewReader(up)
	var buf []byte
	read := func() (string, error) {
		line, err := readLine(br, buf, pop3MaxUpstreamLine)
		buf = line
		return string(line), err
	}
	stage := diag.StageGreeting
	fail := func(err error) error {
		return &diag.Failure{Proto: POP3, Stage: stage, Err: fmt.Errorf("bridge: pop3 upstream: %w", err)}
	}
	refused := func(line string) error {
		return &diag.Failure{Proto: POP3, Stage: stage, Text: line}
	}
	line, err := read()
	if err != nil {
		return nil, fail(err)
	}
	if !strings.HasPrefix(line, "+OK") {
		return nil, refused(line)
	}
	stage = diag.StageAuth
	sasl := xoauth2.TwoStep(user, token)
	if _, err := up.Write(sasl.Command("AUTH")); err != nil {
		return nil, fail(err)
	}
	if line, err = read(); err != nil {
		return nil, fail(err)
	}
	if !xoauth2.IsChallenge(line) {
		return nil, refused(line)
	}
	// The first answer holds the credentials; a server that explains a
	// refusal in a further "+" challenge gets an empty line before its
	// final reply, at most twice.
	for range 3 {
		answer := sasl.Answer()
		_, err = up.Write(answer)
		clear(answer)
		if err != nil {
			return nil, fail(err)
		}
		if line, err = read(); err != nil {
			return nil, fail(err)
		}
		if !xoauth2.IsChallenge(line) {
			break
		}
	}
	if !strings.HasPrefix(line, "+OK") {
		return nil, refused(line)
	}
	return br, nil
}
