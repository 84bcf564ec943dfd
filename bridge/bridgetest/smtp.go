package bridgetest

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log"
	"math/rand"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emersion/go-smtp"
)

// Refusal scripts how the imitation SMTP server fails, the way Exchange
// Online's client submission service (smtp.office365.com:587) does. It is
// read when a client authenticates, sends MAIL or finishes DATA.
type Refusal int32

const (
	// RefuseNone accepts whatever the Validator accepts.
	RefuseNone Refusal = iota
	// TenantDisabled refuses every AUTH with "535 5.7.139 ...
	// SmtpClientAuthentication is disabled for the Tenant ...".
	TenantDisabled
	// MailboxDisabled refuses every AUTH with "535 5.7.139 ...
	// SmtpClientAuthentication is disabled for the Mailbox ...".
	MailboxDisabled
	// AuthUnsuccessful refuses every AUTH, even with a valid token, with
	// "535 5.7.3 Authentication unsuccessful [host]".
	AuthUnsuccessful
	// SecurityDefaults refuses every AUTH with "535 5.7.139 ... user is
	// locked by your organization's security defaults policy.".
	SecurityDefaults
	// SendAsDenied answers the end of DATA with "550 5.7.60 SMTP; Client does
	// not have permissions to send as this sender" when MAIL FROM is not the
	// authenticated user.
	SendAsDenied
	// Concurrency answers every MAIL with "432 4.3.2 STOREDRV.ClientSubmit;
	// sender thread limit exceeded".
	Concurrency
	// DropMidData closes the connection while reading DATA, in the fraction
	// SMTPOptions.DropProbability of messages; nothing is stored for them.
	DropMidData
)

// The replies Exchange Online sends, verbatim where a capture exists
// (docs/microsoft-facts.md §1.4).
const (
	textTenantDisabled   = "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
	textMailboxDisabled  = "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."
	textSecurityDefaults = "Authentication unsuccessful, user is locked by your organization's security defaults policy."
	textBasicDisabled    = "Authentication unsuccessful, basic authentication is disabled."
	textSendAsDenied     = "SMTP; Client does not have permissions to send as this sender"
	textThreadLimit      = "STOREDRV.ClientSubmit; sender thread limit exceeded"
	textNotAuthenticated = "Client not authenticated to send mail"
)

// smtpHost is the made-up front-end host name in greetings and 5.7.3 replies.
const smtpHost = "BT0PR01CA0001.prod.bridgetest.invalid"

// smtpMaxSize is Exchange Online's advertised SIZE: 150 MB.
const smtpMaxSize = 157286400

// smtpMaxSessions is Exchange Online's limit of concurrent SMTP
// connections per mailbox.
const smtpMaxSessions = 3

// SMTPOptions configures NewSMTP.
type SMTPOptions struct {
	// Validate checks each XOAUTH2 login. Nil refuses every login.
	Validate Validator
	// TLS, when set, is offered with STARTTLS, and AUTH is then only
	// allowed after it, as on smtp.office365.com:587. Nil serves plain TCP
	// and allows AUTH on it (the listener is loopback only).
	TLS *tls.Config
	// Refusal is the initial Refusal; the zero value is RefuseNone.
	Refusal Refusal
	// DropProbability is the fraction of messages that DropMidData drops,
	// between 0 and 1; zero means every message.
	DropProbability float64
	// Seed seeds the random choice of DropMidData, so a failing run can be
	// repeated.
	Seed int64
	// Apps is Exchange's record of app-only access, which app-only
	// tokens are judged by (see Apps); nil refuses every app-only token.
	Apps *Apps
	// ErrorChallenge makes a refused token first get a 334 challenge with a
	// JSON error document (as Gmail and Exchange's IMAP do) before the 535,
	// so clients must answer it with an empty line. Gmail always does.
	ErrorChallenge bool
	// Service is the service imitated; the zero value is Exchange.
	Service Service
	// ImplicitTLS serves TLS from the first byte with TLS, as
	// smtp.gmail.com:465 does (RFC 8314 section 3.3), instead of offering
	// STARTTLS.
	ImplicitTLS bool
}

// Message is one message the imitation accepted.
type Message struct {
	// From is the MAIL FROM address, To the RCPT TO addresses.
	From string
	To   []string
	// Data is the message as received, dot-unstuffed, CRLF line ends kept.
	Data []byte
	// AuthUser is the XOAUTH2 user= the session authenticated as.
	AuthUser string
	// QueueID is the id the final reply to DATA named.
	QueueID string
}

// AuthAttempt describes one AUTH command as it went over the wire, without
// its secrets.
type AuthAttempt struct {
	// Mechanism is the SASL mechanism named ("XOAUTH2", "LOGIN").
	Mechanism string
	// InitialResponse is true when the credentials came on the AUTH line
	// itself (RFC 4954 section 4), false for the two-step form where they
	// follow an empty 334 challenge.
	InitialResponse bool
	// User is the user= of an XOAUTH2 attempt, when it could be parsed.
	User string
	// OK is true when the attempt succeeded.
	OK bool
}

// SMTP is an in-process imitation of Exchange Online's client submission
// service, serving on 127.0.0.1. It is safe for concurrent use.
type SMTP struct {
	opts SMTPOptions
	srv  *smtp.Server
	ln   net.Listener

	refusal atomic.Int32
	dropP   atomic.Uint64 // math.Float64bits of the drop probability

	conns, logins atomic.Int64

	mu       sync.Mutex
	closed   bool
	open     map[*smtpConn]struct{}
	msgs     []Message
	auths    []AuthAttempt
	authed   map[string]int // live authenticated sessions per user
	peak     int
	rnd      *rand.Rand
	serveErr chan error
}

// NewSMTP listens on 127.0.0.1:0 and starts serving in the background.
// Call Close to stop it.
func NewSMTP(o SMTPOptions) (*SMTP, error) {
	s := &SMTP{
		opts:     o,
		open:     map[*smtpConn]struct{}{},
		authed:   map[string]int{},
		rnd:      rand.New(rand.NewSource(o.Seed)),
		serveErr: make(chan error, 1),
	}
	s.refusal.Store(int32(o.Refusal))
	s.SetDropProbability(o.DropProbability)

	srv := smtp.NewServer(smtp.BackendFunc(s.newSession))
	srv.Domain = smtpHost
	if o.Service == Gmail {
		srv.Domain = gmailSMTPHost
	}
	srv.TLSConfig = o.TLS
	srv.AllowInsecureAuth = o.TLS == nil
	if o.ImplicitTLS && o.TLS != nil {
		// The connection is TLS throughout; go-smtp cannot see it through
		// smtpConn, so it must be told AUTH is safe.
		srv.TLSConfig, srv.AllowInsecureAuth = nil, true
	}
	srv.MaxMessageBytes = smtpMaxSize
	// Real XOAUTH2 lines are 2-3 KB and legacy clients send long data
	// lines; go-smtp's default 2000 would drop both.
	srv.MaxLineLength = 1 << 20
	srv.EnableSMTPUTF8 = true
	srv.ReadTimeout = 10 * time.Minute
	srv.ErrorLog = log.New(discardWriter{}, "", 0)
	s.srv = srv

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bridgetest: smtp listen: %w", err)
	}
	if o.ImplicitTLS && o.TLS != nil {
		ln = tls.NewListener(ln, o.TLS)
	}
	s.ln = &smtpListener{Listener: ln, srv: s}
	go func() { s.serveErr <- srv.Serve(s.ln) }()
	return s, nil
}

// Addr returns the listening address, host:port.
func (s *SMTP) Addr() string { return s.ln.Addr().String() }

// Refuse changes the scripted Refusal from now on.
func (s *SMTP) Refuse(r Refusal) { s.refusal.Store(int32(r)) }

// SetDropProbability changes the fraction of messages DropMidData drops;
// zero means every message.
func (s *SMTP) SetDropProbability(p float64) {
	if p <= 0 || p > 1 {
		p = 1
	}
	s.dropP.Store(uint64(p * 1e9))
}

// Connections returns how many TCP connections were accepted.
func (s *SMTP) Connections() int64 { return s.conns.Load() }

// Logins returns how many AUTH commands succeeded.
func (s *SMTP) Logins() int64 { return s.logins.Load() }

// Active returns how many connections are open now.
func (s *SMTP) Active() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.open)
}

// PeakSessions returns the largest number of authenticated sessions one
// user ever had open at the same time.
func (s *SMTP) PeakSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.peak
}

// Messages returns a copy of the accepted messages, oldest first.
func (s *SMTP) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Auths returns every AUTH attempt, oldest first.
func (s *SMTP) Auths() []AuthAttempt {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]AuthAttempt(nil), s.auths...)
}

// DropConnections closes every open connection at once, as when the
// service restarts or a load balancer forgets idle sessions.
func (s *SMTP) DropConnections() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.open {
		c.Conn.Close()
	}
}

// Close stops the listener, closes every connection and waits until all
// connection goroutines have finished.
func (s *SMTP) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()

	err := s.ln.Close()
	<-s.serveErr // Serve has returned, so no connection is added any more
	s.mu.Lock()
	for c := range s.open {
		c.Conn.Close()
	}
	s.mu.Unlock()
	// Shutdown waits for go-smtp's connection goroutines, whose
	// connections are all closed by now.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if serr := s.srv.Shutdown(ctx); serr != nil && !errors.Is(serr, net.ErrClosed) {
		return fmt.Errorf("bridgetest: smtp shutdown: %w", serr)
	}
	if err != nil && !errors.Is(err, net.ErrClosed) {
		return fmt.Errorf("bridgetest: smtp close: %w", err)
	}
	return nil
}

// drop decides whether DropMidData drops the next message.
func (s *SMTP) drop() bool {
	if Refusal(s.refusal.Load()) != DropMidData {
		return false
	}
	p := float64(s.dropP.Load()) / 1e9
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rnd.Float64() < p
}

// recordAuth notes an AUTH attempt, and on success counts the user's live
// sessions; it refuses one beyond Exchange's limit of three.
func (s *SMTP) recordAuth(a AuthAttempt) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a.OK && s.opts.Service == Exchange && s.authed[strings.ToLower(a.User)] >= smtpMaxSessions {
		a.OK = false
		s.auths = append(s.auths, a)
		return &smtp.SMTPError{Code: 432, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: textThreadLimit}
	}
	s.auths = append(s.auths, a)
	if a.OK {
		u := strings.ToLower(a.User)
		s.authed[u]++
		s.peak = max(s.peak, s.authed[u])
		s.logins.Add(1)
	}
	return nil
}

func (s *SMTP) logout(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u := strings.ToLower(user)
	if s.authed[u]--; s.authed[u] <= 0 {
		delete(s.authed, u)
	}
}

// store keeps m and returns the queue id it is given.
func (s *SMTP) store(m Message) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m.QueueID = fmt.Sprintf("BTQ%06d", len(s.msgs)+1)
	s.msgs = append(s.msgs, m)
	return m.QueueID
}

// smtpListener counts and tracks accepted connections, so Close can close
// every one of them and the greeting can be rewritten.
type smtpListener struct {
	net.Listener
	srv *SMTP
}

func (l *smtpListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.srv.conns.Add(1)
	wc := &smtpConn{Conn: c, srv: l.srv}
	l.srv.mu.Lock()
	defer l.srv.mu.Unlock()
	if l.srv.closed {
		c.Close()
		return nil, net.ErrClosed
	}
	l.srv.open[wc] = struct{}{}
	return wc, nil
}

// smtpConn replaces go-smtp's fixed greeting ("<domain> ESMTP Service
// Ready") with Exchange's or Gmail's, and forgets itself when closed.
type smtpConn struct {
	net.Conn
	srv     *SMTP
	greeted bool
	once    sync.Once
}

func (c *smtpConn) Write(p []byte) (int, error) {
	if !c.greeted {
		c.greeted = true
		if strings.HasPrefix(string(p), "220 ") {
			g := "220 " + smtpHost + " Microsoft ESMTP MAIL Service ready at " +
				time.Now().UTC().Format(time.RFC1123Z) + "\r\n"
			if c.srv.opts.Service == Gmail {
				g = "220 " + gmailSMTPHost + " ESMTP " + gmailID() + " - gsmtp\r\n"
			}
			if _, err := c.Conn.Write([]byte(g)); err != nil {
				return 0, err
			}
			return len(p), nil
		}
	}
	return c.Conn.Write(p)
}

func (c *smtpConn) Close() error {
	c.once.Do(func() {
		c.srv.mu.Lock()
		delete(c.srv.open, c)
		c.srv.mu.Unlock()
	})
	return c.Conn.Close()
}

type discardWriter struct{}

func (discardWriter) Write(p []byte) (int, error) { return len(p), nil }
