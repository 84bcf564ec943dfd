package bridge

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// expiredSignIn is the identity platform's answer to a refresh token unused
// for 90 days: only `bridge login` helps.
var expiredSignIn = tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity.")

// A login name with a leading space is trimmed to find the account; the
// refusal must name that account, not leave a placeholder.

func TestLeadingSpaceLoginIMAP(t *testing.T) {
	h := newHarness(t)
	h.Tokens.FailNext(1, expiredSignIn)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send(`a1 LOGIN " ` + alice + `" ` + h.password(alice) + "\r\n")
	w.expect("* OK [ALERT] The bridge must sign in to Microsoft again for " + alice + ": run `bridge login " + alice + "` -- The sign-in expired after a long time without use")
	w.expect("a1 NO [AUTHENTICATIONFAILED] Sign-in needed: run `bridge login " + alice + "`")
	if id := h.lastIMAP(alice); id != "token-expired-inactive" {
		t.Errorf("recorded diagnosis %q, want token-expired-inactive", id)
	}
	h.checkLogs()
}

func TestLeadingSpaceLoginPOP3(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.Tokens.FailNext(1, expiredSignIn)
	c := env.dial(env.plain, false)
	c.ok("USER  " + pop3TestUser) // the argument is " user@example.com"
	r := c.cmd("PASS " + pop3TestPassword)
	want := "-ERR [AUTH] " + pop3TestUser + " must sign in again: run `bridge login " + pop3TestUser + "` -- The sign-in expired after a long time without use"
	if r != want {
		t.Errorf("reply %q, want %q", r, want)
	}
	if d := pop3AccountStatus(t, env.B, pop3TestUser).Last[POP3]; d.ID != "token-expired-inactive" {
		t.Errorf("recorded diagnosis %q, want token-expired-inactive", d.ID)
	}
}

func TestLeadingSpaceLoginSMTP(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	e.Tokens.FailNext(1, expiredSignIn)
	c := e.dial(false)
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", " "+smtpOther, e.password(smtpOther))))
	if se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) {
		t.Errorf("reply %d %v %q, want 535 5.7.8: a sign-in is needed, nothing temporary", se.Code, se.EnhancedCode, se.Message)
	}
	if !strings.Contains(se.Message, "run `bridge login "+smtpOther+"`") || strings.Contains(se.Message, "EMAIL") {
		t.Errorf("reply %q does not name `bridge login %s`", se.Message, smtpOther)
	}
	if id := e.lastSMTP(smtpOther); id != "token-expired-inactive" {
		t.Errorf("recorded diagnosis %q, want token-expired-inactive", id)
	}
	if n := e.fake.Connections(); n != 0 {
		t.Errorf("%d upstream connections without a token", n)
	}
}

// TestLoginErrorAccount checks what Login's errors carry: the account once
// the local password was accepted, none before.
func TestLoginErrorAccount(t *testing.T) {
	h := newHarness(t)
	ctx := context.Background()
	var le *LoginError

	_, err := h.B.Login(ctx, IMAP, " "+alice, "wrong", nil, "")
	if !errors.As(err, &le) || le.Account != nil || !errors.Is(err, ErrAuthFailed) {
		t.Errorf("wrong password: %v (%#v), want a *LoginError without an account", err, le)
	}

	h.Tokens.FailNext(1, expiredSignIn)
	_, err = h.B.Login(ctx, IMAP, " "+strings.ToUpper(alice), h.password(alice), nil, "")
	if !errors.As(err, &le) || le.Account != h.account(alice) {
		t.Fatalf("refused refresh: %v, want a *LoginError for %s", err, alice)
	}
	if OutcomeOf(err) != OutcomeNeedsLogin {
		t.Errorf("outcome %v, want OutcomeNeedsLogin", OutcomeOf(err))
	}
	if d := h.lastIMAP(alice); d != "" {
		t.Errorf("Login recorded %q itself; recording is Refuse's", d)
	}
}

// tickingClock returns a clock that moves one second on every reading, so
// two classifications of one failure could not carry the same time.
func tickingClock() func() time.Time {
	var mu sync.Mutex
	t := time.Date(2025, 6, 1, 9, 0, 0, 0, time.UTC)
	return func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		t = t.Add(time.Second)
		return t
	}
}

// TestRefuseClassifiesOnce checks that the client's words, the account's
// status and the announced event come from one classification, stamped by
// the bridge's clock.
func TestRefuseClassifiesOnce(t *testing.T) {
	st, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	a := &Account{Email: "a@example.com", Mailbox: "a@example.com", Provider: tokens.Microsoft("organizations"), Tenant: "organizations", ClientID: "c"}
	var mu sync.Mutex
	var events []Event
	b, err := New(Options{Accounts: []*Account{a}, Store: st, Now: tickingClock(), OnEvent: func(ev Event) {
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}})
	if err != nil {
		t.Fatal(err)
	}
	last := func(p Proto) diag.Diagnosis { return b.Status().Accounts[0].Last[p] }

	cases := []struct {
		name    string
		p       Proto
		err     error
		outcome Outcome
		id      string
	}{
		{"upstream refusal", SMTP, &LoginError{Account: a, Err: smtpOff}, OutcomeRefused, "smtp-auth-disabled-tenant"},
		{"sign-in needed", IMAP, &LoginError{Account: a, Err: tokens.ErrNeedsLogin}, OutcomeNeedsLogin, "token-needs-login"},
		{"unreachable", POP3, &LoginError{Account: a, Err: &diag.Failure{Proto: POP3, Stage: diag.StageDial, Text: "127.0.0.1:1", Err: errors.New("connection refused")}},
			OutcomeUnavailable, "upstream-unreachable"},
	}
	for i, c := range cases {
		r := b.Refuse(c.p, c.err)
		if r.Outcome != c.outcome || r.Account != a || r.Diagnosis.ID != c.id {
			t.Errorf("%s: outcome %v, account %v, diagnosis %q; want %v, %s, %q", c.name, r.Outcome, r.Account, r.Diagnosis.ID, c.outcome, a.Email, c.id)
			continue
		}
		if r.Diagnosis.At.IsZero() {
			t.Errorf("%s: the diagnosis has no time", c.name)
		}
		if got := last(c.p); got != r.Diagnosis {
			t.Errorf("%s: status holds %+v, the client was told %+v", c.name, got, r.Diagnosis)
		}
		mu.Lock()
		n := len(events)
		var ev Event
		if n > 0 {
			ev = events[n-1]
		}
		mu.Unlock()
		if n != i+1 || ev.Diagnosis != r.Diagnosis || ev.Proto != c.p {
			t.Errorf("%s: %d events, last %+v; want %d, the last with the client's diagnosis %+v", c.name, n, ev, i+1, r.Diagnosis)
		}
	}
	if r := b.Refuse(SMTP, smtpFailure(diag.StageAuth, &smtp.SMTPError{Code: 535, Message: "x"})); r.Failure == nil || r.Account != nil {
		t.Errorf("a failure without an account: %+v, want its Failure and no account", r)
	}

	// A wrong local password is the client's mistake: nothing to explain,
	// record or announce.
	mu.Lock()
	before := len(events)
	mu.Unlock()
	r := b.Refuse(IMAP, &LoginError{Err: ErrAuthFailed})
	if r.Outcome != OutcomeBadPassword || r.Account != nil || r.Diagnosis.ID != "" {
		t.Errorf("wrong password: %+v", r)
	}
	mu.Lock()
	after := len(events)
	mu.Unlock()
	if after != before || last(IMAP).ID != "token-needs-login" {
		t.Errorf("a wrong password changed the status or was announced")
	}
}

// TestIMAPRefusalIsTheRecordedDiagnosis checks end to end that the NO a
// client reads carries the diagnosis the status holds.
func TestIMAPRefusalIsTheRecordedDiagnosis(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.Disabled)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\n")
	reply := w.expectPrefix("a1 NO [CONTACTADMIN] ")
	d := h.B.Status().Accounts[0].Last[IMAP]
	if d.ID == "" || !strings.Contains(reply, d.Short()) {
		t.Errorf("reply %q does not carry the recorded diagnosis %q", reply, d.Short())
	}
}

// TestBadPasswordSaysWhatIsWanted: a wrong password gets the same words on
// IMAP, POP3 and SMTP: the bridge's local password is wanted, and
// `bridge password EMAIL` prints it.
func TestBadPasswordSaysWhatIsWanted(t *testing.T) {
	for _, want := range []string{"the bridge's local password", "not the Microsoft one", "`bridge password EMAIL` prints it"} {
		if !strings.Contains(badPasswordText, want) {
			t.Fatalf("%q does not say %q", badPasswordText, want)
		}
	}
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + alice + " wrong\r\n")
	w.expect("a1 NO [AUTHENTICATIONFAILED] " + badPasswordText)

	env := newPOP3Env(t, nil)
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	if r := c.cmd("PASS wrong"); r != "-ERR [AUTH] "+badPasswordText {
		t.Errorf("POP3 reply %q", r)
	}

	e := newSMTPEnv(t, smtpEnvOptions{})
	se := smtpErr(t, e.dial(false).Auth(sasl.NewPlainClient("", smtpUser, "wrong")))
	if se.Code != 535 || se.EnhancedCode != (smtp.EnhancedCode{5, 7, 8}) || se.Message != badPasswordText {
		t.Errorf("SMTP reply %d %v %q", se.Code, se.EnhancedCode, se.Message)
	}
}
