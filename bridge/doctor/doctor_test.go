package doctor

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// memStore is a tokens.Store in memory.
type memStore struct {
	mu sync.Mutex
	m  map[string]tokens.Entry
}

func (s *memStore) Get(a string) (tokens.Entry, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.m[a]
	if !ok {
		return tokens.Entry{}, fmt.Errorf("memstore: %s: %w", a, tokens.ErrNotFound)
	}
	return e, nil
}

func (s *memStore) Put(a string, e tokens.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[a] = e
	return nil
}

func (s *memStore) Delete(a string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, a)
	return nil
}

func (s *memStore) Name() string { return "memory" }

func loadConfig(t *testing.T, body string) *config.Config {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(p)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// silent accepts connections and never says a word, until the test ends.
func silent(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

func stepOf(t *testing.T, steps []Step, name string) Step {
	t.Helper()
	for _, s := range steps {
		if s.Name == name {
			return s
		}
	}
	t.Fatalf("no step %q", name)
	return Step{}
}

// TestRunWithoutSignIn: nothing is stored, the IMAP server never greets
// and the SMTP port is closed. Every step still reports, within the probe
// time limit, and the fixes name the account.
func TestRunWithoutSignIn(t *testing.T) {
	mute, closed := silent(t), freeAddr(t)
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = "127.0.0.1:0"
pop3 = ""
smtp = "127.0.0.1:0"

[[account]]
email = "a@b.test"
client_id = "app"
token_url = "http://%s/token"
imap = %q
smtp = %q
`, closed, mute, closed))
	start := time.Now()
	rep := Run(context.Background(), Options{Config: cfg, Store: &memStore{m: map[string]tokens.Entry{}}, Timeout: 300 * time.Millisecond})
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Run took %s with a 300 ms probe limit", d)
	}
	if rep.OK() || len(rep.Accounts) != 1 {
		t.Fatalf("report OK %v with %d accounts", rep.OK(), len(rep.Accounts))
	}
	steps := rep.Accounts[0].Steps
	s := stepOf(t, steps, "stored-token")
	if s.Status != Fail || s.Diagnosis.ID != "token-needs-login" || !strings.Contains(s.Diagnosis.Fix, "bridge login a@b.test") {
		t.Errorf("stored-token: %s %+v", s.Status, s.Diagnosis)
	}
	if s := stepOf(t, steps, "local-password"); s.Status != Fail || s.Diagnosis.ID != "no-local-password" {
		t.Errorf("local-password: %s %+v", s.Status, s.Diagnosis)
	}
	if s := stepOf(t, steps, "refresh"); s.Status != Skipped {
		t.Errorf("refresh: %s, want skipped", s.Status)
	}
	if s := stepOf(t, steps, "imap-reach"); s.Status != Pass {
		t.Errorf("imap-reach: %s %q", s.Status, s.Detail)
	}
	// The handshake waits for a server that never answers: a time-out.
	if s := stepOf(t, steps, "imap-tls"); s.Status != Fail || s.DurationMS > 3000 {
		t.Errorf("imap-tls: %s after %d ms: %q", s.Status, s.DurationMS, s.Detail)
	}
	if s := stepOf(t, steps, "smtp-reach"); s.Status != Fail || s.Diagnosis.ID != "upstream-unreachable" {
		t.Errorf("smtp-reach: %s %+v", s.Status, s.Diagnosis)
	}
	for _, s := range steps {
		if strings.HasPrefix(s.Name, "pop3") {
			t.Errorf("POP3 step %s ran with listen.pop3 off", s.Name)
		}
	}

	var buf bytes.Buffer
	if err := rep.WriteJSON(&buf); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		FormatVersion int `json:"format_version"`
		Accounts      []struct {
			Steps []map[string]any `json:"steps"`
		} `json:"accounts"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil || doc.FormatVersion != 1 || len(doc.Accounts) != 1 {
		t.Fatalf("JSON %v: %s", err, buf.String())
	}
	for _, st := range doc.Accounts[0].Steps {
		for _, k := range []string{"name", "ok", "detail", "duration_ms"} {
			if _, ok := st[k]; !ok {
				t.Errorf("JSON step %v lacks %q", st["name"], k)
			}
		}
		if st["ok"] == false && st["status"] == "fail" && st["diagnosis"] == nil {
			t.Errorf("failed JSON step %v has no diagnosis", st["name"])
		}
	}
}

// TestRunWarnsOfWrongLocalPasswords: with a running bridge that refused
// wrong local passwords for the account lately, the local password step
// warns, says how many, from where and by which client, and gives the fix;
// the warning does not fail the report.
func TestRunWarnsOfWrongLocalPasswords(t *testing.T) {
	cfg := loadConfig(t, `[listen]
imap = ""
pop3 = ""
smtp = ""

[[account]]
email = "a@b.test"
client_id = "app"
`)
	st := &memStore{m: map[string]tokens.Entry{"a@b.test": {Password: "local-pass-1234567890"}}}
	at := time.Now()
	live := &bridge.Status{Accounts: []bridge.AccountStatus{{Email: "a@b.test", Refused: &bridge.RefusedLogins{
		Count: 12, Since: at.Add(-4 * time.Minute), Last: at, LastPeer: "127.0.0.1", LastProto: bridge.SMTP, LastClient: "Canon MF"}}}}
	rep := Run(context.Background(), Options{Config: cfg, Store: st, Live: live})
	s := stepOf(t, rep.Accounts[0].Steps, "local-password")
	if s.Status != Warn || !s.OK || s.Diagnosis == nil || s.Diagnosis.ID != "local-password-wrong" {
		t.Fatalf("local-password: %s %+v", s.Status, s.Diagnosis)
	}
	for _, want := range []string{"12 wrong local passwords since ", "from 127.0.0.1 (Canon MF, SMTP)"} {
		if !strings.Contains(s.Detail, want) || !strings.Contains(s.Diagnosis.Cause, want) {
			t.Errorf("detail %q / cause %q lack %q", s.Detail, s.Diagnosis.Cause, want)
		}
	}
	if !strings.Contains(s.Diagnosis.Fix, "`bridge password a@b.test`") {
		t.Errorf("fix %q", s.Diagnosis.Fix)
	}

	live.Accounts[0].Refused = nil
	rep = Run(context.Background(), Options{Config: cfg, Store: st, Live: live})
	if s := stepOf(t, rep.Accounts[0].Steps, "local-password"); s.Status != Pass {
		t.Errorf("local-password without refused logins: %s %q", s.Status, s.Detail)
	}
}

func TestRunConfigError(t *testing.T) {
	rep := Run(context.Background(), Options{ConfigPath: "/x/config.toml", ConfigErr: errors.New("bridge: config /x/config.toml:3: listen.imap: bad")})
	if rep.OK() || len(rep.Checks) != 1 || rep.Checks[0].Diagnosis == nil || len(rep.Accounts) != 0 || rep.Config != "/x/config.toml" {
		t.Errorf("report %+v", rep)
	}
}

func TestWriteTextAndScrub(t *testing.T) {
	steps := []Step{
		{Name: "refresh", Title: "Token refresh", Status: Fail, Detail: "refused token SECRET-TOKEN-123",
			Diagnosis: &Diagnosis{ID: "x-id", Title: "A title", Cause: "Because.", Fix: "Line one.\nLine two.", Raw: "SECRET-TOKEN-123"}},
		{Name: "imap-login", Title: "IMAP login", Status: Skipped, Detail: "not run: no token"},
	}
	scrub(steps, "SECRET-TOKEN-123", "")
	rep := &Report{FormatVersion: 1, Config: "c.toml", Checks: []Step{{Name: "config", Title: "Config file", Status: Pass, OK: true, Detail: "valid"}},
		Accounts: []AccountReport{{Email: "a@b.test", Steps: steps}}}
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	if strings.Contains(out, "SECRET-TOKEN-123") {
		t.Errorf("a secret survived scrub:\n%s", out)
	}
	for _, want := range []string{"✓ Config file", "a@b.test\n", "  ✗ Token refresh", "A title [x-id]", "Fix:   Line one.\n", "           Line two.", "  - IMAP login", "1 check failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
}

// TestRunUntrustedCertificate: the server's certificate comes from a CA
// the roots do not hold, as behind a TLS-inspecting proxy; the TLS step
// fails, names the certificate presented and points at upstream_ca_file.
func TestRunUntrustedCertificate(t *testing.T) {
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := bridgetest.NewPOP3(bridgetest.POP3Options{TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = ""
pop3 = "127.0.0.1:0"
smtp = ""

[[account]]
email = "a@b.test"
client_id = "app"
pop3 = %q
`, srv.Addr()))
	rep := Run(context.Background(), Options{Config: cfg, Store: &memStore{m: map[string]tokens.Entry{}}, Roots: x509.NewCertPool(), Timeout: 5 * time.Second})
	s := stepOf(t, rep.Accounts[0].Steps, "pop3-tls")
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "upstream-tls" || !strings.Contains(s.Diagnosis.Fix, "upstream_ca_file") {
		t.Fatalf("pop3-tls: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if !strings.Contains(s.Detail, "bridge test CA") {
		t.Errorf("the detail does not name the presented certificate's issuer: %q", s.Detail)
	}
}

// TestRunTakesTheRunningBridgesToken: with Options.Token, the refresh
// step takes the running bridge's token and its refusal (classified as
// the bridge's own would be), and refreshes here only when the bridge
// says it holds no tokens for the account.
func TestRunTakesTheRunningBridgesToken(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = ""
pop3 = ""
smtp = ""

[[account]]
email = "a@b.test"
client_id = "app"
token_url = %q
`, idp.TokenURL("common")))
	_, rt, _ := idp.Issue("a@b.test")
	st := &memStore{m: map[string]tokens.Entry{"a@b.test": {RefreshToken: rt, Password: "local-pass-1234567890"}}}
	access, _, exp := idp.Issue("a@b.test")
	run := func(token func(context.Context, string) (*oauth2.Token, error)) Step {
		rep := Run(context.Background(), Options{Config: cfg, Store: st, Token: token, Timeout: 5 * time.Second})
		return stepOf(t, rep.Accounts[0].Steps, "refresh")
	}

	var asked string
	s := run(func(_ context.Context, email string) (*oauth2.Token, error) {
		asked = email
		return &oauth2.Token{AccessToken: access, Expiry: exp}, nil
	})
	if s.Status != Pass || !strings.Contains(s.Detail, "running bridge") || asked != "a@b.test" || idp.RefreshRequests() != 0 {
		t.Errorf("from the bridge: %s %q, asked for %q, %d refreshes", s.Status, s.Detail, asked, idp.RefreshRequests())
	}

	refused := fmt.Errorf("tokens: a@b.test must sign in again: %w", errors.Join(tokens.ErrNeedsLogin,
		&tokens.Error{Account: "a@b.test", Op: "refresh", Status: 400, Code: "invalid_grant", AADSTS: 700082}))
	s = run(func(context.Context, string) (*oauth2.Token, error) { return nil, refused })
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "token-expired-inactive" || idp.RefreshRequests() != 0 {
		t.Errorf("refused by the bridge: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}

	s = run(func(context.Context, string) (*oauth2.Token, error) {
		return nil, fmt.Errorf("%w: the server stopped", ErrRefreshHere)
	})
	if s.Status != Pass || strings.Contains(s.Detail, "running bridge") || idp.RefreshRequests() != 1 {
		t.Errorf("no bridge after all: %s %q, %d refreshes", s.Status, s.Detail, idp.RefreshRequests())
	}
}
