package bridge

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"
)

// connSet runs accept loops and tracks their connections, so that a front
// end can stop accepting, let sessions finish, and then close what is left.
type connSet struct {
	mu     sync.Mutex
	lns    map[net.Listener]struct{}
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// errClosed is returned by serve after shutdown.
var errClosed = errors.New("bridge: server closed")

// serve accepts on ln until shutdown, running handle for each connection
// in its own goroutine. handle must not close the connection; serve does.
func (s *connSet) serve(ln net.Listener, handle func(net.Conn)) error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		ln.Close()
		return errClosed
	}
	if s.lns == nil {
		s.lns = map[net.Listener]struct{}{}
		s.conns = map[net.Conn]struct{}{}
	}
	s.lns[ln] = struct{}{}
	s.wg.Add(1) // the accept loop itself
	s.mu.Unlock()
	defer s.wg.Done()

	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
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
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetKeepAlive(true)
			tc.SetKeepAlivePeriod(keepAlive)
		}
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return errClosed
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer s.forget(c)
			handle(c)
		}()
	}
}

func isTemporary(err error) bool {
	t, ok := err.(interface{ Temporary() bool })
	return ok && t.Temporary()
}

func (s *connSet) forget(c net.Conn) {
	closeGently(c)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
}

// shutdown stops accepting at once, waits for sessions until ctx is done,
// then closes the rest and waits for their goroutines.
func (s *connSet) shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.closed = true
	for ln := range s.lns {
		ln.Close()
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	<-done
	return ctx.Err()
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

// relayFront is what the byte-relaying front ends (IMAP, POP3) share: their
// connections, and a context that ends logins in progress (token refresh,
// upstream dial and AUTH) when Shutdown gives up waiting.
type relayFront struct {
	b     *Bridge
	o     FrontOptions
	log   *slog.Logger
	conns connSet

	ctx    context.Context
	cancel context.CancelFunc
}

func newRelayFront(b *Bridge, o FrontOptions, p Proto) relayFront {
	ctx, cancel := context.WithCancel(context.Background())
	return relayFront{b: b, o: o, log: b.Logger().With("proto", string(p)), ctx: ctx, cancel: cancel}
}

// serve accepts on ln until Shutdown, running handle for each client. An
// implicit-TLS listener needs FrontOptions.TLS.
func (f *relayFront) serve(ln net.Listener, implicitTLS bool, p Proto, handle func(net.Conn, bool)) error {
	if implicitTLS && f.o.TLS == nil {
		ln.Close()
		return fmt.Errorf("bridge: %s: implicit TLS needs a local certificate", p)
	}
	return f.conns.serve(ln, func(c net.Conn) { handle(c, implicitTLS) })
}

// Shutdown stops accepting, waits until the live sessions end or ctx is
// done, then closes what is left (client and upstream connections, logins
// in progress included) and waits for their goroutines. It returns ctx's
// error when it had to cut sessions.
func (f *relayFront) Shutdown(ctx context.Context) error {
	stop := context.AfterFunc(ctx, f.cancel)
	defer stop()
	err := f.conns.shutdown(ctx)
	f.cancel()
	return err
}
