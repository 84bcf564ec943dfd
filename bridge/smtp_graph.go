package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"strings"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// The SMTP front end's path through Microsoft Graph, for an account on
// smtp_via "graph", or "auto" once Exchange said SMTP AUTH is off. The
// client sees the same conversation: AUTH checks the local password and
// takes a Graph token (proving the consent), MAIL and RCPT gather the
// envelope, and DATA reads the message (at most graphMaxMessage bytes),
// adds a Bcc field for the envelope recipients its To, Cc and Bcc do not
// name (Graph delivers to the recipients of those fields), and submits it
// with sendMail. The client's 250 comes only after Graph's 202.

// errViaGraph tells Mail that connect switched the session to Graph.
var errViaGraph = errors.New("bridge: smtp: sending through Microsoft Graph")

// graphTx is the envelope of the message under way through Graph.
type graphTx struct {
	rcpts []string
}

// smtpRefused handles a failed upstream SMTP login of account a at
// stage: for an account on smtp_via "auto" refused because SMTP AUTH is
// off, it records that quietly (nothing needs doing) and switches the
// account to Graph, returning true; otherwise it returns the client's
// reply, classified once.
func (ss *smtpSession) smtpRefused(a *Account, stage diag.Stage, err error) (toGraph bool, reply error) {
	b := ss.s.b
	err = loginError(a, err)
	if a.SMTPVia != viaAuto {
		return false, ss.refused(stage, err)
	}
	d := b.diagnose(a, err)
	if !smtpAuthOff(d) {
		return false, ss.reply(stage, b.refuseAs(SMTP, a, err, d))
	}
	b.keep(a, SMTP, d, true)
	b.switchToGraph(a, d)
	return true, nil
}

// loginGraph finishes an AUTH for account a, whose local password was
// accepted, on the Graph path: a Graph token stands for the upstream
// login, so a missing consent is the reply to AUTH.
func (ss *smtpSession) loginGraph(ctx context.Context, a *Account) error {
	s := ss.s
	res := s.b.GraphToken(a)
	if res == nil {
		return ss.refused(diag.StageAuth, &LoginError{Account: a,
			Err: fmt.Errorf("bridge: %s: token account %s is not configured: %w", a.Email, a.TokenAccount(), tokens.ErrNeedsLogin)})
	}
	if _, err := res.Token(ctx); err != nil {
		return ss.refused(diag.StageAuth, loginError(a, err))
	}
	s.b.Record(a, SMTP, nil)
	if lc := localConn(ss.conn.Conn()); lc != nil {
		lc.markLoggedIn()
	}
	s.log.Info("logged in; sending through Microsoft Graph", "account", a.Email, "peer", peerString(ss.peer))
	ss.mu.Lock()
	ss.acct, ss.user, ss.viaGraph = a, a.TokenAccount(), true
	ss.mu.Unlock()
	return nil
}

// graphMail starts a transaction. A declared SIZE (RFC 1870) beyond what
// Graph takes is refused here, before any data.
func (ss *smtpSession) graphMail(from string, opts *smtp.MailOptions) error {
	ss.graphTx = graphTx{}
	ss.tx = smtpTx{from: from, start: time.Now()}
	if opts != nil && opts.Size > graphMaxMessage {
		return ss.graphTooLarge(opts.Size)
	}
	return nil
}

// graphRcpt adds a recipient to the envelope.
func (ss *smtpSession) graphRcpt(to string) error {
	if len(ss.graphTx.rcpts) >= graphMaxRecipients {
		return &smtp.SMTPError{Code: 452, EnhancedCode: smtp.EnhancedCode{4, 5, 3},
			Message: fmt.Sprintf("Too many recipients: Microsoft takes %d per message; send the rest in another message", graphMaxRecipients)}
	}
	ss.graphTx.rcpts = append(ss.graphTx.rcpts, to)
	ss.tx.rcpts++
	return nil
}

// graphData reads the message and submits it. The message is held in
// memory, at most graphMaxMessage bytes of it: a longer one is refused as
// soon as the limit is passed (go-smtp reads and drops the rest).
func (ss *smtpSession) graphData(r io.Reader) error {
	src := &dataSource{r: r, conn: ss.conn.Conn(), timeout: ss.s.srv.ReadTimeout}
	msg, err := io.ReadAll(io.LimitReader(src, graphMaxMessage+1))
	if err != nil {
		ss.s.log.Info("client broke off DATA; nothing was sent", "account", ss.acct.Email, "err", err)
		var se *smtp.SMTPError
		if errors.As(err, &se) {
			return se
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the message failed; it was not sent"}
	}
	if lc := localConn(ss.conn.Conn()); lc != nil && lc.sawEOF.Load() {
		ss.s.log.Info("client left inside a BDAT chunk; nothing was sent", "account", ss.acct.Email)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 3, 0}, Message: "Reading the message failed; it was not sent"}
	}
	if len(msg) > graphMaxMessage {
		return ss.graphTooLarge(int64(len(msg)))
	}
	msg = withBcc(msg, ss.graphTx.rcpts)
	if len(msg) > graphMaxMessage {
		return ss.graphTooLarge(int64(len(msg)))
	}
	reply := ss.graphSubmit(msg)
	ss.logMessage(int64(len(msg)), reply)
	return reply
}

// graphSubmit sends msg with sendMail and words Graph's answer as the
// reply to DATA. A token Graph refuses that was not fetched for this
// message is replaced once, as upstreamLogin does for SMTP.
func (ss *smtpSession) graphSubmit(msg []byte) *smtp.SMTPError {
	b, a := ss.s.b, ss.acct
	ctx, cancel := context.WithTimeout(ss.s.ctx, graphTimeout+smtpLoginTimeout)
	defer cancel()
	res := b.GraphToken(a)
	if res == nil {
		return errUpstreamLost
	}
	var wait time.Duration
	var err error
	for attempt := 0; attempt < 2; attempt++ {
		began := b.opts.Now()
		tok, terr := res.Token(ctx)
		if terr != nil {
			return ss.graphRefused(loginError(a, terr), 0)
		}
		wait, err = b.graphSend(ctx, a, tok.AccessToken, msg)
		var f *diag.Failure
		if errors.As(err, &f) && f.Code == 401 && !res.Fresh(tok.AccessToken, began) {
			res.Invalidate(tok.AccessToken)
			continue
		}
		break
	}
	if err != nil {
		return ss.graphRefused(err, wait)
	}
	b.Record(a, SMTP, nil)
	return &smtp.SMTPError{Code: 250, EnhancedCode: smtp.EnhancedCode{2, 0, 0},
		Message: "Accepted by Microsoft Graph for delivery (the bridge sends " + diag.ReplyText(a.Email, 100) + "'s mail through Graph)"}
}

// graphRefused records a failed submission and words it: a refusal of the
// message itself keeps a 5xx, while throttling, a token that could not be
// had, Graph's server errors and a broken connection are 4xx, so the
// client keeps the message and sends it again. A broken connection may
// have left Graph with the message: sending it twice is the lesser harm.
func (ss *smtpSession) graphRefused(err error, wait time.Duration) *smtp.SMTPError {
	b, a := ss.s.b, ss.acct
	d := b.Record(a, SMTP, err)
	short := d.Short()
	var f *diag.Failure
	var te *tokens.Error
	switch {
	case errors.As(err, &te), errors.Is(err, tokens.ErrNeedsLogin):
		if OutcomeOf(err) == OutcomeNeedsLogin {
			return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0}, Message: diag.ReplyText(
				"Nothing was sent: the bridge needs a new sign-in for Microsoft Graph (`bridge login "+a.TokenAccount()+"`)", 200) + " -- " + short}
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 3},
			Message: "Nothing was sent: no Microsoft Graph token now; try again later -- " + short}
	case !errors.As(err, &f):
		b.log.Warn("Microsoft Graph could not be reached", "account", a.Email, "err", err)
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: "Connection to Microsoft Graph failed; the message was not accepted, please send it again -- " + short}
	case f.Code == 429 || f.Code == 503 && wait > 0:
		after := "later"
		if wait > 0 {
			after = "in " + wait.String()
		}
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 7, 0},
			Message: "Microsoft Graph is throttling this mailbox; nothing was sent, try again " + after + " -- " + short}
	case f.Code == 401 || f.Code >= 500 || f.Code == 408:
		return &smtp.SMTPError{Code: 451, EnhancedCode: smtp.EnhancedCode{4, 4, 2},
			Message: "Microsoft Graph did not take the message now; nothing was sent, try again later -- " + short}
	case f.Code == 413:
		return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4},
			Message: "Message too big for Microsoft Graph; nothing was sent -- " + short}
	}
	return &smtp.SMTPError{Code: 550, EnhancedCode: smtp.EnhancedCode{5, 7, 1},
		Message: diag.ReplyText(f.Text, 150) + " -- " + short}
}

// graphTooLarge refuses a message of size bytes (RFC 3463 5.3.4: too big
// for the system) and records why.
func (ss *smtpSession) graphTooLarge(size int64) error {
	d := ss.s.b.Record(ss.acct, SMTP, &diag.Failure{Proto: diag.ProtoGraph, Stage: diag.StageData, Code: 413,
		Text: fmt.Sprintf("a message of %d bytes or more is larger than the %d bytes Graph takes in one request", size, graphMaxMessage)})
	ss.s.log.Info("message refused: too large for Microsoft Graph", "account", ss.acct.Email, "bytes", size)
	return &smtp.SMTPError{Code: 552, EnhancedCode: smtp.EnhancedCode{5, 3, 4}, Message: fmt.Sprintf(
		"Message too big: the bridge sends this account's mail through Microsoft Graph, which takes at most %d bytes "+
			"(4 MB per request, base64-encoded); nothing was sent -- %s", graphMaxMessage, d.Short())}
}

// withBcc returns msg with a Bcc field naming the envelope recipients
// that its To, Cc and Bcc fields do not: Graph delivers to the recipients
// of those fields and keeps Bcc hidden from the others, so every envelope
// recipient gets the message and none is revealed. An existing Bcc field
// is extended rather than repeated (RFC 5322 section 3.6 allows one). The
// body and every other field stay byte for byte.
func withBcc(msg []byte, rcpts []string) []byte {
	end, nl := headerEnd(msg)
	m, err := mail.ReadMessage(bytes.NewReader(msg[:end]))
	known := map[string]bool{}
	if err == nil {
		for _, k := range []string{"To", "Cc", "Bcc"} {
			list, _ := m.Header.AddressList(k)
			for _, ad := range list {
				known[strings.ToLower(ad.Address)] = true
			}
		}
	}
	var missing []string
	for _, r := range rcpts {
		if k := strings.ToLower(r); !known[k] {
			known[k] = true
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return msg
	}
	start, stop, old := fieldSpan(msg[:end], "Bcc")
	value := strings.Join(missing, ", ")
	if old != "" {
		value = old + ", " + value
	}
	field := foldAddresses("Bcc: "+value, nl)
	out := make([]byte, 0, len(msg)+len(field))
	out = append(out, msg[:start]...)
	out = append(out, field...)
	return append(out, msg[stop:]...)
}

// headerEnd returns where msg's header section ends (the offset of the
// empty line, or len(msg) without one) and the line ending it uses.
func headerEnd(msg []byte) (int, string) {
	nl := "\r\n"
	if i := bytes.IndexByte(msg, '\n'); i >= 0 && (i == 0 || msg[i-1] != '\r') {
		nl = "\n"
	}
	off := 0
	for line := range bytes.Lines(msg) {
		if len(bytes.TrimRight(line, "\r\n")) == 0 {
			return off, nl
		}
		off += len(line)
	}
	return len(msg), nl
}

// fieldSpan finds the header field name (with its folded lines) in
// header: its byte span and its unfolded value; without one, the span is
// empty at the start of the header and the value "".
func fieldSpan(header []byte, name string) (start, stop int, value string) {
	off, in := 0, false
	var v strings.Builder
	for line := range bytes.Lines(header) {
		switch {
		case in && (line[0] == ' ' || line[0] == '\t'):
			v.WriteString(" " + strings.TrimSpace(string(line)))
			stop = off + len(line)
		case in:
			return start, stop, strings.TrimSpace(v.String())
		default:
			k, rest, ok := strings.Cut(string(line), ":")
			if ok && strings.EqualFold(strings.TrimSpace(k), name) {
				in, start, stop = true, off, off+len(line)
				v.WriteString(strings.TrimSpace(rest))
			}
		}
		off += len(line)
	}
	if in {
		return start, stop, strings.TrimSpace(v.String())
	}
	return 0, 0, ""
}

// foldAddresses writes field with line breaks after commas, keeping lines
// near 78 characters (RFC 5322 section 2.1.1), ended by nl.
func foldAddresses(field, nl string) []byte {
	var b strings.Builder
	line := 0
	for i, part := range strings.Split(field, ", ") {
		if i > 0 {
			if line+2+len(part) > 76 {
				b.WriteString("," + nl + " ")
				line = 1
			} else {
				b.WriteString(", ")
				line += 2
			}
		}
		b.WriteString(part)
		line += len(part)
	}
	b.WriteString(nl)
	return []byte(b.String())
}
