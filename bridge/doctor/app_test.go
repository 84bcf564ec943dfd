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

// TestRunAppOnly: for an app-only account doctor shows the stored
// credential's kind, gets an app-only token, reads its roles and names
// the one missing (SMTP.SendAsApp here), and the SMTP login it then runs
// is refused with the app-only diagnosis; IMAP, set up fully, passes. The
// secret never reaches the report.
func TestRunAppOnly(t *testing.T) {
	const app, secret, mailbox = "0a1b2c3d-0000-4000-8000-00000000abcd", "Xy8Q~doctor.secret", "scanner@b.test"
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	ids := idp.RegisterApp(tokenstest.App{ClientID: app, Secret: secret, Roles: []string{"IMAP.AccessAsApp"}})
	apps := bridgetest.NewApps()
	apps.RegisterServicePrincipal(app, ids.ServicePrincipal)
	apps.GrantMailbox(ids.ServicePrincipal, mailbox)

	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	up := &tls.Config{Certificates: []tls.Certificate{cert}}
	imapSrv, err := bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: idp.Validate, TLS: up, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	smtpSrv, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: idp.Validate, TLS: up, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	defer smtpSrv.Close()

	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = "127.0.0.1:0"
pop3 = ""
smtp = "127.0.0.1:0"

[[account]]
email = %q
auth = "app"
tenant = %q
client_id = %q
token_url = %q
imap = %q
smtp = %q
`, mailbox, idp.TenantID(), app, idp.TokenURL(idp.TenantID()), imapSrv.Addr(), smtpSrv.Addr()))
	st := &memStore{m: map[string]tokens.Entry{mailbox: {AppCredential: secret, Password: "local-pass-1234567890"}}}
	rep := Run(context.Background(), Options{Config: cfg, Store: st, Roots: ca.Pool, Timeout: 5 * time.Second})
	steps := rep.Accounts[0].Steps

	if s := stepOf(t, steps, "stored-token"); s.Status != Pass || !strings.Contains(s.Detail, "app client secret") {
		t.Errorf("stored-token: %s %q", s.Status, s.Detail)
	}
	if s := stepOf(t, steps, "refresh"); s.Status != Pass || idp.AppRequests() != 1 {
		t.Errorf("refresh: %s %q after %d app token requests", s.Status, s.Detail, idp.AppRequests())
	}
	s := stepOf(t, steps, "access-token")
	if s.Status != Warn || s.Diagnosis == nil || s.Diagnosis.ID != "token-role-missing" ||
		!strings.Contains(s.Diagnosis.Cause, "SMTP.SendAsApp") || strings.Contains(s.Diagnosis.Cause, "IMAP.AccessAsApp") ||
		!strings.Contains(s.Detail, ids.ServicePrincipal) || !strings.Contains(s.Detail, "roles IMAP.AccessAsApp") {
		t.Errorf("access-token: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if s := stepOf(t, steps, "imap-mailbox"); s.Status != Pass {
		t.Errorf("imap-mailbox: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if s := stepOf(t, steps, "smtp-login"); s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "app-smtp-send-as-app" {
		t.Errorf("smtp-login: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	var b strings.Builder
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), secret) {
		t.Error("the report shows the app's secret")
	}
}
