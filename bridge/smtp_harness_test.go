package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens"
)

// Accounts of the SMTP environment: smtpShared is a shared mailbox that
// borrows smtpUser's tokens.
const (
	smtpUser   = "alice@example.com"
	smtpOther  = "bob@example.com"
	smtpShared = "shared@example.com"
)

// smtpEnvOptions adjust newSMTPEnv.
type smtpEnvOptions struct {
	Fake     bridgetest.SMTPOptions // Validate and TLS are filled in
	Front    func(*FrontOptions)
	SlotWait time.Duration // 0 keeps the default
}

// smtpEnv is the SMTP front end on the shared harness, in front of
// bridgetest's imitation of Exchange's submission service, with a plain
// (STARTTLS) and an implicit-TLS listener.
type smtpEnv struct {
	*harness
	t       *testing.T
	fake    *bridgetest.SMTP
	srv     *SMTPServer
	plain   string
	implTLS string
}

func newSMTPEnv(t *testing.T, o smtpEnvOptions) *smtpEnv {
	t.Helper()
	t.Cleanup(leakCheck(t))
	h := newHarness(t, smtpUser, smtpOther)
	o.Fake.Validate = h.Tokens.Validate
	o.Fake.TLS = h.UpstreamTLS
	fake, err := bridgetest.NewSMTP(o.Fake)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := fake.Close(); err != nil {
			t.Errorf("fake close: %v", err)
		}
	})
	h.setServer(SMTP, fake.Addr())

	// The shared mailbox: its own local password, alice's tokens.
	pw, err := tokens.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Store.Put(smtpShared, tokens.Entry{Password: pw}); err != nil {
		t.Fatal(err)
	}
	shared := *h.account(smtpUser)
	shared.Email, shared.Mailbox, shared.TokenFrom = smtpShared, smtpShared, smtpUser
	h.mu.Lock()
	h.accounts[smtpShared] = &shared
	h.passwords[smtpShared] = pw
	accts := make([]*Account, 0, len(h.accounts))
	for _, a := range h.accounts {
		accts = append(accts, a)
	}
	h.mu.Unlock()
	h.B.SetAccounts(accts)

	fo := FrontOptions{TLS: h.Local}
	if o.Front != nil {
		o.Front(&fo)
	}
	env := &smtpEnv{harness: h, t: t, fake: fake, srv: NewSMTPServer(h.B, fo)}
	if o.SlotWait > 0 {
		env.srv.slotWait.Store(int64(o.SlotWait))
	}
	var wg sync.WaitGroup
	for _, implicit := range []bool{false, true} {
		ln := h.listen()
		if implicit {
			env.implTLS = ln.Addr().String()
		} else {
			env.plain = ln.Addr().String()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := env.srv.Serve(ln, implicit); !errors.Is(err, errClosed) {
				t.Errorf("Serve: %v", err)
			}
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := env.srv.Shutdown(ctx); err != nil {
			t.Errorf("Shutdown: %v", err)
		}
		wg.Wait()
		var extra []string
		if tok, err := h.B.Source(h.account(smtpUser)).Token(ctx); err == nil {
			extra = append(extra, tok.AccessToken, string(xoauth2.Encoded(smtpUser, tok.AccessToken)))
		}
		h.checkLogs(extra...)
	})
	return env
}

func (e *smtpEnv) clientTLS() *tls.Config {
	cfg := e.ClientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	return cfg
}

// dial connects a go-smtp client: STARTTLS on the plain listener, or
// implicit TLS.
func (e *smtpEnv) dial(implicit bool) *smtp.Client {
	e.t.Helper()
	var c *smtp.Client
	var err error
	if implicit {
		c, err = smtp.DialTLS(e.implTLS, e.clientTLS())
	} else {
		c, err = smtp.DialStartTLS(e.plain, e.clientTLS())
	}
	if err != nil {
		e.t.Fatal(err)
	}
	c.CommandTimeout = 30 * time.Second
	e.t.Cleanup(func() { c.Close() })
	return c
}

// login dials and logs in as email with AUTH PLAIN.
func (e *smtpEnv) login(email string) *smtp.Client {
	e.t.Helper()
	c := e.dial(false)
	if err := c.Auth(sasl.NewPlainClient("", email, e.password(email))); err != nil {
		e.t.Fatalf("AUTH PLAIN as %s: %v", email, err)
	}
	return c
}

// wire is a raw line-level client for exchanges go-smtp's client cannot
// produce (bare AUTH LOGIN, a client vanishing mid-DATA).
type wire struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func (e *smtpEnv) wire() *wire {
	e.t.Helper()
	c, err := net.DialTimeout("tcp", e.plain, 5*time.Second)
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	w := &wire{t: e.t, c: c, br: bufio.NewReader(c)}
	e.t.Cleanup(func() { c.Close() })
	if g := w.reply(); !strings.HasPrefix(g, "220 ") {
		e.t.Fatalf("greeting %q", g)
	}
	return w
}

func (w *wire) send(line string) {
	w.t.Helper()
	if _, err := w.c.Write([]byte(line + "\r\n")); err != nil {
		w.t.Fatal(err)
	}
}

// reply reads one reply, joining continuation lines, and returns its last
// line.
func (w *wire) reply() string {
	w.t.Helper()
	for {
		l, err := w.br.ReadString('\n')
		if err != nil {
			w.t.Fatalf("reading reply: %v", err)
		}
		l = strings.TrimRight(l, "\r\n")
		if len(l) < 4 || l[3] != '-' {
			return l
		}
	}
}

// expect sends line and fails unless the reply starts with want.
func (w *wire) expect(line, want string) string {
	w.t.Helper()
	w.send(line)
	got := w.reply()
	if !strings.HasPrefix(got, want) {
		w.t.Fatalf("%s: got %q, want %q...", strings.Fields(line)[0], got, want)
	}
	return got
}

// smtpErr returns err as an *smtp.SMTPError or fails.
func smtpErr(t *testing.T, err error) *smtp.SMTPError {
	t.Helper()
	var se *smtp.SMTPError
	if !errors.As(err, &se) {
		t.Fatalf("got %v, want an SMTP reply", err)
	}
	return se
}
