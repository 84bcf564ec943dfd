package bridgetest

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tlsutil"
)

// challengeCounter passes a SASL exchange through, counting the
// server's challenges.
type challengeCounter struct {
	sasl.Client
	n int
}

func (c *challengeCounter) Next(challenge []byte) ([]byte, error) {
	c.n++
	return c.Client.Next(challenge)
}

// smtpFixture starts an imitation with STARTTLS and returns it with a
// client TLS config that trusts it.
func smtpFixture(t *testing.T, o SMTPOptions) (*SMTP, *tls.Config) {
	t.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	if o.Validate == nil {
		o.Validate = func(user, token string) error {
			if token != "tok-"+user {
				return errors.New("bad token")
			}
			return nil
		}
	}
	s, err := NewSMTP(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1"}
}

func smtpDial(t *testing.T, s *SMTP, tc *tls.Config) *smtp.Client {
	t.Helper()
	c, err := smtp.DialStartTLS(s.Addr(), tc)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func smtpCode(t *testing.T, err error) (int, smtp.EnhancedCode, string) {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want an *smtp.SMTPError", err)
	}
	return se.Code, se.EnhancedCode, se.Message
}

func TestSMTPGreetingAndCapabilities(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{})
	conn, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(line, "220 "+smtpHost+" Microsoft ESMTP MAIL Service ready at ") {
		t.Errorf("greeting %q", line)
	}

	c, err := smtp.Dial(s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("AUTH offered before STARTTLS")
	}
	if ok, _ := c.Extension("STARTTLS"); !ok {
		t.Error("no STARTTLS")
	}
	c2 := smtpDial(t, s, tc)
	for ext, want := range map[string]string{"SIZE": "157286400", "AUTH": "LOGIN XOAUTH2", "PIPELINING": "", "8BITMIME": "", "ENHANCEDSTATUSCODES": "", "SMTPUTF8": ""} {
		ok, got := c2.Extension(ext)
		if !ok || got != want {
			t.Errorf("after STARTTLS: %s = %q, %v; want %q", ext, got, ok, want)
		}
	}
}

func TestSMTPSubmitBothAuthForms(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{})
	for i, client := range []func(user, token string) *xoauth2.Client{xoauth2.OneStep, xoauth2.TwoStep} {
		c := smtpDial(t, s, tc)
		if err := c.Auth(client("a@example.com", "tok-a@example.com")); err != nil {
			t.Fatalf("twoStep=%v: %v", i == 1, err)
		}
		msg := "Subject: hi\r\n\r\n.leading dot\r\n" + strings.Repeat("x", 5000) + "\r\n"
		if err := c.SendMail("a@example.com", []string{"b@example.com", "c@example.com"}, strings.NewReader(msg)); err != nil {
			t.Fatal(err)
		}
		if err := c.Quit(); err != nil {
			t.Fatal(err)
		}
		msgs := s.Messages()
		m := msgs[len(msgs)-1]
		if m.From != "a@example.com" || len(m.To) != 2 || m.AuthUser != "a@example.com" || string(m.Data) != msg {
			t.Errorf("stored %+v", m)
		}
	}
	auths := s.Auths()
	if len(auths) != 2 || !auths[0].InitialResponse || auths[1].InitialResponse || !auths[0].OK || !auths[1].OK {
		t.Errorf("auths %+v", auths)
	}
	if s.Logins() != 2 {
		t.Errorf("Logins = %d", s.Logins())
	}
}

func TestSMTPLongAuthLine(t *testing.T) {
	tok := strings.Repeat("t", 2500) // a JWT-sized token: a 3.4 KB AUTH line
	s, tc := smtpFixture(t, SMTPOptions{Validate: func(_, got string) error {
		if got != tok {
			return errors.New("bad token")
		}
		return nil
	}})
	c := smtpDial(t, s, tc)
	if err := c.Auth(xoauth2.OneStep("a@example.com", tok)); err != nil {
		t.Fatal(err)
	}
}

func TestSMTPRefusals(t *testing.T) {
	cases := []struct {
		r        Refusal
		code     int
		enhanced smtp.EnhancedCode
		text     string
	}{
		{TenantDisabled, 535, smtp.EnhancedCode{5, 7, 139}, "disabled for the Tenant"},
		{MailboxDisabled, 535, smtp.EnhancedCode{5, 7, 139}, "disabled for the Mailbox"},
		{AuthUnsuccessful, 535, smtp.EnhancedCode{5, 7, 3}, "Authentication unsuccessful [" + smtpHost + "]"},
		{SecurityDefaults, 535, smtp.EnhancedCode{5, 7, 139}, "security defaults policy"},
	}
	s, tc := smtpFixture(t, SMTPOptions{})
	for _, tt := range cases {
		s.Refuse(tt.r)
		c := smtpDial(t, s, tc)
		err := c.Auth(xoauth2.TwoStep("a@example.com", "tok-a@example.com"))
		code, enh, msg := smtpCode(t, err)
		if code != tt.code || enh != tt.enhanced || !strings.Contains(msg, tt.text) {
			t.Errorf("refusal %d: got %d %v %q", tt.r, code, enh, msg)
		}
	}
	if s.Logins() != 0 {
		t.Errorf("Logins = %d after refusals", s.Logins())
	}
}

func TestSMTPBadTokenAndBasicAuth(t *testing.T) {
	for _, challenge := range []bool{false, true} {
		s, tc := smtpFixture(t, SMTPOptions{ErrorChallenge: challenge})
		c := smtpDial(t, s, tc)
		cl := &challengeCounter{Client: xoauth2.OneStep("a@example.com", "wrong")}
		code, enh, _ := smtpCode(t, c.Auth(cl))
		if code != 535 || enh != (smtp.EnhancedCode{5, 7, 3}) || (cl.n > 0) != challenge {
			t.Errorf("challenge=%v: got %d %v, %d challenges", challenge, code, enh, cl.n)
		}
		code, enh, _ = smtpCode(t, c.Auth(sasl.NewLoginClient("a@example.com", "password")))
		if code != 535 || enh != (smtp.EnhancedCode{5, 7, 139}) {
			t.Errorf("LOGIN: got %d %v", code, enh)
		}
	}
}

func TestSMTPMailBeforeAuth(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{})
	c := smtpDial(t, s, tc)
	code, enh, _ := smtpCode(t, c.Mail("a@example.com", nil))
	if code != 530 || enh != (smtp.EnhancedCode{5, 7, 57}) {
		t.Errorf("got %d %v", code, enh)
	}
}

func TestSMTPSendAsAndConcurrencyRefusals(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{Refusal: SendAsDenied})
	c := smtpDial(t, s, tc)
	if err := c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")); err != nil {
		t.Fatal(err)
	}
	msg := "Subject: x\r\n\r\nbody\r\n"
	if err := c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader(msg)); err != nil {
		t.Fatalf("own address refused: %v", err)
	}
	code, enh, _ := smtpCode(t, c.SendMail("shared@example.com", []string{"b@example.com"}, strings.NewReader(msg)))
	if code != 550 || enh != (smtp.EnhancedCode{5, 7, 60}) {
		t.Errorf("send as: got %d %v", code, enh)
	}
	s.Refuse(Concurrency)
	code, enh, _ = smtpCode(t, c.Mail("a@example.com", nil))
	if code != 432 || enh != (smtp.EnhancedCode{4, 3, 2}) {
		t.Errorf("concurrency: got %d %v", code, enh)
	}
	if n := len(s.Messages()); n != 1 {
		t.Errorf("%d messages stored, want 1", n)
	}
}

func TestSMTPSessionLimit(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{})
	var clients []*smtp.Client
	for i := 0; i < 3; i++ {
		c := smtpDial(t, s, tc)
		if err := c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")); err != nil {
			t.Fatal(err)
		}
		clients = append(clients, c)
	}
	c := smtpDial(t, s, tc)
	code, enh, _ := smtpCode(t, c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")))
	if code != 432 || enh != (smtp.EnhancedCode{4, 3, 2}) {
		t.Errorf("4th session: got %d %v", code, enh)
	}
	// Another user is not limited by a@'s sessions.
	if err := c.Auth(xoauth2.OneStep("b@example.com", "tok-b@example.com")); err != nil {
		t.Errorf("other user: %v", err)
	}
	if err := clients[0].Quit(); err != nil {
		t.Fatal(err)
	}
	// The server notices the QUIT asynchronously; bounded wait.
	deadline := time.Now().Add(5 * time.Second)
	for {
		c5 := smtpDial(t, s, tc)
		err := c5.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("slot not freed after QUIT: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if s.PeakSessions() != 3 {
		t.Errorf("PeakSessions = %d", s.PeakSessions())
	}
}

func TestSMTPDropMidData(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{Refusal: DropMidData})
	c := smtpDial(t, s, tc)
	if err := c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")); err != nil {
		t.Fatal(err)
	}
	err := c.SendMail("a@example.com", []string{"b@example.com"}, bytes.NewReader(bytes.Repeat([]byte("line\r\n"), 1000)))
	if err == nil {
		t.Fatal("send succeeded through a dropped connection")
	}
	if n := len(s.Messages()); n != 0 {
		t.Errorf("%d messages stored", n)
	}

	// With a probability, some get through and some do not, repeatably.
	s.SetDropProbability(0.5)
	sent := 0
	for i := 0; i < 20; i++ {
		c := smtpDial(t, s, tc)
		if err := c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")); err != nil {
			t.Fatal(err)
		}
		if c.SendMail("a@example.com", []string{"b@example.com"}, strings.NewReader("Subject: x\r\n\r\nhi\r\n")) == nil {
			sent++
		}
		c.Close()
	}
	if sent == 0 || sent == 20 || len(s.Messages()) != sent {
		t.Errorf("sent %d of 20, stored %d", sent, len(s.Messages()))
	}
}

func TestSMTPCloseEndsSessions(t *testing.T) {
	s, tc := smtpFixture(t, SMTPOptions{})
	c := smtpDial(t, s, tc)
	if err := c.Auth(xoauth2.OneStep("a@example.com", "tok-a@example.com")); err != nil {
		t.Fatal(err)
	}
	if s.Active() != 1 {
		t.Errorf("Active = %d", s.Active())
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s.Active() != 0 {
		t.Errorf("Active = %d after Close", s.Active())
	}
	if err := c.Noop(); err == nil {
		t.Error("session survived Close")
	}
}
