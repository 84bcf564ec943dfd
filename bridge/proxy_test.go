package bridge

import (
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailbridge/bridge/tokens"
)

// connectProxy is an HTTP proxy that opens CONNECT tunnels, keeps the
// targets it was asked for and the first byte each client sent through
// its tunnel, and refuses the ports in refuse with the status given.
type connectProxy struct {
	t      *testing.T
	srv    *httptest.Server
	user   string // "" asks for no credentials
	pass   string
	refuse map[string]string // target port -> status line
	via    string            // host:port every tunnel goes to; "" = the target

	mu      sync.Mutex
	targets []string
	first   map[string]byte // target -> first byte from the client
}

func newConnectProxy(t *testing.T) *connectProxy {
	p := &connectProxy{t: t, refuse: map[string]string{}, first: map[string]byte{}}
	p.srv = httptest.NewServer(http.HandlerFunc(p.serve))
	t.Cleanup(p.srv.Close)
	return p
}

// addr is the proxy's host:port.
func (p *connectProxy) addr() string { return strings.TrimPrefix(p.srv.URL, "http://") }

func (p *connectProxy) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	p.mu.Unlock()
	if p.user != "" {
		want := "Basic " + base64.StdEncoding.EncodeToString([]byte(p.user+":"+p.pass))
		if r.Header.Get("Proxy-Authorization") != want {
			w.Header().Set("Proxy-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusProxyAuthRequired)
			return
		}
	}
	_, port, _ := net.SplitHostPort(r.Host)
	if status, ok := p.refuse[port]; ok {
		code := 0
		for _, c := range status[:3] {
			code = code*10 + int(c-'0')
		}
		w.WriteHeader(code)
		return
	}
	to := r.Host
	if p.via != "" {
		to = p.via
	}
	up, err := net.DialTimeout("tcp", to, 5*time.Second)
	if err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	c, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		up.Close()
		return
	}
	io.WriteString(c, "HTTP/1.1 200 Connection established\r\n\r\n")
	go func() {
		defer up.Close()
		defer c.Close()
		var b [1]byte
		if n, _ := c.Read(b[:]); n == 1 {
			p.mu.Lock()
			p.first[r.Host] = b[0]
			p.mu.Unlock()
			up.Write(b[:])
		}
		go io.Copy(c, up)
		io.Copy(up, c)
	}()
}

// seen returns the CONNECT targets so far.
func (p *connectProxy) seen() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]string(nil), p.targets...)
}

// useProxy gives every account of h the proxy setting.
func (h *harness) useProxy(setting string) {
	h.mu.Lock()
	var accts []*Account
	for _, a := range h.accounts {
		a.Proxy = setting
		accts = append(accts, a)
	}
	h.mu.Unlock()
	h.B.SetAccounts(accts)
}

// TestIMAPThroughProxy: with a proxy set, the token refresh and the IMAP
// upstream both go through CONNECT tunnels; the bridge's TLS to the
// upstream runs inside the tunnel (the first byte the proxy relays is a
// TLS handshake record), so the proxy never sees the session.
func TestIMAPThroughProxy(t *testing.T) {
	h := newHarness(t)
	p := newConnectProxy(t)
	h.useProxy("http://" + p.addr())
	addr, _ := h.startIMAP(FrontOptions{}, false)
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("login through the proxy: %v", err)
	}
	tokenHost := strings.TrimPrefix(h.Tokens.URL(), "http://")
	if got := p.seen(); len(got) != 2 || got[0] != tokenHost || got[1] != h.IMAP.Addr() {
		t.Errorf("CONNECT targets %q, want the token endpoint %s then IMAP %s", got, tokenHost, h.IMAP.Addr())
	}
	p.mu.Lock()
	first := p.first[h.IMAP.Addr()]
	p.mu.Unlock()
	if first != 0x16 {
		t.Errorf("first byte through the IMAP tunnel %#x, want a TLS handshake record (0x16)", first)
	}
	h.checkLogs()
}

// TestIMAPProxyRefusal: a proxy that refuses the IMAP port (but lets the
// token request through) is the proxy's refusal: the client gets NO
// [UNAVAILABLE] with the proxy's diagnosis, which the status keeps.
func TestIMAPProxyRefusal(t *testing.T) {
	h := newHarness(t)
	p := newConnectProxy(t)
	_, port, _ := net.SplitHostPort(h.IMAP.Addr())
	p.refuse[port] = "403 Forbidden"
	h.useProxy("http://" + p.addr())
	addr, _ := h.startIMAP(FrontOptions{}, false)
	err := h.imapLogin(addr)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
		t.Fatalf("login: %v, want NO [UNAVAILABLE]", err)
	}
	if !strings.HasPrefix(ie.Text, "The proxy refused the connection to the mail server; run `bridge doctor "+alice) {
		t.Errorf("reply text %q", ie.Text)
	}
	if id := h.lastIMAP(alice); id != "proxy-refused" {
		t.Errorf("recorded diagnosis %q, want proxy-refused", id)
	}
}

// TestProxyPasswordFromStore: a proxy user named without a password gets
// the one stored under ProxyStoreKey; without one, the login is refused
// with the proxy's diagnosis, which says how to store it.
func TestProxyPasswordFromStore(t *testing.T) {
	h := newHarness(t)
	p := newConnectProxy(t)
	p.user, p.pass = "ann", "pr0xy-pa55"
	h.useProxy("http://ann@" + p.addr())
	addr, _ := h.startIMAP(FrontOptions{}, false)

	err := h.imapLogin(addr)
	var ie *imap.Error
	if !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
		t.Fatalf("login without a stored proxy password: %v, want NO [UNAVAILABLE]", err)
	}
	st := h.B.Status().Accounts[0]
	if d := st.Last[IMAP]; d.ID != "proxy-auth-required" || !strings.Contains(d.Raw, "bridge proxy-password") {
		t.Errorf("diagnosis %q %q, want proxy-auth-required naming `bridge proxy-password`", d.ID, d.Raw)
	}
	if len(p.seen()) != 0 {
		t.Errorf("the proxy was asked %q without credentials", p.seen())
	}

	key := "proxy:ann@" + p.addr()
	if err := h.Store.Put(key, tokens.Entry{Password: p.pass}); err != nil {
		t.Fatal(err)
	}
	if err := h.imapLogin(addr); err != nil {
		t.Fatalf("login with the proxy password stored: %v", err)
	}
	h.checkLogs(p.pass)

	// A wrong stored password is the proxy's 407.
	if err := h.Store.Put(key, tokens.Entry{Password: "wrong-pa55"}); err != nil {
		t.Fatal(err)
	}
	h.B.Reload()
	if err := h.imapLogin(addr); !errors.As(err, &ie) || ie.Code != imap.ResponseCodeUnavailable {
		t.Fatalf("login with a wrong proxy password: %v, want NO [UNAVAILABLE]", err)
	}
	if id := h.lastIMAP(alice); id != "proxy-auth-required" {
		t.Errorf("recorded diagnosis %q, want proxy-auth-required", id)
	}
}
