package bridge

import (
	"context"
	"encoding/base64"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

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

func TestSMTPTokenAndNetworkFailures(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})

	// bob's refresh token was revoked: only `bridge login` helps.
	e.Tokens.RevokeRefresh(e.Tokens.LatestRefresh(smtpOther))
	c := e.dial(false)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpOther, e.password(smtpOther))))
	if se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) || !strings.Contains(se.Message, "bridge login "+smtpOther) {
		t.Errorf("needs login: got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	if n := e.fake.Connections(); n != 0 {
		t.Errorf("%d upstream connections without a token", n)
	}

	// alice's server is a closed port: a temporary failure.
	dead := e.listen()
	addr := dead.Addr().String()
	dead.Close()
	e.account(smtpUser).Provider.SMTP = addr
	c = e.dial(false)
	se = smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))))
	if se.Code != 454 || se.EnhancedCode != (smtp.EnhancedCode{4, 7, 0}) || !strings.Contains(se.Message, "bridge doctor") {
		t.Errorf("unreachable: got %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
	if e.lastSMTP(smtpUser) == "" {
		t.Error("the unreachable server is not in the status")
	}
}

func TestSMTPShutdownClosesBothLegs(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	if e.fake.Active() != 1 {
		t.Fatalf("fake has %d connections", e.fake.Active())
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); err == nil {
		t.Error("Shutdown with an idle session open returned nil before its deadline")
	}
	if !eventually(5*time.Second, func() bool { return e.fake.Active() == 0 }) {
		t.Error("upstream connection outlived Shutdown")
	}
	if err := c.Noop(); err == nil {
		t.Error("client connection outlived Shutdown")
	}
	if _, err := smtp.Dial(e.plain); err == nil {
		t.Error("still accepting after Shutdown")
	}
}
