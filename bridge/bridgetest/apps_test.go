package bridgetest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	appClient  = "5e1f0000-0000-4000-8000-0000000000aa"
	appSecret  = "app~secret"
	appMailbox = "scanner@contoso.example"
)

// appToken gets an app-only token for the registered app from the
// platform, by the client credentials grant.
func appToken(t *testing.T, p *tokenstest.Server) string {
	t.Helper()
	resp, err := http.PostForm(p.TokenURL(p.TenantID()), url.Values{"grant_type": {"client_credentials"},
		"client_id": {appClient}, "client_secret": {appSecret}, "scope": {"https://outlook.office365.com/.default"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken string `json:"access_token"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.AccessToken == "" {
		t.Fatalf("no token: HTTP %d %v", resp.StatusCode, err)
	}
	return body.AccessToken
}

// TestAppOnlyAccess walks an app through Exchange's setup steps: each
// protocol refuses its tokens (as Exchange does, with its generic
// answer) until the app holds the protocol's role, its service principal
// is registered with the enterprise application's object id, and it may
// open the mailbox; IMAP then lacks only the mailbox permission and says
// "not connected" instead.
func TestAppOnlyAccess(t *testing.T) {
	checkNoGoroutineLeak(t)
	p := tokenstest.New(tokenstest.Options{})
	defer p.Close()
	ids := p.RegisterApp(tokenstest.App{ClientID: appClient, Secret: appSecret})
	apps := NewApps()

	imapSrv, err := NewIMAP(IMAPOptions{Validate: p.Validate, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	defer imapSrv.Close()
	popSrv, err := NewPOP3(POP3Options{Validate: p.Validate, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	defer popSrv.Close()
	smtpSrv, err := NewSMTP(SMTPOptions{Validate: p.Validate, Apps: apps})
	if err != nil {
		t.Fatal(err)
	}
	defer smtpSrv.Close()

	// imap logs in and selects INBOX; it returns the two replies, an OK
	// as "a OK" or "b OK" whatever its text.
	imap := func(tok string) (login, sel string) {
		w := dialLines(t, imapSrv.Addr(), nil)
		w.line()
		w.send("a AUTHENTICATE XOAUTH2 " + xoauth2B64(appMailbox, tok))
		login = w.line()
		if !strings.HasPrefix(login, "a OK ") {
			return login, ""
		}
		login = "a OK"
		w.send("b SELECT INBOX")
		for {
			if l := w.line(); l[0] != '*' {
				if strings.HasPrefix(l, "b OK ") {
					l = "b OK"
				}
				return login, l
			}
		}
	}
	pop := func(tok string) string {
		w := dialLines(t, popSrv.Addr(), nil)
		w.line()
		w.send("AUTH XOAUTH2")
		w.expect("+ ")
		w.send(xoauth2B64(appMailbox, tok))
		return w.line()
	}
	smtpAuth := func(tok string) error {
		c, err := smtp.Dial(smtpSrv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.Auth(xoauth2.TwoStep(appMailbox, tok))
	}
	const refusedIMAP, refusedPOP = "a NO AUTHENTICATE failed.", "-ERR Authentication failure: unknown user name or bad password."
	check := func(step, wantLogin, wantSel, wantPOP string, smtpOK bool) {
		t.Helper()
		tok := appToken(t, p)
		login, sel := imap(tok)
		if login != wantLogin || sel != wantSel {
			t.Errorf("%s: IMAP %q / %q, want %q / %q", step, login, sel, wantLogin, wantSel)
		}
		if got := pop(tok); got != wantPOP {
			t.Errorf("%s: POP3 %q, want %q", step, got, wantPOP)
		}
		err := smtpAuth(tok)
		if smtpOK != (err == nil) {
			t.Errorf("%s: SMTP AUTH: %v", step, err)
		}
		if err != nil {
			if code, enh, _ := smtpCode(t, err); code != 535 || enh != (smtp.EnhancedCode{5, 7, 3}) {
				t.Errorf("%s: SMTP %d %v", step, code, enh)
			}
		}
	}

	check("nothing set up", refusedIMAP, "", refusedPOP, false)
	p.RegisterApp(tokenstest.App{ClientID: appClient, Secret: appSecret, Roles: []string{"IMAP.AccessAsApp", "POP.AccessAsApp"}})
	check("roles, no service principal", refusedIMAP, "", refusedPOP, false)
	apps.RegisterServicePrincipal(appClient, ids.Registration)
	check("registered with the app registration's object id", refusedIMAP, "", refusedPOP, false)
	apps.RegisterServicePrincipal(appClient, ids.ServicePrincipal)
	check("no mailbox permission", "a OK", "b BAD User is authenticated but not connected.", refusedPOP, false)
	apps.GrantMailbox(ids.ServicePrincipal, appMailbox)
	check("no SMTP.SendAsApp", "a OK", "b OK", "+OK User successfully authenticated.", false)
	p.RegisterApp(tokenstest.App{ClientID: appClient, Secret: appSecret, Roles: []string{"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"}})
	check("all set up", "a OK", "b OK", "+OK User successfully authenticated.", true)

	// Another mailbox stays closed, and a server without Apps refuses
	// app-only tokens outright.
	tok := appToken(t, p)
	w := dialLines(t, popSrv.Addr(), nil)
	w.line()
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64("ceo@contoso.example", tok))
	w.expect(refusedPOP)
	bare, err := NewPOP3(POP3Options{Validate: p.Validate})
	if err != nil {
		t.Fatal(err)
	}
	defer bare.Close()
	w = dialLines(t, bare.Addr(), nil)
	w.line()
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(appMailbox, tok))
	w.expect(refusedPOP)
}
