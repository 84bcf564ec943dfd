package bridgetest

import (
	"errors"
	"io"
	"strings"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// smtpSession is one client's state between EHLO and QUIT (go-smtp starts
// a new one after STARTTLS).
type smtpSession struct {
	srv  *SMTP
	conn *smtp.Conn
	user string // XOAUTH2 user= once authenticated
	from string
	to   []string
}

func (s *SMTP) newSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpSession{srv: s, conn: c}, nil
}

// AuthMechanisms lists what Exchange Online offers after STARTTLS, or of
// Gmail's list the three the imitation knows.
func (ss *smtpSession) AuthMechanisms() []string {
	if ss.srv.opts.Service == Gmail {
		return []string{sasl.Login, sasl.Plain, "XOAUTH2"}
	}
	return []string{sasl.Login, "XOAUTH2"}
}

// Auth starts a SASL exchange (RFC 4954 section 4).
func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	switch mech {
	case "XOAUTH2":
		return &smtpXOAUTH2{sess: ss}, nil
	case sasl.Login:
		return &smtpBasicLogin{srv: ss.srv}, nil
	case sasl.Plain:
		if ss.srv.opts.Service == Gmail {
			return sasl.NewPlainServer(func(_, _, _ string) error {
				ss.srv.recordAuth(AuthAttempt{Mechanism: sasl.Plain})
				return gmailSMTPRefused()
			}), nil
		}
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (ss *smtpSession) Reset() { ss.from, ss.to = "", nil }

func (ss *smtpSession) Logout() error {
	if ss.user != "" {
		ss.srv.logout(ss.user)
		ss.user = ""
	}
	return nil
}

func (ss *smtpSession) Mail(from string, _ *smtp.MailOptions) error {
	if ss.user == "" {
		return &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 57}, Message: textNotAuthenticated}
	}
	if Refusal(ss.srv.refusal.Load()) == Concurrency {
		return &smtp.SMTPError{Code: 432, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: textThreadLimit}
	}
	ss.from, ss.to = from, nil
	return nil
}

func (ss *smtpSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

// Data stores the message; Exchange checks Send As at the end of DATA.
func (ss *smtpSession) Data(r io.Reader) error {
	if ss.srv.drop() {
		// Read a little, so the client is mid-stream, then vanish without
		// a reply: the message must count as not sent.
		io.CopyN(io.Discard, r, 512)
		ss.conn.Conn().Close()
		return errors.New("bridgetest: connection dropped on purpose")
	}
	data, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if Refusal(ss.srv.refusal.Load()) == SendAsDenied && !strings.EqualFold(ss.from, ss.user) {
		return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 60}, Message: textSendAsDenied}
	}
	id := ss.srv.store(Message{From: ss.from, To: append([]string(nil), ss.to...), Data: data, AuthUser: ss.user})
	// A 2xx reply from Data is written as it is: the accepted message's
	// queue id, which a client logs and message traces search for.
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "OK <" + id + "> [Hostname=" + smtpHost + "]"}
}

// smtpXOAUTH2 takes the initial response on the AUTH line or, when it is
// absent, asks for it with an empty 334 challenge.
type smtpXOAUTH2 struct {
	sess    *smtpSession
	step    int
	attempt AuthAttempt
}

// smtpErrorChallenge is the JSON document a refused token is answered with
// before the final reply, when SMTPOptions.ErrorChallenge is set.
var smtpErrorChallenge = []byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`)

func (x *smtpXOAUTH2) Next(resp []byte) ([]byte, bool, error) {
	switch x.step {
	case 0:
		x.attempt.Mechanism = "XOAUTH2"
		if resp == nil {
			x.step = 1
			return []byte{}, false, nil
		}
		x.attempt.InitialResponse = true
		fallthrough
	case 1:
		x.step = 2
		err := x.check(resp)
		if err == nil {
			return nil, true, nil
		}
		if x.sess.srv.challenges() && errors.Is(err, errSMTPBadToken) {
			if x.sess.srv.opts.Service == Gmail {
				return gmailChallenge, false, nil
			}
			return smtpErrorChallenge, false, nil
		}
		return nil, true, err
	case 2:
		// The client's answer to the error challenge; any answer ends it.
		x.step = 3
		if x.sess.srv.opts.Service == Gmail {
			return nil, true, gmailSMTPRefused()
		}
		return nil, true, smtpAuthUnsuccessful()
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

var errSMTPBadToken = errors.New("bridgetest: token refused")

// challenges reports whether a refused token gets an error challenge.
func (s *SMTP) challenges() bool { return s.opts.ErrorChallenge || s.opts.Service == Gmail }

// gmailSMTPRefused is Gmail's refusal of a token or a password.
func gmailSMTPRefused() error {
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: gmailSMTPRefusal()}
}

func smtpAuthUnsuccessful() error {
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 3},
		Message: "Authentication unsuccessful [" + smtpHost + "]"}
}

// check validates the decoded initial response and applies the scripted
// refusal, recording the attempt either way.
func (x *smtpXOAUTH2) check(resp []byte) error {
	srv := x.sess.srv
	user, token, err := ParseXOAUTH2(resp)
	x.attempt.User = user
	switch {
	case err != nil:
		err = smtpAuthUnsuccessful()
	case srv.opts.Validate == nil || srv.opts.Validate(user, token) != nil,
		srv.opts.Apps.check(roleSMTP, user, token) == appRefused:
		err = errSMTPBadToken
	case srv.opts.Service == Exchange:
		err = smtpRefusalAtAuth(Refusal(srv.refusal.Load()))
	}
	if err != nil {
		srv.recordAuth(x.attempt)
		if errors.Is(err, errSMTPBadToken) && !srv.challenges() {
			return smtpAuthUnsuccessful()
		}
		return err
	}
	x.attempt.OK = true
	if err := srv.recordAuth(x.attempt); err != nil {
		return err
	}
	x.sess.user = user
	return nil
}

func smtpRefusalAtAuth(r Refusal) error {
	e := func(text string) error {
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139}, Message: text}
	}
	switch r {
	case TenantDisabled:
		return e(textTenantDisabled)
	case MailboxDisabled:
		return e(textMailboxDisabled)
	case SecurityDefaults:
		return e(textSecurityDefaults)
	case AuthUnsuccessful:
		return smtpAuthUnsuccessful()
	}
	return nil
}

// smtpBasicLogin runs AUTH LOGIN to its end and then refuses it, as
// Exchange Online does since basic authentication was retired.
type smtpBasicLogin struct {
	srv  *SMTP
	step int
}

func (l *smtpBasicLogin) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if resp == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.step = 2
		return []byte("Password:"), false, nil
	}
	l.srv.recordAuth(AuthAttempt{Mechanism: sasl.Login})
	if l.srv.opts.Service == Gmail {
		return nil, true, gmailSMTPRefused()
	}
	return nil, true, &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 139}, Message: textBasicDisabled}
}
