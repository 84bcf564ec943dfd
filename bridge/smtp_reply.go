package bridge

import (
	"fmt"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
)

// The client sees the upstream's own reply at the end of DATA (or BDAT
// LAST): code, enhanced code and text, so that what it logs (Postfix as a
// smarthost logs the final reply) names the queue id the upstream's
// message trace knows. go-smtp's server writes a 2xx *smtp.SMTPError that
// Data returns as the reply, and its client returns the final reply to
// DATA. Refusals of MAIL and RCPT pass through with their code and text;
// their success replies are go-smtp's own ("250 2.0.0 Roger, ..."): its
// server records the sender or recipient only when the session method
// returns nil, and then writes its fixed text.

// upstreamReply splits a reply's text as go-smtp's client does: the
// enhanced code (RFC 2034) leads the text, on every line of a multi-line
// reply. Without one, go-smtp's server puts a generic X.0.0 in.
func upstreamReply(code int, msg string) *smtp.SMTPError {
	se := &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCodeNotSet, Message: msg}
	first, text, ok := strings.Cut(msg, " ")
	if !ok {
		return se
	}
	if ec := parseEnhanced(first); ec != smtp.EnhancedCodeNotSet && ec[0] == code/100 {
		se.EnhancedCode = ec
		se.Message = strings.ReplaceAll(text, "\n"+first+" ", "\n")
	}
	return se
}

// replyString is a reply as one log value: "250 2.0.0 text".
func replyString(se *smtp.SMTPError) string {
	s := fmt.Sprint(se.Code)
	if ec := enhancedString(se.EnhancedCode); ec != "" {
		s += " " + ec
	}
	return s + " " + diag.ReplyText(se.Message, 300)
}

// smtpTx is what the log line of one relayed message reports, gathered
// from MAIL to the end of DATA.
type smtpTx struct {
	from  string
	rcpts int
	start time.Time
}

// logMessage writes the one log line of a message the upstream answered
// at the end of DATA: who sent it, to how many, its size, the upstream's
// reply (with its queue id) and how long the relay took. Never the body,
// the recipients' addresses or anything secret.
func (ss *smtpSession) logMessage(size int64, reply *smtp.SMTPError) {
	msg := "message relayed"
	if reply.Code >= 400 {
		msg = "message refused by the upstream"
	}
	ss.s.log.Info(msg, "account", ss.acct.Email, "from", ss.tx.from, "rcpts", ss.tx.rcpts,
		"bytes", size, "reply", replyString(reply), "took", time.Since(ss.tx.start).Round(time.Millisecond))
}
