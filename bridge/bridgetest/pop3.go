package bridgetest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
)

// POP3Options configures NewPOP3.
type POP3Options struct {
	// Validate checks each XOAUTH2 login. Nil refuses every login.
	Validate Validator
	// TLS, when set, makes the listener speak implicit TLS like
	// outlook.office365.com:995. Nil serves plain TCP.
	TLS *tls.Config
	// Mode is the initial Mode; the zero value is Normal. Only Disabled
	// changes POP3's behaviour.
	Mode Mode
	// Service is the service imitated; the zero value is Exchange.
	Service Service
	// Apps is Exchange's record of app-only access, which app-only
	// tokens are judged by (see Apps); nil refuses every app-only token.
	Apps *Apps
}

// POP3 is an in-process imitation of Exchange Online's POP3 service
// (RFC 1939, with AUTH from RFC 5034), serving on 127.0.0.1.
type POP3 struct {
	opts POP3Options
	ln   net.Listener
	mode atomic.Int32

	conns, logins, failed atomic.Int64

	mu      sync.Mutex
	closed  bool
	open    map[net.Conn]struct{}
	boxes   map[string][]*popMessage
	nextUID int

	wg sync.WaitGroup // accept loop and connection goroutines
}

// popMessage is one stored message; data always uses CRLF line ends and
// ends with CRLF, so its length is the octet count RFC 1939 reports.
type popMessage struct {
	uid  string
	data []byte
}

// NewPOP3 listens on 127.0.0.1:0 and starts serving in the background.
// Call Close to stop it.
func NewPOP3(o POP3Options) (*POP3, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bridgetest: pop3 listen: %w", err)
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	s := &POP3{
		opts:  o,
		ln:    ln,
		open:  make(map[net.Conn]struct{}),
		boxes: make(map[string][]*popMessage),
	}
	s.mode.Store(int32(o.Mode))
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *POP3) Addr() string { return s.ln.Addr().String() }

// SetMode changes the Mode for logins from now on.
func (s *POP3) SetMode(m Mode) { s.mode.Store(int32(m)) }

// Connections returns how many TCP connections were accepted.
func (s *POP3) Connections() int64 { return s.conns.Load() }

// Logins returns how many AUTH XOAUTH2 exchanges succeeded.
func (s *POP3) Logins() int64 { return s.logins.Load() }

// FailedLogins returns how many AUTH and PASS commands were refused.
func (s *POP3) FailedLogins() int64 { return s.failed.Load() }

// Add appends msg to the user's maildrop. Line ends are normalised to CRLF
// and a final CRLF is added when missing.
func (s *POP3) Add(user string, msg []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.nextUID++
	s.boxes[user] = append(s.boxes[user], &popMessage{
		uid:  fmt.Sprintf("BT%08d", s.nextUID),
		data: toCRLF(msg),
	})
}

// Messages returns a copy of the user's maildrop as it is now: deletions
// show only after the deleting session's QUIT (RFC 1939 section 6).
func (s *POP3) Messages(user string) [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, 0, len(s.boxes[user]))
	for _, m := range s.boxes[user] {
		out = append(out, bytes.Clone(m.data))
	}
	return out
}

// Close stops the listener, closes every connection and waits for all
// goroutines to finish.
func (s *POP3) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	err := s.ln.Close()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("bridgetest: pop3 close: %w", err)
	}
	return nil
}

func (s *POP3) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return // closed; loopback listeners have no temporary errors worth retrying
		}
		s.conns.Add(1)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			c.Close()
			return
		}
		s.open[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			defer func() {
				s.mu.Lock()
				delete(s.open, c)
				s.mu.Unlock()
				c.Close()
			}()
			newPOP3Session(s, c).run()
		}()
	}
}

// snapshot returns the user's current messages for a new transaction.
func (s *POP3) snapshot(user string) []*popMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*popMessage(nil), s.boxes[user]...)
}

// commit removes the deleted messages from the user's maildrop: the
// UPDATE state of RFC 1939 section 6.
func (s *POP3) commit(user string, deleted map[*popMessage]bool) {
	if len(deleted) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	kept := s.boxes[user][:0:0]
	for _, m := range s.boxes[user] {
		if !deleted[m] {
			kept = append(kept, m)
		}
	}
	s.boxes[user] = kept
}

// toCRLF turns bare LF into CRLF and makes msg end with CRLF.
func toCRLF(msg []byte) []byte {
	out := make([]byte, 0, len(msg)+len(msg)/32+2)
	for i, b := range msg {
		if b == '\n' && (i == 0 || msg[i-1] != '\r') {
			out = append(out, '\r')
		}
		out = append(out, b)
	}
	if !bytes.HasSuffix(out, []byte("\r\n")) {
		out = append(out, '\r', '\n')
	}
	return out
}
