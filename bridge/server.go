package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
)

// frontEnd is one protocol's server (IMAP, POP3, SMTP).
type frontEnd interface {
	Serve(ln net.Listener, implicitTLS bool) error
	Shutdown(ctx context.Context) error
	openConns() int
}

// Server runs the listeners of a config against one Bridge.
type Server struct {
	b     *Bridge
	log   *slog.Logger
	cfg   *config.Config
	local *tls.Config

	fronts map[Proto]frontEnd
	mu     sync.Mutex
	lns    []boundListener
	wg     sync.WaitGroup

	// trace is [log] trace, shared with the front ends' options.
	trace *atomic.Bool
	// hurry ends a stopping Run's grace period (Hurry).
	hurry       context.Context
	hurryCancel context.CancelFunc
}

type boundListener struct {
	key      string // config key, e.g. "listen.imaps"
	proto    Proto
	implicit bool
	ln       net.Listener
}

// NewServer prepares the front ends for cfg. local is the local
// certificate's TLS config (nil: no STARTTLS, and implicit-TLS listeners are
// refused). It does no I/O.
func NewServer(cfg *config.Config, b *Bridge, local *tls.Config) *Server {
	local = watchLocalTLS(local, b.log)
	trace := new(atomic.Bool)
	trace.Store(cfg.Log.Trace)
	o := FrontOptions{TLS: local, RequireTLS: cfg.Listen.AllowRemote, Trace: cfg.Log.Trace, traceOn: trace}
	if cfg.Listen.AllowRemote {
		b.guard.PerPeer = true
	}
	fronts := map[Proto]frontEnd{
		IMAP: NewIMAPServer(b, o),
		POP3: NewPOP3Server(b, o),
		SMTP: NewSMTPServer(b, o),
	}
	hurry, hurryCancel := context.WithCancel(context.Background())
	return &Server{b: b, log: b.log, cfg: cfg, local: local, fronts: fronts, trace: trace, hurry: hurry, hurryCancel: hurryCancel}
}

// Bridge returns the bridge the server runs.
func (s *Server) Bridge() *Bridge { return s.b }

// Listen binds every configured listener, or none: the first failure
// closes what was bound and names the config key. A loopback address is
// also bound on the other IP family's loopback when it can be, because a
// client that types "localhost" may land on ::1.
func (s *Server) Listen() error {
	l := s.cfg.Listen
	want := []struct {
		key, addr string
		p         Proto
		implicit  bool
	}{
		{"listen.imap", l.IMAP, IMAP, false}, {"listen.imaps", l.IMAPS, IMAP, true},
		{"listen.smtp", l.SMTP, SMTP, false}, {"listen.smtps", l.SMTPS, SMTP, true},
		{"listen.pop3", l.POP3, POP3, false}, {"listen.pop3s", l.POP3S, POP3, true},
	}
	var bound []boundListener
	fail := func(err error) error {
		for _, b := range bound {
			b.ln.Close()
		}
		return err
	}
	for _, w := range want {
		if w.addr == "" {
			continue
		}
		if w.implicit && s.local == nil {
			return fail(fmt.Errorf("bridge: %s: implicit TLS needs a local certificate", w.key))
		}
		ln, err := net.Listen("tcp", w.addr)
		if err != nil {
			return fail(fmt.Errorf("bridge: %s = %q: %w", w.key, w.addr, err))
		}
		bound = append(bound, boundListener{w.key, w.p, w.implicit, ln})
		if alt := otherLoopback(ln.Addr()); alt != "" {
			if ln2, err := net.Listen("tcp", alt); err == nil {
				bound = append(bound, boundListener{w.key, w.p, w.implicit, ln2})
			}
		}
	}
	s.mu.Lock()
	s.lns = bound
	s.mu.Unlock()
	return nil
}

// otherLoopback returns the other family's loopback with the same port, or
// "" when addr is not a loopback address.
func otherLoopback(a net.Addr) string {
	ta, ok := a.(*net.TCPAddr)
	if !ok || !ta.IP.IsLoopback() {
		return ""
	}
	if ta.IP.To4() != nil {
		return net.JoinHostPort("::1", fmt.Sprint(ta.Port))
	}
	return net.JoinHostPort("127.0.0.1", fmt.Sprint(ta.Port))
}

// Addrs returns the bound addresses by config key (the first of each).
func (s *Server) Addrs() map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]string{}
	for _, b := range s.lns {
		if _, ok := m[b.key]; !ok {
			m[b.key] = b.ln.Addr().String()
		}
	}
	return m
}

// Run serves the bound listeners and refreshes the tokens of the accounts
// in use ahead of need until ctx is done, then stops accepting, says
// goodbye to each session as soon as it can take one (idle ones at once:
// IMAP "* BYE", POP3 "-ERR", SMTP "421"), gives busy ones grace to
// finish, and closes the rest.
func (s *Server) Run(ctx context.Context, grace time.Duration) error {
	s.mu.Lock()
	lns := s.lns
	s.mu.Unlock()
	actx, stopAhead := context.WithCancel(ctx)
	ahead := make(chan struct{})
	go func() {
		defer close(ahead)
		s.b.refreshAhead(actx)
	}()
	errc := make(chan error, len(lns))
	for _, b := range lns {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.log.Info("listening", "key", b.key, "addr", b.ln.Addr().String())
			if err := s.fronts[b.proto].Serve(b.ln, b.implicit); err != nil && !errors.Is(err, errClosed) && ctx.Err() == nil {
				errc <- fmt.Errorf("bridge: %s: %w", b.key, err)
			}
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	stopAhead()
	<-ahead
	open := 0
	for _, f := range s.fronts {
		open += f.openConns()
	}
	s.log.Info("stopping", "sessions_open", open, "grace", grace)
	sctx, cancel := context.WithTimeout(s.hurry, grace)
	defer cancel()
	var wg sync.WaitGroup
	var cut atomic.Bool
	for _, f := range s.fronts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if f.Shutdown(sctx) != nil {
				cut.Store(true)
			}
		}()
	}
	wg.Wait()
	s.wg.Wait()
	if cut.Load() {
		s.log.Info("stopped; sessions still busy were closed", "grace", grace)
	}
	return err
}

// Hurry ends the grace period of a Run that is stopping, or of the next
// one: the sessions still open are closed at once.
func (s *Server) Hurry() { s.hurryCancel() }

// Reload applies a new config's accounts and [log] trace (for connections
// that start after it). Listener changes need a restart and are reported
// as such.
func (s *Server) Reload(cfg *config.Config) error {
	accts, err := ResolveAccounts(cfg)
	if err != nil {
		return err
	}
	if cfg.Listen != s.cfg.Listen {
		s.log.Warn("listen addresses changed in the config; restart the bridge to apply them")
	}
	// SetAccounts also drops cached passwords and makes the token sources
	// it keeps re-read the store.
	s.b.SetAccounts(accts)
	s.trace.Store(cfg.Log.Trace)
	s.cfg = cfg
	return nil
}
