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
	limit  *connLimit
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

// NewServer prepares the front ends for cfg, which share one connection
// cap (listen.max_connections). local is the local certificate's TLS
// config (nil: no STARTTLS, and implicit-TLS listeners are refused). It
// does no I/O besides reading the process's file limit.
func NewServer(cfg *config.Config, b *Bridge, local *tls.Config) *Server {
	local = watchLocalTLS(local, b.log)
	trace := new(atomic.Bool)
	trace.Store(cfg.Log.Trace)
	o := FrontOptions{TLS: local, RequireTLS: cfg.Listen.AllowRemote, Trace: cfg.Log.Trace, traceOn: trace,
		limit: newConnLimit(cfg.Listen, b.log)}
	if cfg.Listen.AllowRemote {
		b.guard.PerPeer = true
	}
	fronts := map[Proto]frontEnd{
		IMAP: NewIMAPServer(b, o),
		POP3: NewPOP3Server(b, o),
		SMTP: NewSMTPServer(b, o),
	}
	hurry, hurryCancel := context.WithCancel(context.Background())
	return &Server{b: b, log: b.log, cfg: cfg, local: local, fronts: fronts, trace: trace, hurry: hurry, hurryCancel: hurryCancel, limit: o.limit}
}

// Bridge returns the bridge the server runs.
func (s *Server) Bridge() *Bridge { return s.b }

// Listen binds every configured listener, or none: the first failure
// closes what was bound and names the config key and the address. With
// listen.loopback_twin, a listener on 127.0.0.1 or ::1 is also bound on
// the other loopback (bind).
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
	has := map[string]bool{} // loopback host -> the machine has it
	for _, w := range want {
		if w.addr == "" {
			continue
		}
		if w.implicit && s.local == nil {
			return fail(fmt.Errorf("bridge: %s: implicit TLS needs a local certificate", w.key))
		}
		lns, err := s.bind(w.key, w.addr, has)
		if err != nil {
			return fail(err)
		}
		for _, ln := range lns {
			bound = append(bound, boundListener{w.key, w.p, w.implicit, ln})
		}
	}
	s.mu.Lock()
	s.lns = bound
	s.mu.Unlock()
	return nil
}

// twinTries is how often a listener on port 0 looks for a port that is
// free on both loopbacks.
const twinTries = 5

// bind listens on addr and, with listen.loopback_twin, on its loopback
// twin (LoopbackTwin) at the same port. A client told "localhost" may
// connect to either address, so a twin left to another local program
// would hand it the passwords clients send; both must bind. A machine
// without the twin's loopback (no IPv6, say) is told apart by binding
// port 0 there; its twin is skipped with a note in the log. has caches
// that answer per loopback.
func (s *Server) bind(key, addr string, has map[string]bool) ([]net.Listener, error) {
	_, port, _ := net.SplitHostPort(addr)
	for try := 1; ; try++ {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("bridge: %s = %q: %w", key, addr, err)
		}
		twin := ""
		if s.cfg.Listen.LoopbackTwin {
			twin = LoopbackTwin(ln.Addr().String())
		}
		if twin == "" || !s.hasLoopback(twin, has) {
			return []net.Listener{ln}, nil
		}
		ln2, err := net.Listen("tcp", twin)
		if err == nil {
			return []net.Listener{ln, ln2}, nil
		}
		ln.Close()
		if port == "0" && try < twinTries {
			continue // the system's pick is taken on the other loopback
		}
		host, _, _ := net.SplitHostPort(ln.Addr().String())
		return nil, fmt.Errorf("bridge: %s = %q: its loopback twin %s cannot be bound: %w; "+
			"a client told \"localhost\" may connect there, so the bridge does not start without it: "+
			"stop the program that holds it, choose another port, or set listen.loopback_twin = false to listen on %s alone",
			key, addr, twin, err, host)
	}
}

// hasLoopback reports whether the machine has the loopback of addr, by
// binding port 0 there once.
func (s *Server) hasLoopback(addr string, has map[string]bool) bool {
	host, _, _ := net.SplitHostPort(addr)
	ok, seen := has[host]
	if seen {
		return ok
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if ok = err == nil; ok {
		ln.Close()
	} else {
		s.log.Info("this machine has no "+host+" loopback; listening without loopback twins there", "err", err)
	}
	has[host] = ok
	return ok
}

// LoopbackTwin returns the other IP family's loopback address at the same
// port as addr: "[::1]:1143" for "127.0.0.1:1143" and back. These are the
// addresses "localhost" resolves to; any other addr gives "".
func LoopbackTwin(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return ""
	}
	switch host {
	case "127.0.0.1":
		return net.JoinHostPort("::1", port)
	case "::1":
		return net.JoinHostPort("127.0.0.1", port)
	}
	return ""
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

// Bound returns every bound address by config key, loopback twins
// included, in the order bound.
func (s *Server) Bound() map[string][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string][]string{}
	for _, b := range s.lns {
		m[b.key] = append(m[b.key], b.ln.Addr().String())
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
	s.log.Info("connection cap", "max_connections", s.limit.max, "max_connections_per_peer", s.limit.perPeer)
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
