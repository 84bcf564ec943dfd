package bridge

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
)

// AuthMechanisms offers what password-only clients speak: PLAIN (RFC 4616)
// and the older LOGIN that Outlook and most scanners use.
func (ss *smtpSession) AuthMechanisms() []string { return []string{sasl.Plain, sasl.Login} }

// Auth starts a local SASL exchange (RFC 4954 section 4).
func (ss *smtpSession) Auth(mech string) (sasl.Server, error) {
	if lc := localConn(ss.conn.Conn()); lc != nil && lc.tls.Load() {
		name := "?"
		if isMechanism([]byte(mech)) {
			name = strings.ToUpper(mech)
		}
		lc.trace.note("AUTH " + name + " " + redacted + " (over TLS)")
	}
	switch strings.ToUpper(mech) {
	case sasl.Plain:
		return sasl.NewPlainServer(func(identity, user, pass string) error {
			if identity != "" && !strings.EqualFold(identity, user) {
				return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
					Message: "Authorization identity differs from the login name; leave it empty"}
			}
			return ss.login(user, pass)
		}), nil
	case sasl.Login:
		return &loginServer{check: ss.login}, nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

// loginServer is the server side of the LOGIN mechanism
// (draft-murchison-sasl-login), which go-sasl only ships as a client. It
// takes both "AUTH LOGIN" followed by the user name after a "Username:"
// challenge, as Outlook sends it, and "AUTH LOGIN <user>" with the name as
// the initial response.
type loginServer struct {
	check func(user, pass string) error
	step  int
	user  string
}

func (l *loginServer) Next(resp []byte) ([]byte, bool, error) {
	switch l.step {
	case 0:
		if resp == nil {
			l.step = 1
			return []byte("Username:"), false, nil
		}
		fallthrough
	case 1:
		l.user, l.step = string(resp), 2
		return []byte("Password:"), false, nil
	case 2:
		l.step = 3
		return nil, true, l.check(l.user, string(resp))
	}
	return nil, true, sasl.ErrUnexpectedClientResponse
}

// login checks the local password, takes a fresh token and opens the
// upstream session, so that a refusal reaches the client as its AUTH reply.
func (ss *smtpSession) login(user, pass string) error {
	s := ss.s
	if lc := localConn(ss.conn.Conn()); lc != nil {
		defer s.conns.hold(lc.Conn)()
	}
	ctx, cancel := context.WithTimeout(s.ctx, smtpLoginTimeout)
	defer cancel()
	a, err := s.b.checkPassword(ctx, SMTP, user, pass, ss.peer, ss.conn.Hostname())
	if err != nil {
		return ss.refused(diag.StageAuth, err)
	}
	if s.b.sendsViaGraph(a) {
		return ss.loginGraph(ctx, a)
	}
	l, err := s.b.loginToken(ctx, SMTP, a)
	if err != nil {
		return ss.refused(diag.StageAuth, err)
	}
	release, err := s.slots.acquire(ctx, strings.ToLower(l.User), time.Duration(s.slotWait.Load()))
	if err != nil {
		s.log.Warn("upstream session limit reached", "account", l.Account.Email, "token_account", l.User)
		ss.hangUp()
		return &smtp.SMTPError{Code: 421, EnhancedCode: smtp.EnhancedCode{4, 3, 2}, Message: fmt.Sprintf(
			"Microsoft allows %d SMTP sessions at a time per mailbox and all %d of %s are in use; try again shortly",
			smtpUpstreamLimit, smtpUpstreamLimit, l.User)}
	}
	var up *upstream
	err = s.b.upstreamLogin(ctx, SMTP, l, func() (err error) {
		up, err = s.openUpstream(ctx, l)
		return err
	})
	l.Token = ""
	if err != nil {
		release()
		if graph, reply := ss.smtpRefused(a, diag.StageAuth, err); !graph {
			return reply
		}
		return ss.loginGraph(ctx, a)
	}
	if a.SMTPVia == viaAuto {
		s.b.backToSMTP(a)
	}
	s.b.Record(l.Account, SMTP, nil)
	if lc := localConn(ss.conn.Conn()); lc != nil {
		lc.markLoggedIn()
	}
	s.log.Info("logged in", "account", l.Account.Email, "peer", peerString(ss.peer))
	ss.mu.Lock()
	ss.acct, ss.user, ss.up, ss.release = l.Account, l.User, up, release
	ss.mu.Unlock()
	return nil
}

// refused words a failed login (Bridge.Refuse) as the reply to AUTH
// (stage StageAuth), or to MAIL when a new upstream session for the next
// message failed (StageMail). An upstream SMTP reply keeps its code and
// enhanced code and gains our explanation; a sign-in that must be renewed
// is a 535 at AUTH; anything else is temporary: 454 at AUTH, 451 later,
// where a permanent code would bounce the message.
func (ss *smtpSession) refused(stage diag.Stage, err error) error {
	return ss.reply(stage, ss.s.b.Refuse(SMTP, err))
}

// reply words a Refusal as refused does.
func (ss *smtpSession) reply(stage diag.Stage, r Refusal) error {
	short := r.Diagnosis.Short()
	switch r.Outcome {
	case OutcomeBadPassword:
		if ss.failures++; ss.failures >= ss.s.o.maxFailures() {
			ss.hangUp()
		}
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
			Message: badPasswordText}
	}
	if f := r.Failure; f != nil && f.Code >= 400 && f.Code < 600 {
		return &smtp.SMTPError{Code: f.Code, EnhancedCode: parseEnhanced(f.Enhanced),
			Message: diag.ReplyText(f.Text, 200) + " -- " + short}
	}
	if stage != diag.StageAuth {
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: "Cannot reach " + ss.acct.Service() + "'s SMTP server now; nothing was sent, try again later -- " + short}
	}
	switch {
	case r.Account == nil:
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: "Temporary authentication failure"}
	case r.Outcome == OutcomeNeedsLogin:
		return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: diag.ReplyText(
			"The bridge must sign in to "+r.Account.Service()+" again: run `"+r.Account.LoginCommand()+"`", 200) + " -- " + short}
	case r.Failure != nil:
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: "Cannot log in to " + r.Account.Service() + "'s SMTP server now; try again later -- " + short}
	case r.Outcome == OutcomeUnavailable:
		return &smtp.SMTPError{Code: 454, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: r.Account.Service() + "'s sign-in service cannot be reached; try again later -- " + short}
	}
	return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8},
		Message: r.Account.Service() + " refused the bridge's token -- " + short}
}

// explain passes an upstream reply to MAIL, RCPT or DATA back with its
// code. When the diagnosis table knows it (Send As refused, throttling,
// blocks), the account's status records it and the text gains our words;
// ordinary refusals such as an unknown recipient pass through unchanged.
func (ss *smtpSession) explain(stage diag.Stage, se *smtp.SMTPError) error {
	b := ss.s.b
	d := b.diagnose(ss.acct, smtpFailure(stage, se))
	if d.Kind == diag.KindUnknown {
		return se
	}
	b.keep(ss.acct, SMTP, d, false)
	return &smtp.SMTPError{Code: se.Code, EnhancedCode: se.EnhancedCode, Message: diag.ReplyText(se.Message, 200) + " -- " + d.Short()}
}

// smtpFailure turns an upstream reply into a diag.Failure.
func smtpFailure(stage diag.Stage, se *smtp.SMTPError) *diag.Failure {
	return &diag.Failure{Proto: SMTP, Stage: stage, Code: se.Code, Enhanced: enhancedString(se.EnhancedCode), Text: se.Message}
}

// enhancedString formats an RFC 3463 code; "" when there is none.
func enhancedString(ec smtp.EnhancedCode) string {
	if ec == smtp.NoEnhancedCode || ec == smtp.EnhancedCodeNotSet {
		return ""
	}
	return fmt.Sprintf("%d.%d.%d", ec[0], ec[1], ec[2])
}

func parseEnhanced(s string) smtp.EnhancedCode {
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return smtp.EnhancedCodeNotSet
	}
	var ec smtp.EnhancedCode
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 || n > 999 {
			return smtp.EnhancedCodeNotSet
		}
		ec[i] = n
	}
	return ec
}
