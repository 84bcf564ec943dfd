package tokens

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const testClient = "0b0b0b0b-1111-2222-3333-444444444444"

// lockedBuffer is an io.Writer safe for the flow and the test to share.
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

func testProvider(s *tokenstest.Server) Provider {
	p := Microsoft("")
	p.AuthURL, p.TokenURL, p.DeviceURL = s.AuthURL("common"), s.TokenURL("common"), s.DeviceURL("common")
	return p
}

// browserClient plays the browser: it follows redirects, and reaches
// "localhost" on 127.0.0.1 only, where the flow listens.
func browserClient() *http.Client {
	d := &net.Dialer{Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == "localhost" {
				host = "127.0.0.1"
			}
			return d.DialContext(ctx, "tcp4", net.JoinHostPort(host, port))
		}},
	}
}

// fakeBrowser records what the pretend browser saw.
type fakeBrowser struct {
	authURL *url.URL
	status  int
	page    string
	edit    func(u *url.URL) // changes the sign-in address before visiting it
}

func (b *fakeBrowser) open(raw string) error {
	u, err := url.Parse(raw)
	if err != nil {
		return err
	}
	b.authURL = u
	if b.edit != nil {
		b.edit(u)
	}
	c := browserClient()
	defer c.CloseIdleConnections()
	resp, err := c.Get(u.String())
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	b.status, b.page = resp.StatusCode, string(page)
	return nil
}

func loginOptions(s *tokenstest.Server, b *fakeBrowser, out io.Writer) LoginOptions {
	return LoginOptions{
		Provider: testProvider(s), ClientID: testClient, Email: "adele@contoso.example",
		OpenBrowser: b.open, Out: out, Timeout: 5 * time.Second,
	}
}

func TestBrowserLogin(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	var out bytes.Buffer
	b := &fakeBrowser{}
	tok, err := BrowserLogin(context.Background(), loginOptions(s, b, &out))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Validate("adele@contoso.example", tok.AccessToken); err != nil {
		t.Errorf("access token: %v", err)
	}
	if tok.RefreshToken == "" || tok.RefreshToken != s.LatestRefresh("adele@contoso.example") {
		t.Error("no refresh token, or not the one the platform issued")
	}
	if time.Until(tok.Expiry) < 50*time.Minute {
		t.Errorf("expiry in %v", time.Until(tok.Expiry))
	}
	q := b.authURL.Query()
	for k, want := range map[string]string{
		"login_hint": "adele@contoso.example", "prompt": "select_account",
		"code_challenge_method": "S256", "client_id": testClient, "response_type": "code",
	} {
		if q.Get(k) != want {
			t.Errorf("sign-in address has %s=%q, want %q", k, q.Get(k), want)
		}
	}
	if r := q.Get("redirect_uri"); !strings.HasPrefix(r, "http://localhost:") || !strings.HasSuffix(r, "/") {
		t.Errorf("redirect_uri %q", r)
	}
	if !strings.Contains(q.Get("scope"), "offline_access") {
		t.Errorf("scope %q lacks offline_access", q.Get("scope"))
	}
	if b.status != 200 || !strings.Contains(b.page, "close this tab") {
		t.Errorf("landing page: %d %q", b.status, b.page)
	}
	text := out.String()
	if !strings.Contains(text, "\n"+b.authURL.String()+"\n") {
		t.Errorf("the sign-in address is not printed alone on a line:\n%s", text)
	}
	if strings.Contains(text, tok.AccessToken[:32]) || strings.Contains(text, tok.RefreshToken[:32]) {
		t.Error("a token was written to Out")
	}
	// The redirect listener is gone once the flow returns.
	redirect, _ := url.Parse(q.Get("redirect_uri"))
	if c, err := net.DialTimeout("tcp4", "127.0.0.1:"+redirect.Port(), time.Second); err == nil {
		c.Close()
		t.Error("the redirect listener is still open")
	}
}

// TestBrowserLoginWrongState: answers with another state on the redirect
// port (a forged code or error from any local user, an old tab) get their
// own refusal page and change nothing: no code is redeemed, and the
// sign-in goes on to take the right answer.
func TestBrowserLoginWrongState(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	type answer struct {
		status int
		page   string
	}
	var forged []answer
	b := &fakeBrowser{}
	b.edit = func(u *url.URL) {
		c := browserClient()
		defer c.CloseIdleConnections()
		for _, q := range []string{"code=x&state=forged", "error=access_denied&state=forged", "code=x"} {
			resp, err := c.Get(u.Query().Get("redirect_uri") + "?" + q)
			if err != nil {
				t.Errorf("forged answer %q: %v", q, err)
				continue
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			forged = append(forged, answer{resp.StatusCode, string(page)})
		}
	}
	tok, err := BrowserLogin(context.Background(), loginOptions(s, b, io.Discard))
	if err != nil {
		t.Fatalf("a forged answer ended the sign-in: %v", err)
	}
	if err := s.Validate("adele@contoso.example", tok.AccessToken); err != nil {
		t.Errorf("the sign-in that went on: %v", err)
	}
	if len(forged) != 3 {
		t.Fatalf("%d forged answers made", len(forged))
	}
	for _, f := range forged {
		if f.status != http.StatusBadRequest || !strings.Contains(f.page, "does not belong to the sign-in") || !strings.Contains(f.page, "still waiting") {
			t.Errorf("forged answer: %d %q", f.status, f.page)
		}
	}
	if b.status != http.StatusOK {
		t.Errorf("the real answer's page: %d %q", b.status, b.page)
	}
	if n := s.TokenRequests(); n != 1 {
		t.Errorf("%d token requests, want the real code's only", n)
	}
}

func TestBrowserLoginPlatformRefuses(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	s.FailNextAuthorize("access_denied", 65004, "User declined to consent to access the app.")
	b := &fakeBrowser{}
	_, err := BrowserLogin(context.Background(), loginOptions(s, b, io.Discard))
	var e *Error
	if !errors.As(err, &e) || e.AADSTS != 65004 || e.Code != "access_denied" {
		t.Fatalf("err = %v, want *Error with AADSTS65004", err)
	}
	if b.status != http.StatusBadRequest || !strings.Contains(b.page, "AADSTS65004: User declined") {
		t.Errorf("landing page does not show the platform's error: %d %q", b.status, b.page)
	}
}

func TestBrowserLoginExchangeRefused(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	s.FailNext(1, tokenstest.InvalidGrant(53003, "Access has been blocked by Conditional Access policies."))
	b := &fakeBrowser{}
	_, err := BrowserLogin(context.Background(), loginOptions(s, b, io.Discard))
	var e *Error
	if !errors.As(err, &e) || e.AADSTS != 53003 || e.Op != "code exchange" || e.Status != 400 || !e.NeedsLogin() {
		t.Fatalf("err = %#v, want a code-exchange *Error with AADSTS53003", err)
	}
	if !strings.Contains(b.page, "Conditional Access") {
		t.Errorf("landing page: %q", b.page)
	}
}

func TestBrowserLoginTimeout(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	var out bytes.Buffer
	o := loginOptions(s, &fakeBrowser{}, &out)
	o.OpenBrowser = func(string) error { return errors.New("no display") }
	o.Timeout = 300 * time.Millisecond
	o.Interactive = true
	start := time.Now()
	_, err := BrowserLogin(context.Background(), o)
	if !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "300ms") {
		t.Fatalf("err = %v, want a timeout naming 300ms", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("took %v", d)
	}
	text := out.String()
	if !strings.Contains(text, "Could not open a browser (no display)") || !strings.Contains(text, "\nhttp://127.0.0.1:") {
		t.Errorf("the address was not printed after the browser failed:\n%s", text)
	}
	if !strings.Contains(text, "\r| Waiting for the sign-in") {
		t.Errorf("no spinner on an interactive Out:\n%q", text)
	}
}

func TestBrowserLoginNoBrowserFixedPort(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	out := &lockedBuffer{}
	o := loginOptions(s, &fakeBrowser{}, out)
	o.Port, o.NoBrowser = port, true
	o.OpenBrowser = func(string) error { t.Error("a browser was opened despite NoBrowser"); return nil }

	// The port is taken: a clear error.
	if _, err := BrowserLogin(context.Background(), o); err == nil || !strings.Contains(err.Error(), "cannot listen on 127.0.0.1:"+strconv.Itoa(port)) {
		t.Errorf("busy port: err = %v", err)
	}
	ln.Close()

	// Free again: the person copies the printed address to a browser.
	done := make(chan error, 1)
	go func() {
		_, err := BrowserLogin(context.Background(), o)
		done <- err
	}()
	var addr string
	for i := 0; i < 200 && addr == ""; i++ {
		time.Sleep(10 * time.Millisecond)
		for _, line := range strings.Split(out.String(), "\n") {
			if strings.HasPrefix(line, "http://127.0.0.1:") {
				addr = line
			}
		}
	}
	if addr == "" {
		t.Fatalf("no address printed:\n%s", out.String())
	}
	b := &fakeBrowser{}
	if err := b.open(addr); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if got := b.authURL.Query().Get("redirect_uri"); got != "http://localhost:"+strconv.Itoa(port)+"/" {
		t.Errorf("redirect_uri %q, want port %d", got, port)
	}
	if !strings.Contains(out.String(), "ssh -L "+strconv.Itoa(port)) {
		t.Errorf("no ssh hint for the fixed port:\n%s", out.String())
	}
}

func TestBrowserLoginCancel(t *testing.T) {
	s := tokenstest.New(tokenstest.Options{ClientID: testClient})
	defer s.Close()
	ctx, cancel := context.WithCancel(context.Background())
	o := loginOptions(s, &fakeBrowser{}, io.Discard)
	o.OpenBrowser = func(string) error { cancel(); return nil }
	if _, err := BrowserLogin(ctx, o); !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}
