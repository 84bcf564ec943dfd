package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/tlsutil"
)

// smtpMaxSize is the SIZE advertised locally: Exchange Online's own 150 MB
// limit, so a message the client may send is one the upstream may take.
const smtpMaxSize = 157286400

// smtpMaxLine bounds one line, in commands and in message data alike
// (go-smtp applies the limit to both). Legacy clients send data lines far
// beyond RFC 5321's 1000; the bound only stops a peer from filling memory
// before it has logged in.
const smtpMaxLine = 16 << 20

// smtpUpstreamLimit is how many SMTP sessions Exchange Online allows at a
// time per mailbox; a fourth gets "432 4.3.2 ... thread limit exceeded".
const smtpUpstreamLimit = 3

// smtpSlotWait is how long a session waits for a free upstream slot.
const smtpSlotWait = 10 * time.Second

// smtpLoginTimeout bounds a login: token refresh, dial, STARTTLS, AUTH.
const smtpLoginTimeout = 60 * time.Second

// SMTPServer is the SMTP front end: a go-smtp server that takes AUTH PLAIN
// and LOGIN with the local password, logs in upstream with XOAUTH2 at that
// moment, and then relays each MAIL, RCPT and DATA to the upstream session,
// returning the upstream's own reply.
type SMTPServer struct {
	relayFront // go-smtp runs the accept loops; relayFront tracks them
	srv        *smtp.Server
	slots      *smtpSlots
	slotWait   atomic.Int64 // time.Duration; a field so tests can shorten it

	mu       sync.Mutex
	sessions map[*smtpSession]struct{} // for Shutdown's abortUpstreams
}

// NewSMTPServer returns the SMTP front end for b. It does no I/O.
func NewSMTPServer(b *Bridge, o FrontOptions) *SMTPServer {
	s := &SMTPServer{
		relayFront: newRelayFront(b, o, SMTP),
		slots:      &smtpSlots{n: smtpUpstreamLimit, m: map[string]chan struct{}{}},
		sessions:   map[*smtpSession]struct{}{},
	}
	s.slotWait.Store(int64(smtpSlotWait))
	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = "localhost"
	srv.TLSConfig = o.TLS
	srv.AllowInsecureAuth = !o.RequireTLS
	srv.MaxMessageBytes = smtpMaxSize
	srv.MaxLineLength = smtpMaxLine
	// RFC 5321 section 4.5.3.2.7: a server waits at least 5 minutes for
	// the next command; during DATA each read extends it (dataSource).
	srv.ReadTimeout = min(o.idle(), 5*time.Minute)
	srv.WriteTimeout = 5 * time.Minute
	srv.ErrorLog = smtpLogger{s.log}
	s.srv = srv
	return s
}

// Serve accepts SMTP clients on ln until Shutdown. With implicitTLS the
// connection starts with a TLS handshake (port 465 style, RFC 8314);
// otherwise STARTTLS is offered when the front end has a certificate.
func (s *SMTPServer) Serve(ln net.Listener, implicitTLS bool) error {
	done, err := s.listening(ln, implicitTLS, SMTP)
	if err != nil {
		return err
	}
	defer done()
	var l net.Listener = &smtpListener{Listener: ln, s: s, implicit: implicitTLS}
	if implicitTLS {
		l = tlsutil.NewListener(l, s.o.TLS)
	}
	err = s.srv.Serve(l)
	if s.conns.isClosed() {
		return errClosed
	}
	if err != nil {
		return fmt.Errorf("bridge: smtp: %w", err)
	}
	return nil
}

// Shutdown stops accepting at once, lets sessions finish until ctx is
// done, then closes what is left on both legs and waits for it.
func (s *SMTPServer) Shutdown(ctx context.Context) error {
	// A session waiting for the upstream's reply does not notice its
	// client's connection closing: close the upstream's too.
	aborted := make(chan struct{})
	stop := context.AfterFunc(ctx, func() { s.abortUpstreams(); close(aborted) })
	err := s.relayFront.Shutdown(ctx)
	if !stop() {
		<-aborted
	}
	// Every connection is forgotten by now; this waits for go-smtp's
	// goroutines to return from their last deferred calls.
	s.srv.Shutdown(context.Background())
	return err
}

// abortUpstreams closes every session's upstream connection.
func (s *SMTPServer) abortUpstreams() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ss := range s.sessions {
		ss.abortUpstream()
	}
}

func (s *SMTPServer) newSession(c *smtp.Conn) (smtp.Session, error) {
	ss := &smtpSession{s: s, conn: c, peer: c.Conn().RemoteAddr(), done: s.b.Track(SMTP)}
	if tc, ok := c.Conn().(*tls.Conn); ok {
		// EHLO after the handshake: from here on a goodbye can be
		// written through the TLS layer.
		if lc := localConn(tc); lc != nil {
			lc.tlsOut.Store(tc)
		}
	}
	s.mu.Lock()
	s.sessions[ss] = struct{}{}
	s.mu.Unlock()
	return ss, nil
}

func (s *SMTPServer) forget(ss *smtpSession) {
	s.mu.Lock()
	delete(s.sessions, ss)
	s.mu.Unlock()
}

// smtpSlots counts upstream sessions per token account.
type smtpSlots struct {
	n  int
	mu sync.Mutex
	m  map[string]chan struct{}
}

// acquire takes one of key's slots, waiting up to wait; the returned func
// gives it back (once).
func (sl *smtpSlots) acquire(ctx context.Context, key string, wait time.Duration) (func(), error) {
	sl.mu.Lock()
	ch := sl.m[key]
	if ch == nil {
		ch = make(chan struct{}, sl.n)
		sl.m[key] = ch
	}
	sl.mu.Unlock()
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		var once sync.Once
		return func() { once.Do(func() { <-ch }) }, nil
	case <-t.C:
		return nil, errNoSlot
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

var errNoSlot = errors.New("bridge: smtp: every upstream session of the account is in use")

// smtpListener tracks the connections go-smtp accepts, so Shutdown can
// close them, and gives go-smtp the pre-login bounds of smtpConn.
type smtpListener struct {
	net.Listener
	s        *SMTPServer
	implicit bool // a TLS listener wraps this one
}

func (l *smtpListener) Accept() (net.Conn, error) {
	c, err := l.s.conns.accept(l.Listener, l.s.busyReply(l.implicit))
	if err != nil {
		return nil, err
	}
	sc := &smtpConn{Conn: c, s: l.s}
	sc.tls.Store(l.implicit)
	sc.trace = newWireTrace(l.s.b.Logger(), l.s.o.tracing(), SMTP, "client", c.RemoteAddr())
	sc.startPreLogin(l.s.o.preLogin())
	l.s.conns.onStop(c, sc.goodbye)
	return sc, nil
}

// smtpConn is an accepted connection. It can be told to close right after
// the next reply is written, because go-smtp offers no way to end a session
// from a hook once its reply (a 421, RFC 5321 section 3.8) is out.
type smtpConn struct {
	net.Conn
	s      *SMTPServer
	mu     sync.Mutex
	hangup bool

	// Before login (smtp_prelogin.go): the connection's deadline, how many
	// more bytes the client may send, and the length of the line so far.
	loggedIn atomic.Bool
	// sawEOF is set when the client's side of the connection ended after
	// login. go-smtp reads a BDAT chunk through an io.LimitReader, which
	// takes an early end for the end of the chunk, so Data checks this
	// before it lets the upstream take the message.
	sawEOF   atomic.Bool
	tls      atomic.Bool // bytes on the wire are TLS records from here on
	deadline time.Time
	budget   int
	line     int
	trace    *wireTrace

	// For the goodbye at shutdown (smtp_goodbye.go): go-smtp is inside a
	// read of the connection (reading), that read is for a command line
	// (cmdRead: go-smtp set the read deadline for it), the session is
	// reading a message (inData), the TLS layer a goodbye is written
	// through (tlsOut), and the deadline after a goodbye (endBy, unix
	// nanoseconds).
	reading, cmdRead, inData atomic.Bool
	tlsOut                   atomic.Pointer[tls.Conn]
	endBy                    atomic.Int64
}

func (c *smtpConn) Write(p []byte) (int, error) {
	c.traceWrite(p)
	n, err := c.Conn.Write(p)
	c.mu.Lock()
	hangup := c.hangup
	c.mu.Unlock()
	if hangup {
		closeGently(c.Conn)
	}
	return n, err
}

// hangUpAfterReply closes the connection once the next reply is written.
func (c *smtpConn) hangUpAfterReply() {
	c.mu.Lock()
	c.hangup = true
	c.mu.Unlock()
}

// Close closes the connection and ends its tracking; go-smtp calls it
// once the session has logged out. After a goodbye the client has had its
// time to read the last reply already.
func (c *smtpConn) Close() error {
	defer c.s.conns.forget(c.Conn)
	if !c.loggedIn.Load() && c.endBy.Load() == 0 {
		// A refused or hostile client: let the last reply arrive.
		closeGently(c.Conn)
		return nil
	}
	return c.Conn.Close()
}

// localConn finds our tracked connection under a TLS layer.
func localConn(c net.Conn) *smtpConn {
	sc, _ := tlsutil.NetConn(c).(*smtpConn)
	return sc
}

// dataSource reads the local DATA, extending the read deadline before each
// read (go-smtp sets it once, at the DATA command) and remembering a read
// failure, so the relay can tell a broken client from a broken upstream.
type dataSource struct {
	r       io.Reader
	conn    net.Conn
	timeout time.Duration
	err     error
}

func (d *dataSource) Read(p []byte) (int, error) {
	if d.conn != nil && d.timeout > 0 {
		d.conn.SetReadDeadline(time.Now().Add(d.timeout))
	}
	n, err := d.r.Read(p)
	if err != nil && err != io.EOF {
		d.err = err
	}
	return n, err
}

// smtpLogger sends go-smtp's internal messages to slog at debug level: they
// concern single connections (resets, timeouts), never credentials.
type smtpLogger struct{ l *slog.Logger }

func (g smtpLogger) Printf(format string, v ...any) { g.l.Debug(fmt.Sprintf(format, v...)) }
func (g smtpLogger) Println(v ...any)               { g.l.Debug(fmt.Sprint(v...)) }
