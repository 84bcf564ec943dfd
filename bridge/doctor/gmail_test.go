package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	gmailUser   = "ann@gmail.com"
	gmailClient = "123456789012-abc.apps.googleusercontent.com"
	gmailSecret = "GOCSPX-doctor"
)

// gmailWorld is a Gmail account in front of the imitations of Google's
// identity platform and Gmail's IMAP, POP3 and SMTP (implicit TLS) servers.
type gmailWorld struct {
	tokens *tokenstest.Server
	imap   *bridgetest.IMAP
	opts   Options
	rt     string
}

func newGmailWorld(t *testing.T) *gmailWorld {
	t.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	up := &tls.Config{Certificates: []tls.Certificate{cert}}
	w := &gmailWorld{tokens: tokenstest.New(tokenstest.Options{Google: true, ClientID: gmailClient, ClientSecret: gmailSecret})}
	t.Cleanup(w.tokens.Close)
	w.imap, err = bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: w.tokens.Validate, TLS: up, Service: bridgetest.Gmail, Users: []string{gmailUser}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.imap.Close() })
	pop, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: w.tokens.Validate, TLS: up, Service: bridgetest.Gmail})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pop.Close() })
	smtps, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: w.tokens.Validate, TLS: up, Service: bridgetest.Gmail, ImplicitTLS: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { smtps.Close() })
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = ""
pop3 = %q
smtp = %q
imaps = %q

[[account]]
email = %q
provider = "gmail"
client_id = %q
client_secret = %q
auth_url = %q
token_url = %q
imap = %q
pop3 = %q
smtp = %q
smtp_tls = "implicit"
`, freeAddr(t), freeAddr(t), freeAddr(t), gmailUser, gmailClient, gmailSecret,
		w.tokens.AuthURL(""), w.tokens.TokenURL(""), w.imap.Addr(), pop.Addr(), smtps.Addr()))
	_, w.rt, _ = w.tokens.Issue(gmailUser)
	st := &memStore{m: map[string]tokens.Entry{gmailUser: {RefreshToken: w.rt, Password: "local-password-123456"}}}
	w.opts = Options{Config: cfg, Store: st, Roots: ca.Pool, Timeout: 5 * time.Second}
	return w
}

func (w *gmailWorld) run(t *testing.T) []Step {
	t.Helper()
	rep := Run(context.Background(), w.opts)
	if len(rep.Accounts) != 1 {
		t.Fatalf("%d accounts in the report", len(rep.Accounts))
	}
	return rep.Accounts[0].Steps
}

// TestGmailDoctor: every step passes for a healthy Gmail account, SMTP
// over implicit TLS included.
func TestGmailDoctor(t *testing.T) {
	w := newGmailWorld(t)
	steps := w.run(t)
	for _, name := range []string{"refresh", "access-token", "imap-login", "imap-mailbox", "pop3-login", "smtp-tls", "smtp-greeting", "smtp-login"} {
		if s := stepOf(t, steps, name); s.Status != Pass {
			t.Errorf("%s: %s %q %+v", name, s.Status, s.Detail, s.Diagnosis)
		}
	}
	if s := stepOf(t, steps, "access-token"); strings.Contains(s.Detail, "Microsoft") {
		t.Errorf("access-token: %q speaks of Microsoft", s.Detail)
	}
	if s := stepOf(t, steps, "smtp-tls"); !strings.Contains(s.Title, "implicit TLS") {
		t.Errorf("smtp-tls title %q", s.Title)
	}
}

// TestGmailDoctorRefusals: Google's and Gmail's refusals reach the steps
// with their diagnoses.
func TestGmailDoctorRefusals(t *testing.T) {
	w := newGmailWorld(t)
	w.tokens.RefuseMail(gmailUser)
	steps := w.run(t)
	for name, id := range map[string]string{"imap-login": "gmail-imap-auth-failed", "pop3-login": "gmail-pop-auth-failed", "smtp-login": "gmail-smtp-auth-failed"} {
		if s := stepOf(t, steps, name); s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != id {
			t.Errorf("%s: %s %q %+v, want %s", name, s.Status, s.Detail, s.Diagnosis, id)
		}
	}

	w = newGmailWorld(t)
	w.imap.SetMode(bridgetest.Disabled)
	if s := stepOf(t, w.run(t), "imap-login"); s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "gmail-imap-disabled" ||
		!strings.Contains(s.Diagnosis.Fix, "POP and IMAP access") {
		t.Errorf("imap-login with IMAP off: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}

	w = newGmailWorld(t)
	w.tokens.RevokeRefresh(w.rt)
	steps = w.run(t)
	s := stepOf(t, steps, "refresh")
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "gmail-token-expired-or-revoked" || !strings.Contains(s.Diagnosis.Fix, "Publish app") {
		t.Errorf("refresh with a revoked token: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	// The store now marks it: a second run says so at the stored step.
	s = stepOf(t, w.run(t), "stored-token")
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "gmail-token-expired-or-revoked" {
		t.Errorf("stored-token after the refusal: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
}
