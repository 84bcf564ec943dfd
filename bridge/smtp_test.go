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

// send runs one transaction on c and returns the DATA error.
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

// lastSMTP returns the account's last SMTP diagnosis ID.
func (e *smtpEnv) lastSMTP(email string) string {
	for _, a := range e.B.Status().Accounts {
		if a.Email == email {
			return a.Last[SMTP].ID
		}
	}
	return ""
}

func TestSMTPAuthRefusalsExplained(t *testing.T) {
	cases := []struct {
		r        bridgetest.Refusal
		code     int
		enhanced smtp.EnhancedCode
		upstream string
		id       string
	}{
		{bridgetest.TenantDisabled, 535, smtp.EnhancedCode{5, 7, 139}, "disabled for the Tenant", "smtp-auth-disabled-tenant"},
		{bridgetest.MailboxDisabled, 535, smtp.EnhancedCode{5, 7, 139}, "disabled for the Mailbox", "smtp-auth-disabled-mailbox"},
		{bridgetest.AuthUnsuccessful, 535, smtp.EnhancedCode{5, 7, 3}, "Authentication unsuccessful", "smtp-auth-failed"},
		{bridgetest.SecurityDefaults, 535, smtp.EnhancedCode{5, 7, 139}, "security defaults", "smtp-security-defaults"},
	}
	e := newSMTPEnv(t, smtpEnvOptions{})
	for _, tt := range cases {
		e.fake.Refuse(tt.r)
		c := e.dial(false)
		se := smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))))
		if se.Code != tt.code || se.EnhancedCode != tt.enhanced {
			t.Errorf("%s: got %d %v", tt.id, se.Code, se.EnhancedCode)
		}
		upstreamText, ours, ok := strings.Cut(se.Message, " -- ")
		if !ok || !strings.Contains(upstreamText, tt.upstream) || !strings.Contains(ours, "bridge doctor") {
			t.Errorf("%s: reply text %q lacks the upstream words or our explanation", tt.id, se.Message)
		}
		if got := e.lastSMTP(smtpUser); got != tt.id {
			t.Errorf("%s: status says %q", tt.id, got)
		}
		c.Close()
	}
	// Once Microsoft lets it in again, the status clears.
	e.fake.Refuse(bridgetest.RefuseNone)
	e.login(smtpUser)
	if got := e.lastSMTP(smtpUser); got != "" {
		t.Errorf("status still says %q after a good login", got)
	}
}

func TestSMTPEnvelopeRefusalsExplained(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Fake: bridgetest.SMTPOptions{Refusal: bridgetest.SendAsDenied}})

	// A shared mailbox logs in upstream as its delegate; MAIL FROM stays
	// the shared address, and without Send As Exchange refuses at DATA.
	c := e.login(smtpShared)
	se := smtpErr(t, smtpSend(c, smtpShared, smtpMessage("sendas", "x\r\n")))
	if se.Code != 550 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 60}) || !strings.Contains(se.Message, "send as this sender -- ") {
		t.Errorf("send as: got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	if got := e.lastSMTP(smtpShared); got != "smtp-sendas-denied" {
		t.Errorf("status says %q", got)
	}
	auths := e.fake.Auths()
	if len(auths) != 1 || auths[0].User != smtpUser {
		t.Errorf("upstream logins %+v, want one as the delegate %s", auths, smtpUser)
	}
	// The delegate's own address is fine, on the same session.
	if err := smtpSend(c, smtpUser, smtpMessage("own", "x\r\n")); err != nil {
		t.Fatalf("own address: %v", err)
	}

	e.fake.Refuse(bridgetest.Concurrency)
	se = smtpErr(t, c.Mail(smtpUser, nil))
	if se.Code != 432 || se.EnhancedCode != (smtp.EnhancedCode{4, 3, 2}) || !strings.Contains(se.Message, "thread limit exceeded -- ") {
		t.Errorf("throttle: got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	if got := e.lastSMTP(smtpShared); got != "smtp-concurrency" {
		t.Errorf("status says %q", got)
	}
	if n := len(e.fake.Messages()); n != 1 {
		t.Errorf("%d messages upstream, want 1", n)
	}
}

// TestSMTPNothingAcknowledgedIsLost sends 200 messages while the upstream
// drops the connection mid-DATA at random: every message the client saw
// 250 for is upstream, and every other one got an SMTP error reply.
func TestSMTPNothingAcknowledgedIsLost(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Fake: bridgetest.SMTPOptions{Refusal: bridgetest.DropMidData, DropProbability: 0.3, Seed: 7}})
	c := e.login(smtpUser)
	start := time.Now()
	acked := map[string]bool{}
	failed := 0
	for i := 0; i < 200; i++ {
		id := fmt.Sprintf("msg-%03d", i)
		err := smtpSend(c, smtpUser, smtpMessage(id, strings.Repeat("line of text\r\n", 100)))
		if err == nil {
			acked[id] = true
			continue
		}
		se := smtpErr(t, err)
		if se.Code < 400 || se.Code >= 600 {
			t.Fatalf("%s: reply %d", id, se.Code)
		}
		failed++
		if time.Since(start) > 60*time.Second {
			t.Fatal("too slow")
		}
	}
	stored := map[string]int{}
	for _, m := range e.fake.Messages() {
		for _, l := range strings.Split(string(m.Data), "\r\n") {
			if id, ok := strings.CutPrefix(l, "Subject: "); ok {
				stored[id]++
			}
		}
	}
	for id := range acked {
		if stored[id] != 1 {
			t.Errorf("%s acknowledged but stored %d times", id, stored[id])
		}
	}
	for id := range stored {
		if !acked[id] {
			t.Errorf("%s stored but the client was told it failed", id)
		}
	}
	if failed == 0 || len(acked) == 0 {
		t.Errorf("acked %d, failed %d: the drops did not happen at random", len(acked), failed)
	}
	t.Logf("acked %d, failed %d, upstream connections %d", len(acked), failed, e.fake.Connections())
}

func TestSMTPRedialBetweenMessages(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	if err := smtpSend(c, smtpUser, smtpMessage("one", "x\r\n")); err != nil {
		t.Fatal(err)
	}
	e.fake.DropConnections()
	if !eventually(5*time.Second, func() bool { return e.fake.Active() == 0 }) {
		t.Fatal("fake kept its connections")
	}
	if err := smtpSend(c, smtpUser, smtpMessage("two", "x\r\n")); err != nil {
		t.Fatalf("after the upstream dropped: %v", err)
	}
	if n, l := len(e.fake.Messages()), e.fake.Logins(); n != 2 || l != 2 {
		t.Errorf("%d messages, %d upstream logins; want 2 and 2", n, l)
	}
}

func TestSMTPClientGoneMidData(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	w := e.wire()
	w.expect("EHLO client.example", "250 ")
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + e.password(smtpUser)))
	w.expect("AUTH PLAIN "+resp, "235 ")
	w.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	w.expect("RCPT TO:<"+smtpOther+">", "250 ")
	w.expect("DATA", "354 ")
	w.send("Subject: cut\r\n\r\nthe first half")
	w.c.Close()
	if !eventually(5*time.Second, func() bool { return e.fake.Active() == 0 }) {
		t.Error("the upstream connection stayed open")
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("a truncated message reached the upstream (%d stored)", n)
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
