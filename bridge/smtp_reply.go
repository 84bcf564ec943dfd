package bridge

import (
	"bufio"
	"bytes"
	"fmt"
	"net/textproto"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
)

// The client sees the upstream's own replies to MAIL, RCPT and the end of
// DATA (or BDAT LAST): code, enhanced code and text, so that what it logs
// (Postfix as a smarthost logs the final reply) names the queue id the
// upstream's message trace knows. go-smtp's server writes a 2xx
// *smtp.SMTPError returned by a session method as the reply (for MAIL and
// RCPT through the change in internal/go-smtp); its client returns the
// final reply to DATA, but reads the replies to MAIL and RCPT and drops
// them, so those are taken from what it exchanged (replyRecorder).

// smtpReplyMax bounds what replyRecorder keeps: one command line (MAIL and
// RCPT with every parameter stay under 2 KB) and one reply.
const smtpReplyMax = 16 << 10

// replyRecorder is the upstream client's DebugWriter while one command
// runs. go-smtp's client hands it the command line it writes, then the
// bytes it reads, which are the reply: no other command is outstanding.
type replyRecorder struct{ b []byte }

func (r *replyRecorder) Write(p []byte) (int, error) {
	if len(r.b)+len(p) <= smtpReplyMax {
		r.b = append(r.b, p...)
	}
	return len(p), nil
}

// reply parses the recorded reply; nil when there is none to parse.
func (r *replyRecorder) reply() *smtp.SMTPError {
	_, rest, ok := bytes.Cut(r.b, []byte("\n")) // the command line
	if !ok {
		return nil
	}
	code, msg, err := textproto.NewReader(bufio.NewReader(bytes.NewReader(rest))).ReadResponse(2)
	if err != nil {
		return nil
	}
	return upstreamReply(code, msg)
}

// record runs one upstream command (MAIL or RCPT) and returns the
// upstream's success reply, or nil when it could not be read, in which
// case go-smtp's own text goes out; err is the command's failure.
func (u *upstream) record(cmd func() error) (*smtp.SMTPError, error) {
	rec := &replyRecorder{}
	u.c.DebugWriter = rec
	err := cmd()
	u.c.DebugWriter = nil
	if err != nil {
		return nil, err
	}
	return rec.reply(), nil
}

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
