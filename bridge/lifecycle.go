package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// connSet tracks a front end's listeners and connections, so that it can
// stop accepting, say goodbye to each session as soon as it can take one,
// let busy sessions finish, and then close what is left. It runs its own
// accept loops (serve), or tracks those of a server that runs them itself
// (go-smtp's: listening, accept and forget).
type connSet struct {
	mu    sync.Mutex
	lns   map[net.Listener]struct{}
	limit *connLimit // shared by the front ends of a Server; nil caps nothing

	conns  map[net.Conn]*connEntry
	byes   map[net.Conn]goodbye // how each session is told of a stop; none: closed at the end
	closed bool
	wg     sync.WaitGroup // accept loops and tracked connections
}

// A goodbye tells one session that the server is stopping. When the
// session is at a point where its protocol allows it (between commands,
// not inside a reply), it says so to the client the way the protocol
// does (IMAP "* BYE", POP3 "-ERR", SMTP "421"), starts closing the
// connection and returns true; otherwise it returns false and is asked
// again. last is the final call, when the grace period is over: the
// connection is closed right after it either way.
type goodbye func(last bool) bool

// goodbyeEvery is how often shutdown asks the sessions that are still busy.
const goodbyeEvery = 100 * time.Millisecond

// errClosed is returned by serve after shutdown.
var errClosed = errors.New("bridge: server closed")

// serve accepts on ln until shutdown, running handle for each connection
// in its own goroutine. handle must not close the connection; serve does.
// busy is the reply to a connection over the cap (accept).
//
// What handle returns, when not nil, runs next on the same goroutine, once
// handle's own frames are gone: a logged-in session's relay. An idle
// session then waits with a shallow stack, which the garbage collector
// halves to 4 KB (it halves a stack only while less than a quarter is in
// use); waiting under the login's frames kept 8 KB.
func (s *connSet) serve(ln net.Listener, busy string, handle func(net.Conn) (then func())) error {
	done, err := s.listening(ln)
	if err != nil {
		return err
	}
	defer done()

	var backoff time.Duration
	for {
		c, err := s.accept(ln, busy)
		if err != nil {
			if s.isClosed() {
				return errClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || isTemporary(err) {
				// Out of descriptors and the like: wait, do not spin.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		go func() {
			defer s.forget(c)
			if then := handle(c); then != nil {
				then()
			}
			closeGently(c)
		}()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

// listening registers ln and its accept loop, which runs until ln is
// closed; shutdown closes ln and waits for the loop. The loop calls done
// when it returns. After shutdown, ln is closed and the error is
// errClosed.
func (s *connSet) listening(ln net.Listener) (done func(), err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		ln.Close()
		return nil, errClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]*connEntry{}
		s.byes = map[net.Conn]goodbye{}
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1)
	return s.wg.Done, nil
}

// accept takes the next connection from ln and tracks it until forget.
// A connection over the cap (connLimit) is answered with busy ("" for no
// reply), closed, and not returned; one the cap makes room for may close
// an idle connection of any front end sharing it. After shutdown the
// connection is closed and the error is net.ErrClosed.
func (s *connSet) accept(ln net.Listener, busy string) (net.Conn, error) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return nil, err
		}
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetKeepAlive(true)
			tc.SetKeepAlivePeriod(keepAlive)
		}
		e, victim, ok := s.limit.admit(c)
		if victim != nil {
			victim.Close()
		}
		if !ok {
			refuseBusy(c, busy)
			continue
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			s.limit.release(e)
			c.Close()
			return nil, net.ErrClosed
		}
		s.conns[c] = e
		s.wg.Add(1)
		s.mu.Unlock()
		return c, nil
	}
}

// hold marks c busy until the returned func is called: a login under way,
// or a logged-in session, which the cap never closes to make room. c is
// the connection accept returned.
func (s *connSet) hold(c net.Conn) (release func()) {
	s.mu.Lock()
	e := s.conns[c]
	s.mu.Unlock()
	return s.limit.hold(e)
}

// onStop sets how c is told that the server is stopping; a later call
// replaces it (a session's goodbye changes once it is relayed).
func (s *connSet) onStop(c net.Conn, g goodbye) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; ok {
		s.byes[c] = g
	}
}

// open returns how many connections are tracked.
func (s *connSet) open() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// forget ends the tracking of c, once it is closed or closing; shutdown
// waits for every accepted connection to be forgotten. Calls after the
// first do nothing.
func (s *connSet) forget(c net.Conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if e, ok := s.conns[c]; ok {
		delete(s.conns, c)
		delete(s.byes, c)
		s.limit.release(e)
		s.wg.Done()
	}
}

func (s *connSet) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// shutdown stops accepting at once and says goodbye to every connection
// as soon as it can take it (see goodbye), until every connection is
// forgotten or ctx is done; then it says a last goodbye to those left,
// closes them and waits for them to be forgotten. It returns ctx's error
// when it had to close connections.
func (s *connSet) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	said := map[net.Conn]bool{}
	tick := time.NewTicker(goodbyeEvery)
	defer tick.Stop()
	for graceOver := false; !graceOver; {
		s.sayGoodbye(said, false)
		select {
		case <-done:
			return nil
		case <-ctx.Done():
			graceOver = true
		case <-tick.C:
		}
	}
	s.sayGoodbye(said, true)
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
}

// sayGoodbye asks each connection not yet told (said) to say goodbye. The
// goodbyes run without the lock: one may write to its client.
func (s *connSet) sayGoodbye(said map[net.Conn]bool, last bool) {
	s.mu.Lock()
	var todo []goodbye
	var conns []net.Conn
	for c, g := range s.byes {
		if !said[c] {
			conns = append(conns, c)
			todo = append(todo, g)
		}
	}
	s.mu.Unlock()
	for i, g := range todo {
		if g(last) {
			said[conns[i]] = true
		}
	}
}

// Lingering close: how long, and how much, a closing connection's late
// input is read and dropped.
const (
	lingerTime = time.Second
	lingerMax  = 256 << 10
)

// closeGently closes c so that the last reply reaches the client. Closing
// a TCP socket with unread input makes the kernel send a reset at once,
// which throws away the reply still in the send buffer, and a client that
// pipelined or flooded would see "connection reset" instead of the reason.
// So the write side is shut first, then what the client still sends is
// read and dropped, briefly and boundedly, before the close (the
// lingering close of RFC 9112 section 9.6).
func closeGently(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok || tc.CloseWrite() != nil {
		c.Close()
		return
	}
	tc.SetReadDeadline(time.Now().Add(lingerTime))
	io.CopyN(io.Discard, tc, lingerMax)
	tc.Close()
}

// relayFront is what the front ends (IMAP, POP3, SMTP) share: their
// listeners and connections, whether the server is stopping, and a context
// that ends logins in progress (token refresh, upstream dial and AUTH) when
// Shutdown gives up waiting.
type relayFront struct {
	b        *Bridge
	o        FrontOptions
	log      *slog.Logger
	conns    connSet
	busy     string // the reply to a connection over the cap
	stopping atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
}

func newRelayFront(b *Bridge, o FrontOptions, p Proto) relayFront {
	ctx, cancel := context.WithCancel(context.Background())
	busy := map[Proto]string{IMAP: imapBusy, POP3: pop3Busy, SMTP: smtpBusy}[p]
	return relayFront{b: b, o: o, log: b.Logger().With("proto", string(p)), conns: connSet{limit: o.limit},
		busy: busy, ctx: ctx, cancel: cancel}
}

// busyReply is the reply to a connection over the cap on a listener:
// none on an implicit-TLS one.
func (f *relayFront) busyReply(implicitTLS bool) string {
	if implicitTLS {
		return ""
	}
	return f.busy
}

// serve accepts on ln until Shutdown, running handle for each client and
// then what it returns (connSet.serve). An implicit-TLS listener needs
// FrontOptions.TLS.
func (f *relayFront) serve(ln net.Listener, implicitTLS bool, p Proto, handle func(net.Conn, bool) (relay func())) error {
	if err := f.checkTLS(ln, implicitTLS, p); err != nil {
		return err
	}
	return f.conns.serve(ln, f.busyReply(implicitTLS), func(c net.Conn) func() {
		f.conns.onStop(c, preLoginGoodbye(c))
		return handle(c, implicitTLS)
	})
}

// listening registers ln for a front end whose accept loop runs elsewhere
// (connSet.listening). An implicit-TLS listener needs FrontOptions.TLS.
func (f *relayFront) listening(ln net.Listener, implicitTLS bool, p Proto) (done func(), err error) {
	if err := f.checkTLS(ln, implicitTLS, p); err != nil {
		return nil, err
	}
	return f.conns.listening(ln)
}

// checkTLS closes ln and refuses it when it is an implicit-TLS listener
// and the front end has no local certificate.
func (f *relayFront) checkTLS(ln net.Listener, implicitTLS bool, p Proto) error {
	if implicitTLS && f.o.TLS == nil {
		ln.Close()
		return fmt.Errorf("bridge: %s: implicit TLS needs a local certificate", p)
	}
	return nil
}

// Shutdown stops accepting, waits until the live sessions end or ctx is
// done, then closes what is left (client and upstream connections, logins
// in progress included) and waits for their goroutines. It returns ctx's
// error when it had to cut sessions.
func (f *relayFront) Shutdown(ctx context.Context) error {
	f.stopping.Store(true)
	stop := context.AfterFunc(ctx, f.cancel)
	defer stop()
	err := f.conns.shutdown(ctx)
	f.cancel()
	return err
}

// openConns returns how many client connections are open.
func (f *relayFront) openConns() int { return f.conns.open() }

// preLoginGoodbye is the goodbye of a session the bridge itself speaks
// (IMAP and POP3 before login): its read deadline is moved to now, so a
// session waiting for a command gets a timeout at once and, seeing
// stopping set, says goodbye itself on its own goroutine. A session busy
// logging in meets the deadline at its next read; one that gets relayed
// sets its own. The deadline is set again at each call, because a session
// that has just started moves it.
func preLoginGoodbye(c net.Conn) goodbye {
	return func(bool) bool {
		c.SetReadDeadline(time.Now())
		return false
	}
}
