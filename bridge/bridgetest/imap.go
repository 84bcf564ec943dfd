package bridgetest

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
)

// IMAPOptions configures NewIMAP.
type IMAPOptions struct {
	// Validate checks each XOAUTH2 login. Nil refuses every login.
	Validate Validator
	// TLS, when set, makes the listener speak implicit TLS like
	// outlook.office365.com:993. Nil serves plain TCP (authentication is
	// still allowed, since the listener is loopback only).
	TLS *tls.Config
	// Mode is the initial Mode; the zero value is Normal.
	Mode Mode
	// Users are the mailboxes created at start, each with INBOX, Sent and
	// Archive. A user that logs in or receives Append without being listed
	// is created the same way on first use.
	Users []string
	// Apps is Exchange's record of app-only access, which app-only
	// tokens are judged by (see Apps); nil refuses every app-only token.
	Apps *Apps
	// ExpireAfter is how long after login a session is ended with
	// "* BYE Session invalidated - AccessTokenExpired" in Mode
	// TokenExpiredMidSession. Zero means only ExpireSessions ends it.
	ExpireAfter time.Duration
	// Service is the service imitated; the zero value is Exchange.
	Service Service
}

// IMAP is an in-process imitation of Exchange Online's IMAP4 service,
// serving on 127.0.0.1. Mail data lives in memory and is shared by all
// sessions of a user, so an APPEND on one connection reaches another's IDLE.
type IMAP struct {
	opts IMAPOptions
	srv  *imapserver.Server
	ln   net.Listener
	mode atomic.Int32

	greeting []byte // replaces imapserver's own

	conns, logins, failed atomic.Int64

	mu       sync.Mutex
	closed   bool
	users    map[string]*imapmemserver.User
	open     map[*imapConn]struct{}
	sessions map[*imapSession]struct{} // authenticated ones

	serveDone chan struct{}
	connsWG   sync.WaitGroup // one per accepted connection, done when its session closes
}

// imapMailboxes are the folders every user starts with.
var imapMailboxes = []string{"INBOX", "Sent", "Archive"}

// NewIMAP listens on 127.0.0.1:0 and starts serving in the background.
// Call Close to stop it.
func NewIMAP(o IMAPOptions) (*IMAP, error) {
	s := &IMAP{
		opts:      o,
		users:     make(map[string]*imapmemserver.User),
		open:      make(map[*imapConn]struct{}),
		sessions:  make(map[*imapSession]struct{}),
		serveDone: make(chan struct{}),
	}
	s.mode.Store(int32(o.Mode))
	for _, u := range o.Users {
		s.user(u)
	}
	// Exchange and Gmail are IMAP4rev1 servers; the post-login extensions
	// they advertise that imapserver can back are listed here.
	caps := imap.CapSet{
		imap.CapIMAP4rev1:   {},
		imap.CapNamespace:   {},
		imap.CapUIDPlus:     {},
		imap.CapMove:        {},
		imap.CapChildren:    {},
		imap.CapLiteralPlus: {},
	}
	s.greeting = imapGreeting
	if o.Service == Gmail {
		delete(caps, imap.CapLiteralPlus) // Gmail has LITERAL-, which imapserver adds
		s.greeting = []byte("* OK Gimap ready for requests from 127.0.0.1 " + gmailID() + "\r\n")
	}
	s.srv = imapserver.New(&imapserver.Options{
		NewSession: s.newSession,
		Caps:       caps,
		Logger:     imapLogger{},
		// The conn is wrapped (see imapConn), so imapserver cannot see TLS;
		// authentication is allowed on every connection of this loopback
		// test server.
		InsecureAuth: true,
	})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bridgetest: imap listen: %w", err)
	}
	if o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	s.ln = &imapListener{Listener: ln, srv: s}
	go func() {
		defer close(s.serveDone)
		if err := s.srv.Serve(s.ln); err != nil {
			slog.Debug("bridgetest: imap serve ended", "err", err)
		}
	}()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *IMAP) Addr() string { return s.ln.Addr().String() }

// SetMode changes the Mode for logins from now on.
func (s *IMAP) SetMode(m Mode) { s.mode.Store(int32(m)) }

// Connections returns how many TCP connections were accepted.
func (s *IMAP) Connections() int64 { return s.conns.Load() }

// Logins returns how many AUTHENTICATE commands succeeded.
func (s *IMAP) Logins() int64 { return s.logins.Load() }

// FailedLogins returns how many AUTHENTICATE or LOGIN commands were refused.
func (s *IMAP) FailedLogins() int64 { return s.failed.Load() }

// Append stores msg in the user's mailbox, creating the user if needed.
func (s *IMAP) Append(user, mailbox string, msg []byte) error {
	u := s.user(user)
	_, err := u.Append(mailbox, bytes.NewReader(msg), &imap.AppendOptions{})
	if err != nil {
		return fmt.Errorf("bridgetest: imap append to %s/%s: %w", user, mailbox, err)
	}
	return nil
}

// ExpireSessions ends every authenticated session with
// "* BYE Session invalidated - AccessTokenExpired", as Exchange does when
// the access token a session logged in with expires.
func (s *IMAP) ExpireSessions() {
	s.mu.Lock()
	list := make([]*imapSession, 0, len(s.sessions))
	for sess := range s.sessions {
		list = append(list, sess)
	}
	s.mu.Unlock()
	// Bye outside s.mu: it waits for the connection's writer, which an
	// AUTHENTICATE in progress holds while it registers under s.mu.
	for _, sess := range list {
		sess.expire()
	}
}

// Close stops the listener, closes every connection and waits until all
// connection goroutines have finished.
func (s *IMAP) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	err := s.srv.Close()
	<-s.serveDone
	s.mu.Lock()
	for c := range s.open {
		c.Close()
	}
	s.mu.Unlock()
	s.connsWG.Wait()
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("bridgetest: imap close: %w", err)
	}
	return nil
}

// track registers an accepted connection; it reports false once closed.
func (s *IMAP) track(c *imapConn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.open[c] = struct{}{}
	s.connsWG.Add(1)
	return true
}

// user returns the shared store of a user, creating it with the default
// folders on first use.
func (s *IMAP) user(name string) *imapmemserver.User {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u, ok := s.users[name]; ok {
		return u
	}
	u := imapmemserver.NewUser(name, "")
	for _, mb := range imapMailboxes {
		// Create fails only for an existing name, which a new user has not.
		_ = u.Create(mb, nil)
	}
	s.users[name] = u
	return u
}

func (s *IMAP) newSession(c *imapserver.Conn) (imapserver.Session, *imapserver.GreetingData, error) {
	wc, _ := c.NetConn().(*imapConn)
	return &imapSession{srv: s, conn: c, wc: wc}, nil, nil
}

// imapLogger sends imapserver's messages to slog at debug level; they are
// about connections the tests close on purpose.
type imapLogger struct{}

func (imapLogger) Printf(format string, args ...any) {
	slog.Debug("bridgetest: imapserver: " + fmt.Sprintf(format, args...))
}
