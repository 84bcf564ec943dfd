package bridge

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

func smtpMessage(id string, body string) string {
	return "From: " + smtpUser + "\r\nTo: " + smtpOther + "\r\nSubject: " + id + "\r\n\r\n" + body
}

// smtpSend runs one transaction on c and returns the DATA error.

func smtpSend(c *smtp.Client, from, msg string) error {
	if err := c.Mail(from, nil); err != nil {
		return err
	}
	if err := c.Rcpt(smtpOther, nil); err != nil {
		return err
	}
	w, err := c.Data()
	if err != nil {
		return err
	}
	if _, err := io.WriteString(w, msg); err != nil {
		return err
	}
	return w.Close()
}

func TestSMTPAuthPlainSTARTTLS(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	plain, err := smtp.Dial(e.plain)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := plain.Extension("STARTTLS"); !ok {
		t.Error("STARTTLS not offered on the plain listener")
	}
	plain.Close()

	c := e.dial(false)
	for ext, want := range map[string]string{"SIZE": "157286400", "AUTH": "PLAIN LOGIN", "8BITMIME": "", "PIPELINING": "", "ENHANCEDSTATUSCODES": ""} {
		if ok, got := c.Extension(ext); !ok || got != want {
			t.Errorf("EHLO %s = %q, %v; want %q", ext, got, ok, want)
		}
	}
	if err := c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))); err != nil {
		t.Fatal(err)
	}
	msg := smtpMessage("plain", "hello\r\n")
	if err := smtpSend(c, smtpUser, msg); err != nil {
		t.Fatal(err)
	}
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.Messages()
	if len(msgs) != 1 || string(msgs[0].Data) != msg || msgs[0].AuthUser != smtpUser || msgs[0].From != smtpUser {
		t.Fatalf("upstream got %+v", msgs)
	}
	// The upstream login went over the wire in two steps.
	auths := e.fake.Auths()
	if len(auths) != 1 || auths[0].Mechanism != "XOAUTH2" || auths[0].InitialResponse || !auths[0].OK {
		t.Errorf("upstream AUTH attempts %+v, want one two-step XOAUTH2", auths)
	}
	st := e.B.Status()
	for _, a := range st.Accounts {
		if a.Email == smtpUser && a.LastOK[SMTP].IsZero() {
			t.Error("status has no SMTP success")
		}
	}
	if !eventually(5*time.Second, func() bool { return e.B.Status().Sessions[SMTP] == 0 }) {
		t.Errorf("sessions = %d after QUIT", e.B.Status().Sessions[SMTP])
	}
}

func TestSMTPAuthLoginBothForms(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	b64 := base64.StdEncoding.EncodeToString

	// Outlook's form: bare AUTH LOGIN, the name after "Username:".
	w := e.wire()
	w.expect("EHLO client.example", "250 ")
	w.expect("AUTH LOGIN", "334 "+b64([]byte("Username:")))
	w.expect(b64([]byte(smtpUser)), "334 "+b64([]byte("Password:")))
	w.expect(b64([]byte(e.password(smtpUser))), "235 ")
	w.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	w.expect("QUIT", "221 ")

	// The name as the initial response (go-sasl's LOGIN client).
	c := e.dial(true)
	if err := c.Auth(sasl.NewLoginClient(smtpUser, e.password(smtpUser))); err != nil {
		t.Fatal(err)
	}
	if err := smtpSend(c, smtpUser, smtpMessage("login", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Messages()); n != 1 {
		t.Errorf("%d messages upstream", n)
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.dial(true)
	if ok, _ := c.Extension("STARTTLS"); ok {
		t.Error("STARTTLS offered inside TLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))); err != nil {
		t.Fatal(err)
	}
	if err := smtpSend(c, smtpUser, smtpMessage("implicit", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	if n := len(e.fake.Messages()); n != 1 {
		t.Errorf("%d messages upstream", n)
	}
}

func TestSMTPLargeMessageLongLines(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	var b bytes.Buffer
	b.WriteString(smtpMessage("large", ""))
	line := strings.Repeat("0123456789", 500) + "\r\n" // 5,000 characters
	for i := 0; b.Len() < smtpLargeSize; i++ {
		if i%100 == 0 {
			b.WriteString(".a line that needs dot-stuffing\r\n")
		}
		b.WriteString(line)
	}
	if err := smtpSend(c, smtpUser, b.String()); err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.Messages()
	if len(msgs) != 1 || !bytes.Equal(msgs[0].Data, b.Bytes()) {
		t.Fatalf("the %d MB message did not arrive byte-identical", smtpLargeSize>>20)
	}
}

func TestSMTPManyMessagesWithRset(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	for i := 0; i < 20; i++ {
		if i%5 == 2 {
			// An abandoned transaction, then RSET.
			if err := c.Mail(smtpUser, nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Rcpt("abandoned@example.com", nil); err != nil {
				t.Fatal(err)
			}
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
		}
		if err := smtpSend(c, smtpUser, smtpMessage(fmt.Sprintf("m%02d", i), "body\r\n")); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	msgs := e.fake.Messages()
	if len(msgs) != 20 {
		t.Fatalf("%d messages upstream, want 20", len(msgs))
	}
	for i, m := range msgs {
		if !strings.Contains(string(m.Data), fmt.Sprintf("Subject: m%02d\r\n", i)) || len(m.To) != 1 || m.To[0] != smtpOther {
			t.Errorf("message %d: to %v, data %q", i, m.To, m.Data[:60])
		}
	}
	if n := e.fake.Connections(); n != 1 {
		t.Errorf("%d upstream connections for one session, want 1", n)
	}
}

func TestSMTPWrongPasswordDialsNothing(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.dial(false)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, "not-the-password")))
	if se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
		t.Errorf("got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	c2 := e.dial(false)
	se = smtpErr(t, c2.Auth(sasl.NewPlainClient("", "nobody@example.com", "x")))
	if se.Code != 535 {
		t.Errorf("unknown account: got %d", se.Code)
	}
	if n := e.fake.Connections(); n != 0 {
		t.Errorf("%d upstream connections after wrong passwords", n)
	}
}

func TestSMTPMailBeforeAuth(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.dial(false)
	se := smtpErr(t, c.Mail(smtpUser, nil))
	if se.Code != 530 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 0}) {
		t.Errorf("got %d %v", se.Code, se.EnhancedCode)
	}
	if n := e.fake.Connections(); n != 0 {
		t.Errorf("%d upstream connections", n)
	}
}

func TestSMTPUpstreamSessionLimit(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{SlotWait: 300 * time.Millisecond})
	var held []*smtp.Client
	for i := 0; i < 3; i++ {
		held = append(held, e.login(smtpUser))
	}
	// The shared mailbox uses alice's token too: it counts against her.
	c := e.dial(false)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpShared, e.password(smtpShared))))
	if se.Code != 421 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 2}) || !strings.Contains(se.Message, "3 SMTP sessions") {
		t.Errorf("4th session: got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	if err := c.Noop(); err == nil {
		t.Error("connection stayed open after 421")
	}
	// Another token account is not affected.
	e.login(smtpOther)

	// A 4th session that waits gets the slot a closing one frees.
	e.srv.slotWait.Store(int64(10 * time.Second))
	errc := make(chan error, 1)
	go func() {
		c, err := smtp.DialStartTLS(e.plain, e.clientTLS())
		if err != nil {
			errc <- err
			return
		}
		defer c.Close()
		errc <- c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser)))
	}()
	time.Sleep(200 * time.Millisecond)
	if err := held[0].Quit(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Errorf("waiting 4th session: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("waiting 4th session never finished")
	}
	if p := e.fake.PeakSessions(); p > 3 {
		t.Errorf("upstream saw %d concurrent sessions of one user", p)
	}
}

func TestSMTPFailedLoginsCloseTheConnection(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Front: func(o *FrontOptions) { o.MaxFailures = 2 }})
	c := e.dial(false)
	smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, "wrong-1")))
	if err := c.Noop(); err != nil {
		t.Fatalf("closed after one failure: %v", err)
	}
	smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, "wrong-2")))
	if err := c.Noop(); err == nil {
		t.Error("connection still open after MaxFailures wrong passwords")
	}
}

func TestSMTPPipelining(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	w := e.wire()
	w.expect("EHLO client.example", "250 ")
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + e.password(smtpUser)))
	w.expect("AUTH PLAIN "+resp, "235 ")
	// RFC 2920: the envelope in one write, replies in order.
	w.send("MAIL FROM:<" + smtpUser + ">\r\nRCPT TO:<" + smtpOther + ">\r\nRCPT TO:<" + smtpUser + ">\r\nDATA")
	for _, want := range []string{"250 ", "250 ", "250 ", "354 "} {
		if got := w.reply(); !strings.HasPrefix(got, want) {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	w.expect("Subject: pipelined\r\n\r\n..dot\r\n.", "250 ")
	w.expect("QUIT", "221 ")
	msgs := e.fake.Messages()
	if len(msgs) != 1 || len(msgs[0].To) != 2 || string(msgs[0].Data) != "Subject: pipelined\r\n\r\n.dot\r\n" {
		t.Errorf("upstream got %+v", msgs)
	}
}

// TestSMTPUpstreamReplies: the client sees the upstream's own replies to
// MAIL, RCPT and the end of DATA or BDAT LAST (code, enhanced code, text
// with the queue id), not go-smtp's, and each message gets one log line
// with the envelope's sender, recipient count, size and that reply.
func TestSMTPUpstreamReplies(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	var wireLog bytes.Buffer
	c.DebugWriter = &wireLog
	if err := c.Mail(smtpUser, nil); err != nil {
		t.Fatal(err)
	}
	for _, to := range []string{smtpOther, "carol@example.net"} {
		if err := c.Rcpt(to, nil); err != nil {
			t.Fatal(err)
		}
	}
	msg := smtpMessage("replies", "a body the log must not show\r\n")
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, msg)
	resp, err := w.CloseWithResponse()
	if err != nil {
		t.Fatal(err)
	}
	msgs := e.fake.Messages()
	if len(msgs) != 1 || msgs[0].QueueID == "" {
		t.Fatalf("upstream got %+v", msgs)
	}
	want := "2.0.0 OK <" + msgs[0].QueueID + "> [Hostname="
	if !strings.HasPrefix(resp.StatusText, want) {
		t.Errorf("final reply %q, want the upstream's %q...", resp.StatusText, want)
	}
	if got := wireLog.String(); strings.Contains(got, "OK: queued") {
		t.Errorf("the client saw go-smtp's own final text:\n%s", got)
	}

	// BDAT LAST (RFC 3030) ends with the upstream's reply too.
	resp64 := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + e.password(smtpUser)))
	ww := e.wire()
	ww.expect("EHLO client.example", "250 ")
	ww.expect("AUTH PLAIN "+resp64, "235 ")
	ww.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	ww.expect("RCPT TO:<"+smtpOther+">", "250 ")
	body := smtpMessage("chunked", "x\r\n")
	ww.send(fmt.Sprintf("BDAT %d LAST\r\n%s", len(body), strings.TrimSuffix(body, "\r\n")))
	last := ww.reply()
	msgs = e.fake.Messages()
	if len(msgs) != 2 || !strings.HasPrefix(last, "250 2.0.0 OK <"+msgs[1].QueueID+"> ") {
		t.Errorf("BDAT LAST answered %q; upstream has %+v", last, msgs)
	}
	ww.expect("QUIT", "221 ")

	logs := e.logs.String()
	var lines []string
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `msg="message relayed"`) {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 {
		t.Fatalf("%d \"message relayed\" log lines for two messages:\n%s", len(lines), logs)
	}
	for _, part := range []string{"account=" + smtpUser, "from=" + smtpUser, "rcpts=2",
		fmt.Sprintf("bytes=%d", len(msg)), `reply="250 2.0.0 OK <` + msgs[0].QueueID + `> [Hostname=`, "took="} {
		if !strings.Contains(lines[0], part) {
			t.Errorf("log line lacks %q: %s", part, lines[0])
		}
	}
	if !strings.Contains(lines[1], "rcpts=1") || !strings.Contains(lines[1], msgs[1].QueueID) {
		t.Errorf("BDAT log line: %s", lines[1])
	}
	for _, secret := range []string{"a body the log must not show", "carol@example.net", e.password(smtpUser)} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log shows %q", secret)
		}
	}
}

// TestSMTPRefusedMessageLogged: a message the upstream refuses at the end
// of DATA is logged once with its reply, and the client gets that reply.
func TestSMTPRefusedMessageLogged(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	e.fake.Refuse(bridgetest.SendAsDenied)
	c := e.login(smtpUser)
	se := smtpErr(t, smtpSend(c, smtpOther, smtpMessage("refused", "x\r\n")))
	if se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 60}) {
		t.Errorf("client got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	logs := e.logs.String()
	if n := strings.Count(logs, `msg="message refused by the upstream"`); n != 1 {
		t.Fatalf("%d refusal log lines:\n%s", n, logs)
	}
	if !strings.Contains(logs, `reply="550 5.7.60 SMTP; Client does not have permissions to send as this sender"`) {
		t.Errorf("the refusal's log line lacks the upstream's reply:\n%s", logs)
	}
}
