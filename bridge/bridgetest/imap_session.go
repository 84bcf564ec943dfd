package bridgetest

import (
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapserver"
	"github.com/emersion/go-imap/v2/imapserver/imapmemserver"
	"github.com/emersion/go-sasl"
)

// Texts Exchange Online sends, verbatim.
const (
	imapAuthFailed     = "AUTHENTICATE failed."
	imapLoginFailed    = "LOGIN failed."
	imapNotConnected   = "User is authenticated but not connected."
	imapSessionExpired = "Session invalidated - AccessTokenExpired"
	imapMechXOAUTH2    = "XOAUTH2"
	imapMechPLAIN      = "PLAIN"
)

// imapSession is one connection's session. The embedded UserSession is nil
// until AUTHENTICATE XOAUTH2 succeeds; imapserver calls its methods only in
// the authenticated state.
type imapSession struct {
	*imapmemserver.UserSession

	srv  *IMAP
	conn *imapserver.Conn
	wc   *imapConn

	notConnected bool // Mode NotConnected at login: fail the first mailbox command

	expireMu   sync.Mutex
	expireT    *time.Timer
	expireDone chan struct{}
}

var (
	_ imapserver.SessionSASL      = (*imapSession)(nil)
	_ imapserver.SessionNamespace = (*imapSession)(nil)
	_ imapserver.SessionMove      = (*imapSession)(nil)
)

// Close releases the session; imapserver calls it once, last thing on the
// connection's goroutine.
func (s *imapSession) Close() error {
	s.expireMu.Lock()
	t, done := s.expireT, s.expireDone
	s.expireMu.Unlock()
	if t != nil && !t.Stop() {
		<-done // the timer fired: let its Bye finish before we report done
	}
	s.srv.mu.Lock()
	delete(s.srv.sessions, s)
	if s.wc != nil {
		delete(s.srv.open, s.wc)
	}
	s.srv.mu.Unlock()
	if s.UserSession != nil {
		s.UserSession.Close()
	}
	s.srv.connsWG.Done()
	return nil
}

// Login refuses the LOGIN command: Exchange Online has basic auth off.
func (s *imapSession) Login(username, password string) error {
	s.srv.failed.Add(1)
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: imapLoginFailed}
}

// AuthenticateMechanisms lists what Exchange and Gmail advertise before
// login (of Gmail's list, the two the imitation knows); PLAIN is
// advertised but always refused.
func (s *imapSession) AuthenticateMechanisms() []string {
	if s.srv.opts.Service == Gmail {
		return []string{imapMechXOAUTH2, imapMechPLAIN}
	}
	return []string{imapMechPLAIN, imapMechXOAUTH2}
}

// Authenticate returns the SASL server for mech (RFC 3501 section 6.2.2,
// with SASL-IR from RFC 4959).
func (s *imapSession) Authenticate(mech string) (sasl.Server, error) {
	if mech != imapMechXOAUTH2 {
		s.srv.failed.Add(1)
		return nil, authFailedError()
	}
	return &xoauth2Server{check: s.login}, nil
}

func authFailedError() error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Text: imapAuthFailed}
}

// login checks a decoded XOAUTH2 response and, when accepted, binds the
// session to the user's shared store. Gmail answers a refused token with
// its error challenge first; IMAP switched off by a Workspace administrator
// gets its ALERT straight away.
func (s *imapSession) login(resp []byte) ([]byte, error) {
	user, token, err := ParseXOAUTH2(resp)
	if err == nil && s.srv.opts.Validate == nil {
		err = errNoValidator
	}
	if err == nil {
		err = s.srv.opts.Validate(user, token)
	}
	mode := Mode(s.srv.mode.Load())
	app := appNone
	if err == nil {
		app = s.srv.opts.Apps.check(roleIMAP, user, token)
	}
	gmail := s.srv.opts.Service == Gmail
	switch {
	case err != nil && gmail:
		s.srv.failed.Add(1)
		return gmailChallenge, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthenticationFailed, Text: gmailIMAPRefused}
	case mode == Disabled && gmail:
		s.srv.failed.Add(1)
		return nil, &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAlert, Text: gmailIMAPDisabled}
	case err != nil || mode == Disabled || app == appRefused:
		s.srv.failed.Add(1)
		return nil, authFailedError()
	}
	if gmail {
		mode = Normal
	}
	s.srv.logins.Add(1)
	s.UserSession = imapmemserver.NewUserSession(s.srv.user(user))
	s.notConnected = mode == NotConnected || app == appNotConnected
	if mode == NotConnectedBye && s.wc != nil {
		s.wc.loginBye.Store(true)
	}
	s.srv.mu.Lock()
	s.srv.sessions[s] = struct{}{}
	s.srv.mu.Unlock()
	if mode == TokenExpiredMidSession && s.srv.opts.ExpireAfter > 0 {
		s.expireMu.Lock()
		s.expireDone = make(chan struct{})
		done := s.expireDone
		s.expireT = time.AfterFunc(s.srv.opts.ExpireAfter, func() {
			defer close(done)
			s.expire()
		})
		s.expireMu.Unlock()
	}
	return nil, nil
}

// expire ends the session the way Exchange does when the login token
// expires. The BYE waits for any reply being written, so it never splits one.
func (s *imapSession) expire() {
	s.conn.Bye(imapSessionExpired)
}

// checkConnected implements Mode NotConnected: the first mailbox command
// gets BAD, then the connection is closed after "* BYE Connection closed. 14".
func (s *imapSession) checkConnected() error {
	if !s.notConnected {
		return nil
	}
	if s.wc != nil {
		s.wc.byeAfter.Store(&imapByeNotConnected)
	}
	return &imap.Error{Type: imap.StatusResponseTypeBad, Text: imapNotConnected}
}

// Select implements SELECT and EXAMINE.
func (s *imapSession) Select(mailbox string, o *imap.SelectOptions) (*imap.SelectData, error) {
	if err := s.checkConnected(); err != nil {
		return nil, err
	}
	return s.UserSession.Select(mailbox, o)
}

// List implements LIST and LSUB.
func (s *imapSession) List(w *imapserver.ListWriter, ref string, patterns []string, o *imap.ListOptions) error {
	if err := s.checkConnected(); err != nil {
		return err
	}
	return s.UserSession.List(w, ref, patterns, o)
}

// Status implements STATUS.
func (s *imapSession) Status(mailbox string, o *imap.StatusOptions) (*imap.StatusData, error) {
	if err := s.checkConnected(); err != nil {
		return nil, err
	}
	return s.UserSession.Status(mailbox, o)
}

// Namespace implements NAMESPACE.
func (s *imapSession) Namespace() (*imap.NamespaceData, error) {
	if err := s.checkConnected(); err != nil {
		return nil, err
	}
	return s.UserSession.Namespace()
}

// imapIdleRecheck bounds how late IDLE reports a change that came while
// it was starting (Idle).
const imapIdleRecheck = time.Second

// Idle implements IDLE. go-imap's own (v2.0.0-beta.8) waits only for
// changes signalled after it has registered, so one queued in between (an
// APPEND on another connection just as IDLE starts) would wait for the
// next change to be reported. Here pending changes are reported first, and
// the wait starts again every imapIdleRecheck, reporting what is pending
// each time.
func (s *imapSession) Idle(w *imapserver.UpdateWriter, stop <-chan struct{}) error {
	for {
		if err := s.UserSession.Poll(w, true); err != nil {
			return err
		}
		wait := make(chan struct{})
		t := time.AfterFunc(imapIdleRecheck, func() { close(wait) })
		done := make(chan struct{})
		go func() {
			defer close(done)
			select {
			case <-stop:
				if t.Stop() {
					close(wait)
				}
			case <-wait:
			}
		}()
		err := s.UserSession.Idle(w, wait)
		<-done
		select {
		case <-stop:
			return err
		default:
		}
		if err != nil {
			return err
		}
	}
}
