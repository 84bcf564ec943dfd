package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// cutProxy forwards TCP connections to target until cut closes them all,
// imitating an upstream that drops in the middle of a session.
type cutProxy struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []net.Conn
	closed bool
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln, target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.DialTimeout("tcp", target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			if p.closed {
				p.mu.Unlock()
				c.Close()
				up.Close()
				continue
			}
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); io.Copy(up, c); up.Close() }()
			go func() { defer p.wg.Done(); io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		p.closed = true
		p.mu.Unlock()
		p.cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) addr() string { return p.ln.Addr().String() }

// cut closes every forwarded connection, both sides.
func (p *cutProxy) cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// expectCloseSoon reads until the connection ends, failing if that takes
// longer than d (a hang).
func expectCloseSoon(t *testing.T, w *imapWire, d time.Duration) {
	t.Helper()
	w.c.SetReadDeadline(time.Now().Add(d))
	_, err := io.Copy(io.Discard, w.br)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("the client connection stayed open %v after the upstream dropped", d)
	}
}

func TestFaultUpstreamDropsMidFetchAndIdle(t *testing.T) {
	h := newHarness(t)
	big := testMessage("big", strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz\r\n", 200000)) // about 7.6 MB
	if err := h.IMAP.Append(alice, "INBOX", big); err != nil {
		t.Fatal(err)
	}
	p := newCutProxy(t, h.IMAP.Addr())
	h.setServer(IMAP, p.addr())
	addr, _ := h.startIMAP(FrontOptions{}, false)
	login := func() *imapWire {
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\na2 SELECT INBOX\r\n")
		w.expectPrefix("a1 OK ")
		for !strings.HasPrefix(w.line(), "a2 ") {
		}
		return w
	}

	t.Run("FETCH", func(t *testing.T) {
		w := login()
		w.send("a3 FETCH 1 BODY[]\r\n")
		if l := w.line(); !strings.HasPrefix(l, "* 1 FETCH ") {
			t.Fatalf("FETCH started with %q", l)
		}
		var part [64 << 10]byte
		if _, err := io.ReadFull(w.br, part[:]); err != nil {
			t.Fatalf("reading the literal: %v", err)
		}
		p.cut()
		expectCloseSoon(t, w, 5*time.Second)
	})
	t.Run("IDLE", func(t *testing.T) {
		w := login()
		w.send("a3 IDLE\r\n")
		w.expectPrefix("+ ")
		p.cut()
		expectCloseSoon(t, w, 5*time.Second)
	})
	if !eventually(5*time.Second, func() bool { return h.B.Status().Sessions[IMAP] == 0 }) {
		t.Errorf("%d sessions still counted after the upstream dropped", h.B.Status().Sessions[IMAP])
	}
}

// TestFaultUpstreamDropsMidData: every message whose DATA the upstream
// broke off gets 451 4.4.2, and none is stored.
func TestFaultUpstreamDropsMidData(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Fake: bridgetest.SMTPOptions{Refusal: bridgetest.DropMidData, DropProbability: 1, Seed: 1}})
	c := e.login(smtpUser)
	for i := range 3 {
		err := smtpSend(c, smtpUser, smtpMessage("dropped-"+itoa(i), strings.Repeat("some text\r\n", 1000)))
		se := smtpErr(t, err)
		if se.Code != 451 || se.EnhancedCode != (smtp.EnhancedCode{4, 4, 2}) {
			t.Errorf("message %d: %d %v %q, want 451 4.4.2", i, se.Code, se.EnhancedCode, se.Message)
		}
	}
	if n := len(e.fake.Messages()); n != 0 {
		t.Errorf("%d messages stored", n)
	}
}

// TestFaultUpstreamTLS: an upstream that does not speak TLS, or presents a
// certificate for another name, is refused with a TLS diagnosis; no
// credentials are sent to it.
func TestFaultUpstreamTLS(t *testing.T) {
	h := newHarness(t)
	wrongCert, _, _, err := h.CA.Issue("wrong.example")
	if err != nil {
		t.Fatal(err)
	}
	wrongName, err := bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: h.Tokens.Validate, Users: []string{alice},
		TLS: &tls.Config{Certificates: []tls.Certificate{wrongCert}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { wrongName.Close() })
	plainUp, err := bridgetest.NewIMAP(bridgetest.IMAPOptions{Validate: h.Tokens.Validate, Users: []string{alice}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { plainUp.Close() })
	addr, _ := h.startIMAP(FrontOptions{}, false)

	for _, up := range []*bridgetest.IMAP{wrongName, plainUp} {
		h.setServer(IMAP, up.Addr())
		w := dialIMAPWire(t, addr)
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\n")
		reply := w.expectPrefix("a1 NO [UNAVAILABLE] ")
		if !strings.Contains(reply, "secure connection") {
			t.Errorf("reply %q does not say the TLS connection failed", reply)
		}
		if id := h.lastIMAP(alice); id != "upstream-tls" {
			t.Errorf("diagnosis %q, want upstream-tls", id)
		}
		if n := up.Logins() + up.FailedLogins(); n != 0 {
			t.Errorf("%d logins reached an upstream that failed TLS", n)
		}
	}

	// SMTP: a server that offers no STARTTLS never sees AUTH.
	noTLS, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: h.Tokens.Validate})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { noTLS.Close() })
	h.setServer(SMTP, noTLS.Addr())
	s := NewSMTPServer(h.B, FrontOptions{})
	ln := h.listen()
	go s.Serve(ln, false)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	c, err := smtp.Dial(ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	se := smtpErr(t, c.Auth(sasl.NewPlainClient("", alice, h.password(alice))))
	if se.Code != 454 || !strings.Contains(se.Message, "secure connection") {
		t.Errorf("SMTP without STARTTLS upstream: %d %q", se.Code, se.Message)
	}
	if len(noTLS.Auths()) != 0 {
		t.Error("AUTH was sent to an upstream without TLS")
	}
}

// TestFaultIdentityPlatform: the token endpoint down, slow or failing with
// 500 keeps the stored refresh token and tells the client to try later.
func TestFaultIdentityPlatform(t *testing.T) {
	h := newHarness(t)
	dead := h.listen()
	deadURL := "http://" + dead.Addr().String() + "/token"
	dead.Close()
	cases := []struct {
		name  string
		setup func(a *Account)
	}{
		{"down", func(a *Account) { a.Provider.TokenURL = deadURL }},
		{"slow", func(a *Account) { h.Tokens.FailNext(5, tokenstest.Slow(2*time.Second)) }},
		{"hanging", func(a *Account) { h.Tokens.FailNext(5, tokenstest.Slow(time.Hour)) }},
		{"500", func(a *Account) { h.Tokens.FailNext(5, tokenstest.ServerError()) }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			// A fresh bridge per case, with a short HTTP timeout and no
			// cached access token.
			a := *h.account(alice)
			tc.setup(&a)
			b, err := New(Options{Accounts: []*Account{&a}, Store: h.Store, UpstreamRoots: h.CA.Pool,
				Logger: h.B.Logger(), HTTPClient: &http.Client{Timeout: 300 * time.Millisecond}})
			if err != nil {
				t.Fatal(err)
			}
			before, err := h.Store.Get(alice)
			if err != nil {
				t.Fatal(err)
			}
			s := NewIMAPServer(b, FrontOptions{})
			ln := h.listen()
			go s.Serve(ln, false)
			defer func() {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				defer cancel()
				s.Shutdown(ctx)
			}()
			w := dialIMAPWire(t, ln.Addr().String())
			w.expectPrefix("* OK ")
			w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\n")
			w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
			reply := w.expectPrefix("a1 NO [UNAVAILABLE] ")
			if !strings.Contains(reply, "bridge doctor") && !strings.Contains(reply, "try again") {
				t.Errorf("reply %q says neither what failed nor what to do", reply)
			}
			after, err := h.Store.Get(alice)
			if err != nil || after.RefreshToken != before.RefreshToken || after.NeedsLogin != "" {
				t.Errorf("the stored sign-in changed (err %v, needs login %q)", err, after.NeedsLogin)
			}
			w.c.Close()
			st := b.Source(&a).State()
			if st.NeedsLogin != "" || !st.HasRefreshToken || st.LastError == "" {
				t.Errorf("token state %+v", st)
			}
			// The identity platform, named by its host, is what could not
			// be reached; not the mail server.
			u, _ := url.Parse(a.Provider.TokenURL)
			if !strings.Contains(reply, "sign-in service at "+u.Host) {
				t.Errorf("reply %q does not name the sign-in service at %s", reply, u.Host)
			}
			d := b.Status().Accounts[0].Last[IMAP]
			if d.ID != "identity-unreachable" || !strings.Contains(d.Fix, "Test-NetConnection "+u.Hostname()+" -Port "+u.Port()) {
				t.Errorf("diagnosis %s, fix %q", d.ID, d.Fix)
			}
		})
	}
	h.checkLogs()
	var _ tokens.Store = h.Store
}
