package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/graphtest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestRunChecksTheGraphPath: an account on smtp_via "auto" whose tenant
// keeps SMTP AUTH off gets a Graph token and a GET /me; the SMTP login's
// refusal is a warning, as the bridge sends through Graph. Without the
// consent the Graph token step fails with its fix.
func TestRunChecksTheGraphPath(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	g := graphtest.New(graphtest.Options{Tokens: idp})
	defer g.Close()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	up, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: idp.Validate, Refusal: bridgetest.TenantDisabled,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer up.Close()
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = ""
pop3 = ""
smtp = "127.0.0.1:0"

[[account]]
email = "a@b.test"
client_id = "app"
token_url = %q
smtp = %q
smtp_via = "auto"
graph_url = %q
`, idp.TokenURL("common"), up.Addr(), g.URL()))
	_, rt, _ := idp.Issue("a@b.test")
	st := &memStore{m: map[string]tokens.Entry{"a@b.test": {RefreshToken: rt, Password: "local-pass-1234567890"}}}
	run := func() []Step {
		return Run(context.Background(), Options{Config: cfg, Store: st, Roots: ca.Pool, Timeout: 5 * time.Second}).Accounts[0].Steps
	}

	steps := run()
	s := stepOf(t, steps, "graph-token")
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "graph-consent-missing" || !strings.Contains(s.Diagnosis.Fix, "Mail.Send") {
		t.Fatalf("graph-token without consent: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if s := stepOf(t, steps, "graph-me"); s.Status != Skipped {
		t.Errorf("graph-me without a token: %s", s.Status)
	}

	idp.GrantConsent("a@b.test", tokenstest.GraphResource+"/Mail.Send", tokenstest.GraphResource+"/User.Read")
	steps = run()
	for _, name := range []string{"graph-token", "graph-me"} {
		if s := stepOf(t, steps, name); s.Status != Pass {
			t.Errorf("%s: %s %q %+v", name, s.Status, s.Detail, s.Diagnosis)
		}
	}
	if s := stepOf(t, steps, "graph-me"); !strings.Contains(s.Detail, "a@b.test") || !strings.Contains(s.Detail, "/me/sendMail") {
		t.Errorf("graph-me detail: %q", s.Detail)
	}
	s = stepOf(t, steps, "smtp-login")
	if s.Status != Warn || s.Diagnosis == nil || s.Diagnosis.ID != "smtp-auth-disabled-tenant" || !strings.Contains(s.Diagnosis.Fix, "through Microsoft Graph instead") {
		t.Errorf("smtp-login: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if n := len(g.Sent()); n != 0 {
		t.Errorf("doctor sent %d messages", n)
	}
}
