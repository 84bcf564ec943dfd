package bridge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/graphtest"
)

// graphEnv is the SMTP environment with Exchange's SMTP AUTH switched off
// for the tenant, alice on smtp_via via, and an imitation of Graph.
type graphEnv struct {
	*smtpEnv
	graph *graphtest.Server
}

func newGraphEnv(t *testing.T, via string, consent bool) *graphEnv {
	t.Helper()
	e := newSMTPEnv(t, smtpEnvOptions{Fake: bridgetest.SMTPOptions{Refusal: bridgetest.TenantDisabled}})
	g := graphtest.New(graphtest.Options{Tokens: e.Tokens})
	t.Cleanup(g.Close)
	a := e.account(smtpUser)
	e.mu.Lock()
	a.SMTPVia, a.GraphURL = via, g.URL()
	accts := make([]*Account, 0, len(e.accounts))
	for _, x := range e.accounts {
		accts = append(accts, x)
	}
	e.mu.Unlock()
	e.B.SetAccounts(accts)
	if consent {
		e.Tokens.GrantConsent(smtpUser, a.GraphScopes()[:2]...)
		t.Cleanup(func() {
			// No Graph token in the log either.
			if tok, err := e.B.GraphToken(a).Token(context.Background()); err == nil {
				e.checkLogs(tok.AccessToken)
			}
		})
	}
	return &graphEnv{smtpEnv: e, graph: g}
}

// sendMail runs MAIL, RCPT for each of rcpts and DATA with msg on c,
// returning DATA's final reply or the first error.
func sendMail(c *smtp.Client, from string, rcpts []string, msg []byte) (*smtp.DataResponse, error) {
	if err := c.Mail(from, nil); err != nil {
		return nil, err
	}
	for _, r := range rcpts {
		if err := c.Rcpt(r, nil); err != nil {
			return nil, err
		}
	}
	w, err := c.Data()
	if err != nil {
		return nil, err
	}
	if _, err := w.Write(msg); err != nil {
		return nil, err
	}
	return w.CloseWithResponse()
}

const bccMessage = "From: Alice <alice@example.com>\r\nTo: Ann <ann@example.org>\r\nCc: carl@example.org\r\n" +
	"Subject: minutes\r\nMessage-ID: <m1@example.com>\r\n\r\nThe minutes.\r\n..leading dot\r\nBcc: in the body\r\n"

// With SMTP AUTH off for the tenant and smtp_via = "auto", a client's
// message reaches Graph once, for every envelope recipient, the Bcc
// recipient hidden from the others and the body unchanged; the client
// hears Graph's acceptance, and the account's status says why.
func TestSMTPAutoSendsThroughGraphWhenSMTPAuthIsOff(t *testing.T) {
	e := newGraphEnv(t, viaAuto, true)
	c := e.login(smtpUser)
	rcpts := []string{"ann@example.org", "carl@example.org", "boss@example.org"}
	resp, err := sendMail(c, smtpUser, rcpts, []byte(bccMessage))
	if err != nil {
		t.Fatalf("sending: %v", err)
	}
	if !strings.Contains(resp.StatusText, "Microsoft Graph") {
		t.Errorf("final reply %q does not say Graph took it", resp.StatusText)
	}
	sent := e.graph.Sent()
	if len(sent) != 1 {
		t.Fatalf("Graph got %d messages, want 1", len(sent))
	}
	m := sent[0]
	if !slices.Equal(m.Recipients, rcpts) || m.Path != "/v1.0/me/sendMail" {
		t.Errorf("Graph delivers to %v through %s, want %v through /me/sendMail", m.Recipients, m.Path, rcpts)
	}
	if d := string(m.Delivered); strings.Contains(d, "boss@") || !strings.Contains(d, "To: Ann <ann@example.org>\r\nCc: carl@example.org\r\n") {
		t.Errorf("what recipients see:\n%s", d)
	}
	_, body, _ := bytes.Cut(m.MIME, []byte("\r\n\r\n"))
	_, want, _ := strings.Cut(bccMessage, "\r\n\r\n")
	if string(body) != want {
		t.Errorf("body changed:\n%q\nwant\n%q", body, want)
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("the SMTP upstream got %d messages", n)
	}
	st := e.B.Status()
	var as AccountStatus
	for _, x := range st.Accounts {
		if x.Email == smtpUser {
			as = x
		}
	}
	if as.Graph == nil || as.Graph.Reason != "smtp-auth-disabled-tenant" || as.Graph.RetrySMTP.Sub(as.Graph.Since) != graphRetrySMTP {
		t.Errorf("status: %+v", as.Graph)
	}
	if len(as.Last) != 0 {
		t.Errorf("status keeps a failure: %v", as.Last)
	}

	// The next login goes to Graph at once, without an SMTP login.
	logins := len(e.fake.Auths())
	c2 := e.login(smtpUser)
	if _, err := sendMail(c2, smtpUser, []string{"ann@example.org"}, []byte(bccMessage)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Auths()); n != logins {
		t.Errorf("a login on Graph tried SMTP again (%d AUTHs, want %d)", n, logins)
	}

	// After graphRetrySMTP a login tries SMTP again; SMTP AUTH is back
	// on, so the message goes through SMTP and status forgets Graph.
	a := e.account(smtpUser)
	e.B.graph.mu.Lock()
	u := e.B.graph.m[a.Email]
	u.RetrySMTP = time.Now().Add(-time.Second)
	e.B.graph.m[a.Email] = u
	e.B.graph.mu.Unlock()
	e.fake.Refuse(bridgetest.RefuseNone)
	c3 := e.login(smtpUser)
	if _, err := sendMail(c3, smtpUser, []string{"ann@example.org"}, []byte(bccMessage)); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Messages()); n != 1 {
		t.Errorf("SMTP got %d messages after SMTP AUTH came back, want 1", n)
	}
	if _, ok := e.B.graphStatus(a); ok {
		t.Error("status still says Graph")
	}
}

// Messages beyond what one Graph request takes are refused with 552 5.3.4
// and the reason, and nothing is sent: at MAIL when the client declares
// the size, else at the end of DATA.
func TestSMTPGraphRefusesLargeMessages(t *testing.T) {
	e := newGraphEnv(t, viaGraph, true)
	big := []byte(bccMessage + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\r\n", 10<<20/66))
	c := e.login(smtpUser)
	_, err := sendMail(c, smtpUser, []string{"ann@example.org"}, big)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 552 || se.EnhancedCode != (smtp.EnhancedCode{5, 3, 4}) || !strings.Contains(se.Message, "Microsoft Graph") {
		t.Fatalf("10 MB message: %v", err)
	}
	for _, a := range e.B.Status().Accounts {
		if a.Email == smtpUser && a.Last[SMTP].ID != "graph-too-large" {
			t.Errorf("diagnosis %q, want graph-too-large", a.Last[SMTP].ID)
		}
	}
	err = c.Mail(smtpUser, &smtp.MailOptions{Size: int64(len(big))})
	if !errors.As(err, &se) || se.Code != 552 {
		t.Fatalf("MAIL with SIZE=%d: %v", len(big), err)
	}
	if n := e.graph.Requests(); n != 0 {
		t.Errorf("%d requests reached Graph", n)
	}
	// The session still works for a message that fits.
	if _, err := sendMail(c, smtpUser, []string{"ann@example.org"}, []byte(bccMessage)); err != nil {
		t.Fatalf("a small message after the refusals: %v", err)
	}
}

// A throttled submission is a 4xx with Graph's wait, nothing is lost:
// the client's second try arrives, once.
func TestSMTPGraphThrottlingIsTemporary(t *testing.T) {
	e := newGraphEnv(t, viaGraph, true)
	e.graph.FailNext(1, graphtest.Throttled(12))
	c := e.login(smtpUser)
	_, err := sendMail(c, smtpUser, []string{"ann@example.org"}, []byte(bccMessage))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 451 || !strings.Contains(se.Message, "try again in 12s") {
		t.Fatalf("throttled: %v", err)
	}
	if n := len(e.graph.Sent()); n != 0 {
		t.Fatalf("Graph recorded %d messages while throttling", n)
	}
	if _, err := sendMail(c, smtpUser, []string{"ann@example.org"}, []byte(bccMessage)); err != nil {
		t.Fatalf("the retry: %v", err)
	}
	if n := len(e.graph.Sent()); n != 1 {
		t.Errorf("Graph recorded %d messages, want 1", n)
	}
}

// Without consent for Mail.Send the AUTH reply and the account's
// diagnosis name the fix.
func TestSMTPGraphConsentMissing(t *testing.T) {
	e := newGraphEnv(t, viaGraph, false)
	c := e.dial(false)
	err := c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser)))
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 535 || !strings.Contains(se.Message, "bridge login "+smtpUser) {
		t.Fatalf("AUTH without consent: %v", err)
	}
	d := e.B.Status().Accounts
	var last string
	var fix string
	for _, a := range d {
		if a.Email == smtpUser {
			last, fix = a.Last[SMTP].ID, a.Last[SMTP].Fix
		}
	}
	if last != "graph-consent-missing" || !strings.Contains(fix, "Mail.Send") || !strings.Contains(fix, "bridge login "+smtpUser) {
		t.Errorf("diagnosis %q: %s", last, fix)
	}
	if st := e.B.Source(e.account(smtpUser)).State(); st.NeedsLogin != "" {
		t.Errorf("the missing Graph consent marked the account: %s", st.NeedsLogin)
	}
}

// A shared mailbox sends through /users/{mailbox}/sendMail with the
// delegate's token; Graph's ErrorSendAsDenied is a 5xx with its fix.
func TestSMTPGraphSharedMailbox(t *testing.T) {
	e := newGraphEnv(t, viaGraph, true)
	sh := e.account(smtpShared)
	e.mu.Lock()
	sh.SMTPVia, sh.GraphURL = viaGraph, e.graph.URL()
	accts := make([]*Account, 0, len(e.accounts))
	for _, x := range e.accounts {
		accts = append(accts, x)
	}
	e.mu.Unlock()
	e.B.SetAccounts(accts)
	e.Tokens.GrantConsent(smtpUser, sh.GraphScopes()[:3]...)
	msg := []byte(strings.Replace(bccMessage, "Alice <alice@example.com>", "Sales <shared@example.com>", 1))

	c := e.login(smtpShared)
	_, err := sendMail(c, smtpShared, []string{"ann@example.org"}, msg)
	var se *smtp.SMTPError
	if !errors.As(err, &se) || se.Code != 550 || !strings.Contains(se.Message, "ErrorSendAsDenied") {
		t.Fatalf("without Send As: %v", err)
	}
	e.graph.AllowSendAs(smtpUser, smtpShared)
	if _, err := sendMail(c, smtpShared, []string{"ann@example.org"}, msg); err != nil {
		t.Fatalf("with Send As: %v", err)
	}
	if s := e.graph.Sent(); len(s) != 1 || s[0].Path != "/v1.0/users/"+smtpShared+"/sendMail" || s[0].User != smtpUser {
		t.Errorf("sent: %+v", s)
	}
}

func TestWithBcc(t *testing.T) {
	for _, c := range []struct {
		name, msg string
		rcpts     []string
		want      string
	}{
		{"all named", "To: a@x\r\nCc: B@x\r\n\r\nbody\r\n", []string{"a@x", "b@x"}, "To: a@x\r\nCc: B@x\r\n\r\nbody\r\n"},
		{"one hidden", "To: a@x\r\n\r\nbody\r\n", []string{"a@x", "h@x"}, "Bcc: h@x\r\nTo: a@x\r\n\r\nbody\r\n"},
		{"bare LF", "To: a@x\n\nbody\n", []string{"h@x"}, "Bcc: h@x\nTo: a@x\n\nbody\n"},
		{"existing Bcc extended", "To: a@x\r\nBcc: c@x,\r\n d@x\r\nSubject: s\r\n\r\nBcc: body\r\n", []string{"a@x", "c@x", "e@x"},
			"To: a@x\r\nBcc: c@x, d@x, e@x\r\nSubject: s\r\n\r\nBcc: body\r\n"},
		{"list expansion", "To: team@x\r\n\r\nb", []string{"p1@x", "p2@x"}, "Bcc: p1@x, p2@x\r\nTo: team@x\r\n\r\nb"},
	} {
		if got := string(withBcc([]byte(c.msg), c.rcpts)); got != c.want {
			t.Errorf("%s:\n%q\nwant\n%q", c.name, got, c.want)
		}
	}
	var many []string
	for i := range 40 {
		many = append(many, fmt.Sprintf("recipient%02d@example.org", i))
	}
	out := string(withBcc([]byte("To: a@x\r\n\r\nb"), many))
	for l := range strings.Lines(out) {
		if len(l) > 80 {
			t.Errorf("line of %d bytes: %q", len(l), l)
		}
	}
	if !strings.Contains(out, "recipient39@example.org\r\nTo: a@x") {
		t.Errorf("folded field:\n%s", out)
	}
}
