package bridge

import (
	"bytes"
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// harness is a Bridge wired to in-process imitations of Microsoft: the
// identity platform (tokenstest) and Exchange's IMAP service (bridgetest),
// both on 127.0.0.1, with TLS upstream verified against a throwaway CA.
// Each account has a refresh token minted by the identity platform and a
// local password in a file store under t.TempDir(). SMTP and POP3 tests
// start their own bridgetest servers (with h.UpstreamTLS) and point the
// accounts at them with h.setServer.
type harness struct {
	t      *testing.T
	Tokens *tokenstest.Server
	IMAP   *bridgetest.IMAP
	CA     *tlsutil.TestCA
	Store  tokens.Store
	B      *Bridge
	// Local is the local listeners' TLS config (certificate for 127.0.0.1
	// from CA); ClientTLS trusts it.
	Local, ClientTLS *tls.Config
	// UpstreamTLS is the certificate config for the imitation upstreams.
	UpstreamTLS *tls.Config

	logs *lockedBuffer

	mu        sync.Mutex
	accounts  map[string]*Account
	passwords map[string]string
}

// newHarness starts the imitations and a Bridge with one account per email
// ("alice@example.com" when none is given). Everything stops at the end of
// the test.
func newHarness(t *testing.T, emails ...string) *harness {
	t.Helper()
	return newHarnessWith(t, harnessOptions{}, emails...)
}

// harnessOptions choose the service newHarnessWith imitates.
type harnessOptions struct {
	// Gmail imitates Google's identity platform and Gmail's IMAP service,
	// and makes the accounts Gmail accounts (tokens.Gmail).
	Gmail bool
	// Personal makes the accounts Outlook.com accounts: tenant consumers,
	// and the identity platform's consumers tenant (opaque tokens).
	Personal bool
	// Tokens are the identity platform's options; Google and Personal
	// follow the fields above.
	Tokens tokenstest.Options
}

// harnessSecret is the client secret of the harness's Gmail accounts.
const harnessSecret = "GOCSPX-harness"

func newHarnessWith(t *testing.T, ho harnessOptions, emails ...string) *harness {
	t.Helper()
	if len(emails) == 0 {
		emails = []string{"alice@example.com"}
	}
	h := &harness{t: t, logs: &lockedBuffer{}, accounts: map[string]*Account{}, passwords: map[string]string{}}

	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatalf("test CA: %v", err)
	}
	h.CA = ca
	upCert, _, _, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatalf("upstream certificate: %v", err)
	}
	h.UpstreamTLS = &tls.Config{Certificates: []tls.Certificate{upCert}, MinVersion: tls.VersionTLS12}
	localCert, _, _, err := ca.Issue("127.0.0.1", "localhost")
	if err != nil {
		t.Fatalf("local certificate: %v", err)
	}
	h.Local = tlsutil.ServerConfig(localCert, 0)
	h.ClientTLS = &tls.Config{RootCAs: ca.Pool, MinVersion: tls.VersionTLS12}

	to := ho.Tokens
	to.Google, to.Personal = ho.Gmail, ho.Personal
	if ho.Gmail {
		to.ClientSecret = harnessSecret
	}
	h.Tokens = tokenstest.New(to)
	t.Cleanup(h.Tokens.Close)

	service := bridgetest.Exchange
	if ho.Gmail {
		service = bridgetest.Gmail
	}
	h.IMAP, err = bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS, Users: emails, Service: service})
	if err != nil {
		t.Fatalf("bridgetest IMAP: %v", err)
	}
	t.Cleanup(func() { h.IMAP.Close() })

	store, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatalf("token store: %v", err)
	}
	h.Store = store

	var accts []*Account
	for _, e := range emails {
		a := &Account{
			Email:    e,
			Mailbox:  e,
			ClientID: "bridge-test-client",
			Tenant:   "organizations",
			Provider: tokens.Provider{
				Name:     "microsoft",
				AuthURL:  h.Tokens.AuthURL("organizations"),
				TokenURL: h.Tokens.TokenURL("organizations"),
				Scopes: []string{"https://outlook.office.com/IMAP.AccessAsUser.All",
					"https://outlook.office.com/POP.AccessAsUser.All",
					"https://outlook.office.com/SMTP.Send", "offline_access"},
			},
		}
		switch {
		case ho.Gmail:
			a.Tenant, a.ClientSecret, a.Provider = "", harnessSecret, tokens.Gmail()
			a.Provider.AuthURL, a.Provider.TokenURL = h.Tokens.AuthURL(""), h.Tokens.TokenURL("")
		case ho.Personal:
			a.Tenant = "consumers"
			a.Provider.AuthURL, a.Provider.TokenURL = h.Tokens.AuthURL("consumers"), h.Tokens.TokenURL("consumers")
		}
		a.Provider.IMAP = h.IMAP.Addr()
		// POP3 and SMTP point nowhere until a test sets them.
		a.Provider.POP3, a.Provider.SMTP, a.Provider.SMTPImplicitTLS = "127.0.0.1:1", "127.0.0.1:1", false
		_, rt, _ := h.Tokens.Issue(e)
		pw, err := tokens.NewPassword()
		if err != nil {
			t.Fatalf("password: %v", err)
		}
		if err := store.Put(e, tokens.Entry{RefreshToken: rt, Password: pw, Updated: time.Now()}); err != nil {
			t.Fatalf("seeding the store: %v", err)
		}
		h.accounts[e] = a
		h.passwords[e] = pw
		accts = append(accts, a)
	}
	h.B, err = New(Options{
		Accounts:      accts,
		Store:         store,
		UpstreamRoots: ca.Pool,
		Logger:        slog.New(slog.NewTextHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		DialTimeout:   5 * time.Second,
	})
	if err != nil {
		t.Fatalf("bridge: %v", err)
	}
	return h
}

// account returns the configured account for email.
func (h *harness) account(email string) *Account {
	h.mu.Lock()
	defer h.mu.Unlock()
	a := h.accounts[email]
	if a == nil {
		h.t.Fatalf("harness: no account %s", email)
	}
	return a
}

// password returns the local password a mail client logs in to email with.
func (h *harness) password(email string) string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.passwords[email]
}

// setPassword stores any local password for email (the generator only
// makes dashed base32; the store holds whatever it is given).
func (h *harness) setPassword(email, pw string) {
	h.t.Helper()
	e, err := h.Store.Get(email)
	if err != nil {
		h.t.Fatalf("store get: %v", err)
	}
	e.Password = pw
	if err := h.Store.Put(email, e); err != nil {
		h.t.Fatalf("store put: %v", err)
	}
	h.mu.Lock()
	h.passwords[email] = pw
	h.mu.Unlock()
	h.B.Reload()
}

// setServer points every account's upstream for p at addr.
func (h *harness) setServer(p Proto, addr string) {
	h.mu.Lock()
	var accts []*Account
	for _, a := range h.accounts {
		switch p {
		case IMAP:
			a.Provider.IMAP = addr
		case POP3:
			a.Provider.POP3 = addr
		case SMTP:
			a.Provider.SMTP = addr
		}
		accts = append(accts, a)
	}
	h.mu.Unlock()
	h.B.SetAccounts(accts)
}

// listen returns a listener on 127.0.0.1:0.
func (h *harness) listen() net.Listener {
	h.t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		h.t.Fatalf("listen: %v", err)
	}
	return ln
}

// startIMAP serves an IMAP front end with o on a fresh loopback listener
// and returns its address; it is shut down at the end of the test.
func (h *harness) startIMAP(o FrontOptions, implicitTLS bool) (string, *IMAPServer) {
	h.t.Helper()
	s := NewIMAPServer(h.B, o)
	ln := h.listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln, implicitTLS)
	}()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String(), s
}

// checkLogs fails the test when the log holds any of the secrets: the
// local passwords, the refresh tokens in the store.
func (h *harness) checkLogs(extra ...string) {
	h.t.Helper()
	logs := h.logs.String()
	secrets := append([]string(nil), extra...)
	h.mu.Lock()
	for e, pw := range h.passwords {
		secrets = append(secrets, pw)
		if en, err := h.Store.Get(e); err == nil && en.RefreshToken != "" {
			secrets = append(secrets, en.RefreshToken)
		}
	}
	h.mu.Unlock()
	for _, s := range secrets {
		if len(s) >= 6 && strings.Contains(logs, s) {
			h.t.Errorf("a secret appears in the log")
		}
	}
}

// lockedBuffer is a bytes.Buffer safe for the concurrent writes of a
// logger.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
