package control

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// Options say what the control server reports on and acts upon.
type Options struct {
	// Server is the running bridge server. Required.
	Server *bridge.Server
	// Reload re-reads the config the way SIGHUP does; an error keeps the
	// old config and is sent back to the client. Nil answers 501.
	Reload func() error
	// Logger receives the server's logs; nil discards them.
	Logger *slog.Logger
}

// Server is a bound control endpoint.
type Server struct {
	ep      Endpoint
	ln      net.Listener
	token   string
	lock    *pidLock
	started time.Time

	mu     sync.Mutex
	subs   map[chan bridge.Event]struct{}
	closed bool
	done   chan struct{}
	hs     *http.Server
	once   sync.Once
}

// subBuffer is how many events a slow subscriber may fall behind before it
// is dropped; the bridge never waits for a client.
const subBuffer = 32

// Listen takes the endpoint's lock and binds it, but serves nothing until
// Serve. It fails with a *RunningError when a server already runs for the
// same config, and replaces a socket left behind by a crashed one.
func Listen(ep Endpoint) (*Server, error) {
	if err := ensureDir(ep.Dir); err != nil {
		return nil, err
	}
	lk, err := acquire(ep)
	if err != nil {
		return nil, err
	}
	ln, token, err := listenEndpoint(ep)
	if err != nil {
		lk.release()
		return nil, err
	}
	return &Server{ep: ep, ln: ln, token: token, lock: lk, started: time.Now(),
		subs: map[chan bridge.Event]struct{}{}, done: make(chan struct{})}, nil
}

// Endpoint returns where the server listens.
func (s *Server) Endpoint() Endpoint { return s.ep }

// Serve answers requests until Close.
func (s *Server) Serve(o Options) error {
	if o.Server == nil {
		return errors.New("control: Serve needs Options.Server")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, s.status(o.Server))
	})
	mux.HandleFunc("POST /reload", func(w http.ResponseWriter, r *http.Request) {
		if o.Reload == nil {
			writeJSON(w, http.StatusNotImplemented, errorBody{"this server cannot reload"})
			return
		}
		if err := o.Reload(); err != nil {
			writeJSON(w, http.StatusUnprocessableEntity, errorBody{err.Error()})
			return
		}
		writeJSON(w, http.StatusOK, struct {
			OK bool `json:"ok"`
		}{true})
	})
	mux.HandleFunc("GET /events", s.events)
	mux.HandleFunc("POST /token", s.accessToken(o.Server))
	hs := &http.Server{Handler: s.guard(mux), ReadHeaderTimeout: 5 * time.Second,
		ErrorLog: slog.NewLogLogger(o.Logger.Handler(), slog.LevelDebug)}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return http.ErrServerClosed
	}
	s.hs = hs
	s.mu.Unlock()
	o.Logger.Info("control socket listening", "endpoint", s.describe())
	err := hs.Serve(s.ln)
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("control: %w", err)
}

func (s *Server) describe() string {
	if s.ep.tcp {
		return s.ln.Addr().String()
	}
	return s.ep.Socket()
}

// guard checks the TCP transport's token, and refuses requests a web page
// could send (a browser adds Origin to cross-site requests).
func (s *Server) guard(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Origin") != "" {
			writeJSON(w, http.StatusForbidden, errorBody{"browsers may not use the control socket"})
			return
		}
		if s.token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+s.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, errorBody{"missing or wrong token"})
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) status(srv *bridge.Server) Status {
	return Status{Status: srv.Bridge().Status(), PID: os.Getpid(), Config: s.ep.Config,
		Listeners: srv.Addrs(), Bound: srv.Bound(), Started: s.started}
}

// events streams bridge.Event values as newline-delimited JSON until the
// client goes away or the server closes.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, errorBody{"streaming unsupported"})
		return
	}
	ch := make(chan bridge.Event, subBuffer)
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		writeJSON(w, http.StatusServiceUnavailable, errorBody{"shutting down"})
		return
	}
	s.subs[ch] = struct{}{}
	s.mu.Unlock()
	defer s.unsubscribe(ch)

	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fl.Flush()
	enc := json.NewEncoder(w)
	for {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case ev, ok := <-ch:
			if !ok {
				return // dropped for falling behind
			}
			if enc.Encode(ev) != nil {
				return
			}
			fl.Flush()
		}
	}
}

func (s *Server) unsubscribe(ch chan bridge.Event) {
	s.mu.Lock()
	if _, ok := s.subs[ch]; ok {
		delete(s.subs, ch)
		close(ch)
	}
	s.mu.Unlock()
}

// Publish sends ev to every event subscriber. It never blocks: a
// subscriber whose buffer is full is disconnected and can reconnect and
// ask for /status.
func (s *Server) Publish(ev bridge.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ch := range s.subs {
		select {
		case ch <- ev:
		default:
			delete(s.subs, ch)
			close(ch)
		}
	}
}

// Close stops serving, ends event streams, removes the socket and releases
// the lock.
func (s *Server) Close() error {
	var err error
	s.once.Do(func() {
		s.mu.Lock()
		s.closed = true
		hs := s.hs
		s.mu.Unlock()
		close(s.done)
		if hs != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			if hs.Shutdown(ctx) != nil {
				hs.Close()
			}
			cancel()
		} else {
			s.ln.Close()
		}
		cleanupEndpoint(s.ep)
		err = s.lock.release()
	})
	return err
}

type errorBody struct {
	Error string `json:"error"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}
