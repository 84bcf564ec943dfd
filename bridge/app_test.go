package bridge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"log/slog"
	"math/big"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// The app-only environment: one app registration serving two mailboxes,
// each its own account with its own local password.
const (
	appClientID = "0a1b2c3d-0000-4000-8000-00000000abcd"
	appSecret   = "Xy8Q~scanner.app.secret"
	appScanner  = "scanner@contoso.example"
	appPrinter  = "printer@contoso.example"
)

var appAllRoles = []string{"IMAP.AccessAsApp", "POP.AccessAsApp", "SMTP.SendAsApp"}

// appEnv is a Bridge with app-only accounts in front of Exchange's three
// services (bridgetest, with its record of app-only access) and the
// identity platform (tokenstest, with the app registered).
type appEnv struct {
	*harness
	t     *testing.T
	clock *testClock
	app   tokenstest.App
	ids   tokenstest.AppIDs
	apps  *bridgetest.Apps
	smtp  *bridgetest.SMTP
	// Local listeners.
	imapAddr, pop3Addr, smtpAddr string
}

// appCredential is how the app proves itself: its secret, or a
// certificate whose PEM (certificate and key) the store keeps.
type appCredential struct {
	secret string
	cert   *x509.Certificate
	pem    string
}

func secretCredential() appCredential { return appCredential{secret: appSecret} }

func certificateCredential(t *testing.T) appCredential {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "scanner app"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	data = append(data, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})...)
	c, stored, err := tokens.CertificateCredential(data)
	if err != nil {
		t.Fatal(err)
	}
	return appCredential{cert: c.Cert, pem: stored}
}

// newAppEnv registers the app with roles and cred; with exchange set, the
// service principal is registered in Exchange and may open both
// mailboxes.
func newAppEnv(t *testing.T, cred appCredential, roles []string, exchange bool) *appEnv {
	t.Helper()
	t.Cleanup(leakCheck(t))
	h := newHarness(t)
	e := &appEnv{harness: h, t: t, clock: &testClock{now: time.Now()}, apps: bridgetest.NewApps()}
	e.app = tokenstest.App{ClientID: appClientID, Secret: cred.secret, Certificate: cred.cert, Roles: roles}
	e.ids = h.Tokens.RegisterApp(e.app)
	if exchange {
		e.apps.RegisterServicePrincipal(appClientID, e.ids.ServicePrincipal)
		e.apps.GrantMailbox(e.ids.ServicePrincipal, appScanner)
		e.apps.GrantMailbox(e.ids.ServicePrincipal, appPrinter)
	}
	mailboxes := []string{appScanner, appPrinter}
	upIMAP, err := bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Apps: e.apps, Users: mailboxes})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upIMAP.Close() })
	upPOP3, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Apps: e.apps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { upPOP3.Close() })
	upPOP3.Add(appScanner, []byte("Subject: scan 1\r\n\r\npage\r\n"))
	e.smtp, err = bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Apps: e.apps})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.smtp.Close() })

	tenant := h.Tokens.TenantID()
	stored := cred.secret
	if cred.pem != "" {
		stored = cred.pem
	}
	var accts []*Account
	h.mu.Lock()
	h.accounts, h.passwords = map[string]*Account{}, map[string]string{}
	for _, m := range mailboxes {
		p := tokens.Microsoft(tenant).ForApp()
		p.TokenURL = h.Tokens.TokenURL(tenant)
		p.IMAP, p.POP3, p.SMTP = upIMAP.Addr(), upPOP3.Addr(), e.smtp.Addr()
		a := &Account{Email: m, Mailbox: m, Provider: p, Tenant: tenant, ClientID: appClientID, App: true}
		pw, err := tokens.NewPassword()
		if err != nil {
			t.Fatal(err)
		}
		if err := h.Store.Put(m, tokens.Entry{AppCredential: stored, Password: pw, Updated: time.Now()}); err != nil {
			t.Fatal(err)
		}
		h.accounts[m], h.passwords[m] = a, pw
		accts = append(accts, a)
	}
	h.mu.Unlock()
	h.B, err = New(Options{
		Accounts:      accts,
		Store:         h.Store,
		UpstreamRoots: h.CA.Pool,
		Logger:        slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DialTimeout:   5 * time.Second,
		Now:           e.clock.Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	e.imapAddr, _ = h.startIMAP(FrontOptions{TLS: h.Local}, false)
	e.pop3Addr = h.startPOP3(FrontOptions{TLS: h.Local})
	srv := NewSMTPServer(h.B, FrontOptions{TLS: h.Local})
	ln := h.listen()
	e.smtpAddr = ln.Addr().String()
	var wg sync.WaitGroup
	wg.Go(func() { srv.Serve(ln, false) })
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		wg.Wait()
		h.checkLogs(appSecret, cred.pem)
	})
	return e
}

// imapLogin logs in to the bridge as email and selects INBOX; it returns
// the login's error, or the SELECT's.
func (e *appEnv) imapLogin(email string) error {
	e.t.Helper()
	c := e.dialIMAP(e.imapAddr, "plain", nil)
	defer c.Close()
	if err := c.Login(email, e.password(email)).Wait(); err != nil {
		return err
	}
	_, err := c.Select("INBOX", nil).Wait()
	return err
}

// pop3Login logs in with USER and PASS and returns the reply to PASS
// and to STAT.
func (e *appEnv) pop3Login(email string) (pass, stat string) {
	e.t.Helper()
	pc := (&pop3Env{harness: e.harness, t: e.t}).dial(e.pop3Addr, false)
	pc.ok("USER " + email)
	pass = pc.cmd("PASS " + e.password(email))
	if strings.HasPrefix(pass, "+OK") {
		stat = pc.cmd("STAT")
	}
	pc.cmd("QUIT")
	return pass, stat
}

// smtpSend logs in as email and sends msg from email to a colleague.
func (e *appEnv) smtpSend(email string, msg []byte) error {
	e.t.Helper()
	cfg := e.ClientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	c, err := smtp.DialStartTLS(e.smtpAddr, cfg)
	if err != nil {
		e.t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", email, e.password(email))); err != nil {
		return err
	}
	return c.SendMail(email, []string{"office@contoso.example"}, bytes.NewReader(msg))
}

// last returns the account's last diagnosis for p.
func (e *appEnv) last(email string, p Proto) (id, fix string) {
	for _, a := range e.B.Status().Accounts {
		if a.Email == email {
			return a.Last[p].ID, a.Last[p].Fix
		}
	}
	return "", ""
}

// TestAppOnlyThroughTheBridge: mail clients log in with the local
// passwords of two mailboxes one app serves; the bridge gets app-only
// tokens with the app's secret or certificate and logs in to IMAP, POP3
// and SMTP as each mailbox (SMTP too: user= is the mailbox, the token
// names no user). One token serves both protocols of a mailbox.
func TestAppOnlyThroughTheBridge(t *testing.T) {
	for _, kind := range []string{"secret", "certificate"} {
		t.Run(kind, func(t *testing.T) {
			cred := secretCredential()
			if kind == "certificate" {
				cred = certificateCredential(t)
			}
			e := newAppEnv(t, cred, appAllRoles, true)
			for _, m := range []string{appScanner, appPrinter} {
				if err := e.imapLogin(m); err != nil {
					t.Fatalf("IMAP as %s: %v", m, err)
				}
			}
			if pass, stat := e.pop3Login(appScanner); !strings.HasPrefix(pass, "+OK") || !strings.HasPrefix(stat, "+OK 1 ") {
				t.Errorf("POP3: PASS %q, STAT %q", pass, stat)
			}
			msg := []byte("From: scanner@contoso.example\r\nTo: office@contoso.example\r\nSubject: scan\r\n\r\npage 1\r\n")
			if err := e.smtpSend(appScanner, msg); err != nil {
				t.Fatalf("SMTP: %v", err)
			}
			got := e.smtp.Messages()
			if len(got) != 1 || got[0].AuthUser != appScanner || !bytes.Equal(got[0].Data, msg) {
				t.Fatalf("upstream got %+v", got)
			}
			// Two accounts, two tokens: one each, whatever the protocols.
			if n := e.Tokens.AppRequests(); n != 2 {
				t.Errorf("%d app token requests, want 2", n)
			}
			if e.Tokens.RefreshRequests() != 0 {
				t.Error("an app-only account used a refresh token")
			}
			// A wrong local password is refused as for any account.
			c := e.dialIMAP(e.imapAddr, "plain", nil)
			if err := c.Login(appScanner, "not-the-password").Wait(); err == nil {
				t.Error("a wrong local password logged in")
			}
			c.Close()
		})
	}
}

// TestAppOnlySetupDiagnoses walks the setup an administrator does for an
// app-only mailbox, step by step: each missing step makes every protocol
// refuse (as Exchange does, with its generic words), and the diagnosis
// names the step with its PowerShell line filled in with the app id, the
// tenant, the mailbox and the enterprise application's object id.
func TestAppOnlySetupDiagnoses(t *testing.T) {
	e := newAppEnv(t, secretCredential(), nil, false)
	sp, tenant := e.ids.ServicePrincipal, e.Tokens.TenantID()
	type want struct {
		id  string
		fix []string
	}
	check := func(step string, imapWant, popWant, smtpWant want) {
		t.Helper()
		if err := e.imapLogin(appScanner); err == nil {
			t.Errorf("%s: IMAP logged in", step)
		}
		e.pop3Login(appScanner)
		if err := e.smtpSend(appScanner, []byte("Subject: x\r\n\r\nx\r\n")); err == nil {
			t.Errorf("%s: SMTP sent", step)
		}
		for _, c := range []struct {
			p Proto
			w want
		}{{IMAP, imapWant}, {POP3, popWant}, {SMTP, smtpWant}} {
			id, fix := e.last(appScanner, c.p)
			if id != c.w.id {
				t.Errorf("%s: %s diagnosis %q, want %q", step, c.p, id, c.w.id)
				continue
			}
			for _, f := range c.w.fix {
				if !strings.Contains(fix, f) {
					t.Errorf("%s: %s fix lacks %q:\n%s", step, c.p, f, fix)
				}
			}
			if strings.Contains(fix, e.ids.Registration) {
				t.Errorf("%s: %s fix names the app registration's object id", step, c.p)
			}
		}
	}
	consent := "https://login.microsoftonline.com/" + tenant + "/adminconsent?client_id=" + appClientID
	newSP := "New-ServicePrincipal -AppId " + appClientID + " -ObjectId " + sp
	perm := "Add-MailboxPermission -Identity " + appScanner + " -User " + sp + " -AccessRights FullAccess"
	notInExchange := want{"app-not-in-exchange", []string{newSP, perm}}

	check("no permission granted", want{"app-permission-missing", []string{"IMAP.AccessAsApp", consent}},
		want{"app-permission-missing", []string{"POP.AccessAsApp", consent}},
		want{"app-smtp-send-as-app", []string{"SMTP.SendAsApp", `New-ManagementRoleAssignment -Role "Application SMTP.SendAsApp" -App ` + appClientID}})

	e.app.Roles = appAllRoles
	e.Tokens.RegisterApp(e.app) // consent granted: the next token carries the roles
	check("no service principal", notInExchange, notInExchange, notInExchange)

	e.apps.RegisterServicePrincipal(appClientID, e.ids.Registration)
	check("service principal with the app registration's object id", notInExchange, notInExchange, notInExchange)

	e.apps.RegisterServicePrincipal(appClientID, sp)
	if err := e.imapLogin(appScanner); err == nil {
		t.Error("IMAP opened a mailbox the app has no permission on")
	}
	if id, fix := e.last(appScanner, IMAP); id != "app-mailbox-permission" || !strings.Contains(fix, perm) {
		t.Errorf("no mailbox permission: IMAP diagnosis %q:\n%s", id, fix)
	}
	e.pop3Login(appScanner)
	if id, fix := e.last(appScanner, POP3); id != "app-not-in-exchange" || !strings.Contains(fix, perm) {
		t.Errorf("no mailbox permission: POP3 diagnosis %q:\n%s", id, fix)
	}

	e.apps.GrantMailbox(sp, appScanner)
	if err := e.imapLogin(appScanner); err != nil {
		t.Fatalf("after the last step: IMAP %v", err)
	}
	if pass, _ := e.pop3Login(appScanner); !strings.HasPrefix(pass, "+OK") {
		t.Errorf("after the last step: POP3 %q", pass)
	}
	if err := e.smtpSend(appScanner, []byte("Subject: x\r\n\r\nx\r\n")); err != nil {
		t.Errorf("after the last step: SMTP %v", err)
	}
	for _, p := range []Proto{IMAP, POP3, SMTP} {
		if id, _ := e.last(appScanner, p); id != "" {
			t.Errorf("after the last step: %s still shows %q", p, id)
		}
	}
}

// TestAppOnlyExpiredSecret: Microsoft refuses an expired secret with
// AADSTS7000222; the client is told to store a new one with `bridge login
// EMAIL --app`, the status says how to make one, and later logins fail
// fast without asking the platform again.
func TestAppOnlyExpiredSecret(t *testing.T) {
	e := newAppEnv(t, secretCredential(), appAllRoles, true)
	e.app.SecretExpired = true
	e.Tokens.RegisterApp(e.app)
	err := e.imapLogin(appScanner)
	var ie *imap.Error
	if !errors.As(err, &ie) || !strings.Contains(ie.Text, "bridge login "+appScanner+" --app") {
		t.Fatalf("login: %v", err)
	}
	id, fix := e.last(appScanner, IMAP)
	if id != "bad-secret" || !strings.Contains(fix, "bridge login "+appScanner+" --app") || !strings.Contains(fix, "New client secret") {
		t.Errorf("diagnosis %q:\n%s", id, fix)
	}
	n := e.Tokens.AppRequests()
	if pass, _ := e.pop3Login(appScanner); !strings.HasPrefix(pass, "-ERR") {
		t.Errorf("POP3 with an expired secret: %q", pass)
	}
	if e.Tokens.AppRequests() != n {
		t.Error("a login after the refusal asked the platform again")
	}
	for _, a := range e.B.Status().Accounts {
		if a.Email == appScanner && !strings.Contains(a.Token.NeedsLogin, "AADSTS7000222") {
			t.Errorf("status needs-login %q", a.Token.NeedsLogin)
		}
	}
}

// TestAppOnlyOneRequestAtExpiry: 50 clients log in at once as the
// mailbox's token nears its expiry; they share one token request.
func TestAppOnlyOneRequestAtExpiry(t *testing.T) {
	e := newAppEnv(t, secretCredential(), appAllRoles, true)
	if err := e.imapLogin(appScanner); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(59 * time.Minute)
	e.Tokens.FailNext(1, tokenstest.Slow(300*time.Millisecond))
	before := e.Tokens.AppRequests()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make([]error, 50)
	for i := range errs {
		wg.Go(func() {
			<-start
			pc := (&pop3Env{harness: e.harness, t: t}).dial(e.pop3Addr, false)
			pc.send("USER " + appScanner)
			pc.line()
			if r := pc.cmd("PASS " + e.password(appScanner)); !strings.HasPrefix(r, "+OK") {
				errs[i] = errors.New(r)
			}
			pc.send("QUIT")
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatalf("a login failed: %v", err)
		}
	}
	if n := e.Tokens.AppRequests() - before; n != 1 {
		t.Errorf("%d token requests for 50 logins at expiry, want 1", n)
	}
}
