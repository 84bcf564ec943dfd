package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/doctor"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// doctorWorld is an imitation of Microsoft on 127.0.0.1 (identity
// platform, IMAP, POP3 and SMTP with certificates from a test CA) and a
// config plus file store for a@b.test pointing at it.
type doctorWorld struct {
	idp  *tokenstest.Server
	imap *bridgetest.IMAP
	pop  *bridgetest.POP3
	smtp *bridgetest.SMTP
	dir  string
	cfg  string
	rt   string // the refresh token stored at start
}

const doctorPassword = "local-pass-1234567890"

// newDoctorWorld starts the servers; imapAddr, when set, replaces the IMAP
// server in the config (a closed port, say).
func newDoctorWorld(t *testing.T, imapAddr string) *doctorWorld {
	t.Helper()
	return newDoctorWorldWith(t, imapAddr, tokenstest.Options{})
}

// newDoctorWorldWith is newDoctorWorld with the identity platform's
// options.
func newDoctorWorldWith(t *testing.T, imapAddr string, idp tokenstest.Options) *doctorWorld {
	t.Helper()
	w := &doctorWorld{dir: t.TempDir()}
	w.idp = tokenstest.New(idp)
	t.Cleanup(w.idp.Close)
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	tlsConf := &tls.Config{Certificates: []tls.Certificate{cert}}
	if w.imap, err = bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: w.idp.Validate, TLS: tlsConf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.imap.Close() })
	if w.pop, err = bridgetest.NewPOP3(bridgetest.POP3Options{Validate: w.idp.Validate, TLS: tlsConf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.pop.Close() })
	if w.smtp, err = bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: w.idp.Validate, TLS: tlsConf}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.smtp.Close() })
	caFile := filepath.Join(w.dir, "ca.pem")
	if err := ca.WriteCA(caFile); err != nil {
		t.Fatal(err)
	}
	if imapAddr == "" {
		imapAddr = w.imap.Addr()
	}
	storePath := filepath.Join(w.dir, "tokens.json")
	body := fmt.Sprintf(`[listen]
imap = %q
pop3 = "127.0.0.1:0"
smtp = "127.0.0.1:0"

[store]
backend = "file"
path = %q

[tls]
upstream_ca_file = %q

[[account]]
email = "a@b.test"
client_id = "app"
auth_url = %q
token_url = %q
imap = %q
pop3 = %q
smtp = %q
`, closedPort(t), storePath, caFile, w.idp.AuthURL("common"), w.idp.TokenURL("common"), imapAddr, w.pop.Addr(), w.smtp.Addr())
	w.cfg = filepath.Join(w.dir, "config.toml")
	if err := os.WriteFile(w.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewFileStore(storePath)
	if err != nil {
		t.Fatal(err)
	}
	_, w.rt, _ = w.idp.Issue("a@b.test")
	if err := st.Put("a@b.test", tokens.Entry{RefreshToken: w.rt, Password: doctorPassword, Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	return w
}

// closedPort returns a loopback address nothing listens on: a port just
// bound and released.
func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// doctor runs `bridge doctor a@b.test --json` in process and decodes the
// report, checking that no secret reached the output.
func (w *doctorWorld) doctor(t *testing.T, extra ...string) (*doctor.Report, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	args := append([]string{"--config", w.cfg, "doctor", "a@b.test", "--json"}, extra...)
	out, stderr, code := runCmd(t, ctx, args...)
	w.noSecrets(t, out+stderr)
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json printed no JSON (exit %d): %v\n%s\nstderr: %s", code, err, out, stderr)
	}
	if rep.FormatVersion != 1 {
		t.Errorf("format_version %d, want 1", rep.FormatVersion)
	}
	return &rep, out, code
}

// noSecrets fails when out holds a refresh token, the local password or
// anything shaped like a JWT access token.
func (w *doctorWorld) noSecrets(t *testing.T, out string) {
	t.Helper()
	for name, s := range map[string]string{
		"stored refresh token": w.rt, "rotated refresh token": w.idp.LatestRefresh("a@b.test"), "local password": doctorPassword,
	} {
		if s != "" && strings.Contains(out, s) {
			t.Errorf("the output holds the %s", name)
		}
	}
	// Every JWT starts with the base64url of `{"`.
	if strings.Contains(out, "eyJ") {
		t.Error("the output holds something shaped like a JWT access token")
	}
}

// step finds the account step named name.
func step(t *testing.T, rep *doctor.Report, name string) doctor.Step {
	t.Helper()
	if len(rep.Accounts) != 1 {
		t.Fatalf("%d accounts in the report, want 1", len(rep.Accounts))
	}
	for _, s := range rep.Accounts[0].Steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q in %+v", name, rep.Accounts[0].Steps)
	return doctor.Step{}
}

func wantOK(t *testing.T, rep *doctor.Report, names ...string) {
	t.Helper()
	for _, n := range names {
		if s := step(t, rep, n); !s.OK || s.Status != doctor.Pass {
			t.Errorf("step %s: %s %q %+v, want pass", n, s.Status, s.Detail, s.Diagnosis)
		}
	}
}

func wantFail(t *testing.T, rep *doctor.Report, name, id string) doctor.Step {
	t.Helper()
	s := step(t, rep, name)
	if s.OK || s.Status != doctor.Fail {
		t.Fatalf("step %s: %s %q, want fail", name, s.Status, s.Detail)
	}
	if s.Diagnosis == nil || s.Diagnosis.ID != id {
		t.Fatalf("step %s: diagnosis %+v, want id %s", name, s.Diagnosis, id)
	}
	if s.Diagnosis.Fix == "" || s.Diagnosis.Title == "" {
		t.Errorf("step %s: diagnosis without title or fix: %+v", name, s.Diagnosis)
	}
	return s
}

var allSteps = []string{"account", "stored-token", "local-password", "refresh", "access-token",
	"imap-reach", "imap-tls", "imap-login", "imap-mailbox",
	"pop3-reach", "pop3-tls", "pop3-login",
	"smtp-reach", "smtp-starttls", "smtp-tls", "smtp-login"}

func TestDoctorAllGood(t *testing.T) {
	w := newDoctorWorld(t, "")
	if err := w.imap.Append("a@b.test", "INBOX", []byte("Subject: one\r\n\r\nbody\r\n")); err != nil {
		t.Fatal(err)
	}
	rep, _, code := w.doctor(t)
	if code != 0 {
		t.Fatalf("exit %d, want 0: %+v", code, rep)
	}
	wantOK(t, rep, allSteps...)
	if !rep.OK() {
		t.Error("Report.OK is false")
	}
	for _, c := range rep.Checks {
		if !c.OK {
			t.Errorf("check %s: %s %q", c.Name, c.Status, c.Detail)
		}
	}
	if s := step(t, rep, "access-token"); !strings.Contains(s.Detail, "a@b.test") || !strings.Contains(s.Detail, "IMAP.AccessAsUser.All") {
		t.Errorf("access-token detail lacks user or scopes: %q", s.Detail)
	}
	if s := step(t, rep, "imap-mailbox"); !strings.HasSuffix(s.Detail, ": 1 message") {
		t.Errorf("imap-mailbox detail does not count the one message: %q", s.Detail)
	}
	if s := step(t, rep, "imap-tls"); !strings.Contains(s.Detail, "bridge test CA") {
		t.Errorf("imap-tls detail does not name the issuer: %q", s.Detail)
	}
	if w.smtp.Logins() != 1 || len(w.smtp.Messages()) != 0 {
		t.Errorf("smtp logins %d, messages %d; want one login and no mail", w.smtp.Logins(), len(w.smtp.Messages()))
	}

	// The text form, without EMAIL (every account).
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, stderr, code := runCmd(t, ctx, "--config", w.cfg, "doctor")
	w.noSecrets(t, out+stderr)
	if code != 0 || !strings.Contains(out, "All ") || !strings.Contains(out, "✓ IMAP mailbox") {
		t.Errorf("text run: exit %d\n%s\n%s", code, out, stderr)
	}
}

func TestDoctorSMTPAuthDisabledForTenant(t *testing.T) {
	w := newDoctorWorld(t, "")
	w.smtp.Refuse(bridgetest.TenantDisabled)
	rep, _, code := w.doctor(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantOK(t, rep, "refresh", "imap-reach", "imap-tls", "imap-login", "imap-mailbox", "pop3-login", "smtp-tls")
	s := wantFail(t, rep, "smtp-login", "smtp-auth-disabled-tenant")
	if !strings.Contains(s.Diagnosis.Fix, "SmtpClientAuthenticationDisabled") || !strings.Contains(s.Detail, "5.7.139") {
		t.Errorf("smtp-login: detail %q fix %q", s.Detail, s.Diagnosis.Fix)
	}
}

func TestDoctorIMAPAuthenticatedButNotConnected(t *testing.T) {
	w := newDoctorWorld(t, "")
	w.imap.SetMode(bridgetest.NotConnected)
	rep, out, code := w.doctor(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	wantOK(t, rep, "imap-login", "smtp-login", "pop3-login")
	s := wantFail(t, rep, "imap-mailbox", "imap-not-connected")
	for _, want := range []string{"FullAccess", "bridge login a@b.test`", "sign in as a@b.test"} {
		if !strings.Contains(s.Diagnosis.Fix, want) {
			t.Errorf("fix lacks %q: %q", want, s.Diagnosis.Fix)
		}
	}
	if !strings.Contains(s.Detail, "authenticated but not connected") {
		t.Errorf("detail does not show the server's words: %q\n%s", s.Detail, out)
	}
}

func TestDoctorRefreshExpired(t *testing.T) {
	w := newDoctorWorld(t, "")
	w.idp.FailNext(1, tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity."))
	rep, _, code := w.doctor(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	s := wantFail(t, rep, "refresh", "token-expired-inactive")
	if !strings.Contains(s.Diagnosis.Fix, "bridge login a@b.test`") || !strings.Contains(s.Detail, "700082") {
		t.Errorf("refresh: detail %q fix %q", s.Detail, s.Diagnosis.Fix)
	}
	// The steps that need no token still ran; those that do were skipped.
	wantOK(t, rep, "stored-token", "imap-reach", "imap-tls", "pop3-tls", "smtp-tls")
	for _, n := range []string{"access-token", "imap-login", "imap-mailbox", "pop3-login", "smtp-login"} {
		if st := step(t, rep, n); st.Status != doctor.Skipped {
			t.Errorf("step %s: %s, want skipped", n, st.Status)
		}
	}

	// The text form says the same to a person. The refusal marked the
	// account in the store, so this run stops at the stored sign-in
	// without asking the identity platform again.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, _, code := runCmd(t, ctx, "--config", w.cfg, "doctor", "a@b.test")
	w.noSecrets(t, out)
	if code != 1 || !strings.Contains(out, "✗ Sign-in stored") || !strings.Contains(out, "AADSTS700082") || !strings.Contains(out, "Run `bridge login a@b.test`") {
		t.Errorf("text run: exit %d\n%s", code, out)
	}
}

func TestDoctorClosedPort(t *testing.T) {
	closed := closedPort(t)
	w := newDoctorWorld(t, closed)
	rep, _, code := w.doctor(t)
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	s := wantFail(t, rep, "imap-reach", "upstream-unreachable")
	host, port, _ := net.SplitHostPort(closed)
	if !strings.Contains(s.Detail, host) || !strings.Contains(s.Detail, port) || !strings.Contains(s.Detail, "firewall or proxy") {
		t.Errorf("imap-reach detail %q does not name %s and %s", s.Detail, host, port)
	}
	if !strings.Contains(s.Diagnosis.Fix, port) {
		t.Errorf("fix does not name the port: %q", s.Diagnosis.Fix)
	}
	// The rest went on.
	wantOK(t, rep, "refresh", "smtp-login", "pop3-login")
	if st := step(t, rep, "imap-login"); st.Status != doctor.Skipped {
		t.Errorf("imap-login: %s, want skipped", st.Status)
	}
}

func TestDoctorConfigAndAccountErrors(t *testing.T) {
	ctx := context.Background()
	bad := writeConfig(t, "[[account]]\nemail = \"a@b.test\"\nclinet_id = \"x\"\n")
	out, _, code := runCmd(t, ctx, "--config", bad, "doctor", "--json")
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 2 {
		t.Fatalf("broken config: exit %d (want 2), %v\n%s", code, err, out)
	}
	if len(rep.Checks) != 1 || rep.Checks[0].Name != "config" || rep.Checks[0].OK || !strings.Contains(rep.Checks[0].Detail, "clinet_id") {
		t.Errorf("broken config report: %+v", rep.Checks)
	}

	w := newDoctorWorld(t, "")
	out, _, code = runCmd(t, ctx, "--config", w.cfg, "doctor", "nobody@b.test")
	if code != 1 || !strings.Contains(out, "nobody@b.test") || !strings.Contains(out, "bridge login nobody@b.test") {
		t.Errorf("unknown account: exit %d\n%s", code, out)
	}
	if _, _, code := runCmd(t, ctx, "--config", w.cfg, "doctor", "a", "b"); code != 2 {
		t.Errorf("two arguments: exit %d, want 2", code)
	}
}
