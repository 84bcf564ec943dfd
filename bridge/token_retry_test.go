package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tokens"
)

const (
	retriedOK    = "token refused; refreshed and retried: ok"
	retriedAgain = "token refused; refreshed and retried: refused again"
)

// imapLogin logs in to the bridge at addr as alice and returns the
// error, closing the session afterwards.
func (h *harness) imapLogin(addr string) error {
	h.t.Helper()
	c := h.dialIMAP(addr, "plain", nil)
	defer c.Close()
	return c.Login(alice, h.password(alice)).Wait()
}

// TestIMAPTokenInvalidatedIsRefreshed: the identity platform ends the
// access tokens before their expiry (a password change, Continuous Access
// Evaluation). The next login presents the cached token, is refused,
// refreshes once and logs in with the new token; the status shows no
// diagnosis and the log says what happened.
func TestIMAPTokenInvalidatedIsRefreshed(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("first login: %v", err)
	}
	if n := h.Tokens.InvalidateAccess(alice); n == 0 {
		t.Fatal("no access token invalidated")
	}
	refreshes := h.Tokens.RefreshRequests()
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("login after the platform ended the token: %v", err)
	}
	if n := h.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if id := h.lastIMAP(alice); id != "" {
		t.Errorf("status shows diagnosis %q for a token that was only stale", id)
	}
	if logs := h.logs.String(); !strings.Contains(logs, retriedOK) {
		t.Errorf("the log does not say %q:\n%s", retriedOK, logs)
	}
	h.checkLogs()
}

// TestIMAPSwitchedOffAfterRetry: with IMAP really switched off, a login
// with a cached token refreshes and retries once, and the refusal of the
// fresh token is diagnosed as the IMAP switch. The next login, with that
// token, is refused without another refresh.
func TestIMAPSwitchedOffAfterRetry(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("first login: %v", err)
	}
	h.IMAP.SetMode(bridgetest.Disabled)
	refreshes := h.Tokens.RefreshRequests()
	err := h.imapLogin(addr)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeContactAdmin {
		t.Fatalf("login with IMAP off: %v, want NO [CONTACTADMIN]", err)
	}
	if n := h.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if id := h.lastIMAP(alice); id != "imap-auth-failed" {
		t.Errorf("diagnosis %q, want imap-auth-failed", id)
	}
	if logs := h.logs.String(); !strings.Contains(logs, retriedAgain) {
		t.Errorf("the log does not say %q", retriedAgain)
	}
	if err := h.imapLogin(addr); err == nil {
		t.Fatal("login succeeded with IMAP off")
	}
	if n := h.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes after a second login, want still 1", n)
	}
	// Switched on again: the same token works and the status clears.
	h.IMAP.SetMode(bridgetest.Normal)
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("login with IMAP on again: %v", err)
	}
	if id := h.lastIMAP(alice); id != "" {
		t.Errorf("diagnosis %q after a good login", id)
	}
	if n := h.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes after IMAP came back, want still 1", n)
	}
	h.checkLogs()
}

// TestIMAPSessionsRevokedThenSignIn: every token of the user is revoked.
// The next login is refused with "sign-in needed", not a switch; after a
// new sign-in is stored and the bridge reloads (what `bridge login` asks
// of a running server), the next login works with the new sign-in's
// token, without a restart.
func TestIMAPSessionsRevokedThenSignIn(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("first login: %v", err)
	}
	src := h.B.Source(h.account(alice))
	old, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	h.Tokens.RevokeSessions(alice)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\n")
	w.expectPrefix("* OK [ALERT] ")
	w.expect("a1 NO [AUTHENTICATIONFAILED] Sign-in needed: run `bridge login " + alice + "`")
	st := h.B.Status().Accounts[0]
	if st.Token.NeedsLogin == "" || st.Last[IMAP].ID == "imap-auth-failed" {
		t.Errorf("status: needs login %q, diagnosis %q; want a sign-in needed and no IMAP switch", st.Token.NeedsLogin, st.Last[IMAP].ID)
	}

	_, rt, _ := h.Tokens.Issue(alice)
	err = tokens.Update(h.Store, alice, func(e *tokens.Entry) error {
		e.RefreshToken, e.NeedsLogin, e.Updated = rt, "", time.Now()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	h.B.Reload()
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("login after the new sign-in: %v", err)
	}
	neu, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if neu.AccessToken == old.AccessToken {
		t.Error("the revoked access token is still in use")
	}
	if err := h.Tokens.Validate(alice, neu.AccessToken); err != nil {
		t.Errorf("the token in use after the new sign-in: %v", err)
	}
	if st := h.B.Status().Accounts[0]; st.Token.NeedsLogin != "" || st.Last[IMAP].ID != "" {
		t.Errorf("status after the new sign-in: needs login %q, diagnosis %q", st.Token.NeedsLogin, st.Last[IMAP].ID)
	}
	h.checkLogs(old.AccessToken, neu.AccessToken)
}

// TestPOP3TokenInvalidatedIsRefreshed is the POP3 case of
// TestIMAPTokenInvalidatedIsRefreshed; with POP switched off the retry
// happens once and the diagnosis is the POP switch.
func TestPOP3TokenInvalidatedIsRefreshed(t *testing.T) {
	env := newPOP3Env(t, nil)
	login := func() string {
		c := env.dial(env.plain, false)
		defer c.c.Close()
		c.ok("USER " + pop3TestUser)
		return c.cmd("PASS " + pop3TestPassword)
	}
	if r := login(); r != pop3LoggedIn {
		t.Fatalf("first login: %q", r)
	}
	env.Tokens.InvalidateAccess(pop3TestUser)
	refreshes := env.Tokens.RefreshRequests()
	if r := login(); r != pop3LoggedIn {
		t.Fatalf("login after the platform ended the token: %q", r)
	}
	if n := env.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if d, ok := pop3AccountStatus(t, env.B, pop3TestUser).Last[POP3]; ok {
		t.Errorf("status shows diagnosis %q for a token that was only stale", d.ID)
	}
	if !strings.Contains(env.logs.String(), retriedOK) {
		t.Errorf("the log does not say %q", retriedOK)
	}

	// Now POP really is off: one more refresh, then the POP switch.
	env.Tokens.InvalidateAccess(pop3TestUser)
	env.up.SetMode(bridgetest.Disabled)
	refreshes = env.Tokens.RefreshRequests()
	if r := login(); !strings.HasPrefix(r, "-ERR [AUTH] ") {
		t.Fatalf("login with POP off: %q", r)
	}
	if n := env.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes with POP off, want 1", n)
	}
	if id := pop3AccountStatus(t, env.B, pop3TestUser).Last[POP3].ID; id != "pop-auth-failed" {
		t.Errorf("diagnosis %q, want pop-auth-failed", id)
	}
}

// TestSMTPTokenInvalidatedIsRefreshed: the SMTP login, and the upstream
// session redialled between two messages, each refresh once when the
// platform ended the cached token, and no diagnosis is recorded.
func TestSMTPTokenInvalidatedIsRefreshed(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	c := e.login(smtpUser)
	if err := c.Quit(); err != nil {
		t.Fatal(err)
	}
	e.Tokens.InvalidateAccess(smtpUser)
	refreshes := e.Tokens.RefreshRequests()
	c = e.login(smtpUser)
	if n := e.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes at AUTH, want 1", n)
	}
	if err := smtpSend(c, smtpUser, smtpMessage("one", "x\r\n")); err != nil {
		t.Fatal(err)
	}

	// Between two messages the upstream drops and the platform ends the
	// token again: the redial refreshes once and the message goes out.
	e.fake.DropConnections()
	if !eventually(5*time.Second, func() bool { return e.fake.Active() == 0 }) {
		t.Fatal("fake kept its connections")
	}
	e.Tokens.InvalidateAccess(smtpUser)
	refreshes = e.Tokens.RefreshRequests()
	if err := smtpSend(c, smtpUser, smtpMessage("two", "x\r\n")); err != nil {
		t.Fatalf("after the upstream dropped and the token ended: %v", err)
	}
	if n := e.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes at the redial, want 1", n)
	}
	if n := len(e.fake.Messages()); n != 2 {
		t.Errorf("%d messages delivered, want 2", n)
	}
	if id := e.lastSMTP(smtpUser); id != "" {
		t.Errorf("status shows diagnosis %q for a token that was only stale", id)
	}
	if n := strings.Count(e.logs.String(), retriedOK); n != 2 {
		t.Errorf("the log says %q %d times, want 2", retriedOK, n)
	}
}

// TestSMTPSwitchedOffAfterRetry: SMTP AUTH switched off for the mailbox;
// a login with a cached token refreshes and retries once, then gets the
// mailbox switch's diagnosis.
func TestSMTPSwitchedOffAfterRetry(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	if err := e.login(smtpUser).Quit(); err != nil {
		t.Fatal(err)
	}
	e.fake.Refuse(bridgetest.MailboxDisabled)
	refreshes := e.Tokens.RefreshRequests()
	c := e.dial(false)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))))
	if se.Code != 535 {
		t.Errorf("reply %d %q, want 535", se.Code, se.Message)
	}
	if n := e.Tokens.RefreshRequests() - refreshes; n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
	if id := e.lastSMTP(smtpUser); id != "smtp-auth-disabled-mailbox" {
		t.Errorf("diagnosis %q, want smtp-auth-disabled-mailbox", id)
	}
}
