package doctor

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// tunnelProxy is an HTTP proxy that wants Basic credentials ann:pw, opens
// CONNECT tunnels, refuses the ports in refuse with 403, and keeps the
// targets asked for.
type tunnelProxy struct {
	mu      sync.Mutex
	refuse  map[string]bool
	targets []string
}

func (p *tunnelProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	p.targets = append(p.targets, r.Host)
	_, port, _ := net.SplitHostPort(r.Host)
	refused := p.refuse[port]
	p.mu.Unlock()
	if r.Method != http.MethodConnect {
		http.Error(w, "CONNECT only", http.StatusMethodNotAllowed)
		return
	}
	if r.Header.Get("Proxy-Authorization") != "Basic YW5uOnB3" { // ann:pw
		w.WriteHeader(http.StatusProxyAuthRequired)
		return
	}
	if refused {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	up, err := net.DialTimeout("tcp", r.Host, 5*time.Second)
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
		defer c.Close()
		defer up.Close()
		go io.Copy(c, up)
		io.Copy(up, c)
	}()
}

// TestRunThroughProxy: with a proxy set, doctor shows the hop: the proxy
// reachable (with the user it is given and where its password comes
// from), then each server reached through a tunnel with the proxy's
// answer, and the token refresh through it too. A refused tunnel, a
// missing proxy password and an unreachable proxy are the proxy's
// diagnoses, and the steps that need the hop are skipped.
func TestRunThroughProxy(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{})
	defer idp.Close()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	pop, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: idp.Validate, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	if err != nil {
		t.Fatal(err)
	}
	defer pop.Close()
	p := &tunnelProxy{refuse: map[string]bool{}}
	ps := httptest.NewServer(p)
	defer ps.Close()
	proxyAddr := strings.TrimPrefix(ps.URL, "http://")
	cfg := loadConfig(t, fmt.Sprintf(`[listen]
imap = ""
pop3 = "127.0.0.1:0"
smtp = ""

[network]
proxy = "http://ann@%s"

[[account]]
email = "a@b.test"
client_id = "app"
pop3 = %q
token_url = %q
`, proxyAddr, pop.Addr(), idp.TokenURL("common")))
	_, rt, _ := idp.Issue("a@b.test")
	st := &memStore{m: map[string]tokens.Entry{
		"a@b.test":               {RefreshToken: rt, Password: "local-pass-1234567890"},
		"proxy:ann@" + proxyAddr: {Password: "pw"},
	}}
	run := func() []Step {
		return Run(context.Background(), Options{Config: cfg, Store: st, Roots: ca.Pool, Timeout: 5 * time.Second}).Accounts[0].Steps
	}

	steps := run()
	for _, name := range []string{"proxy", "refresh", "pop3-reach", "pop3-tls", "pop3-login"} {
		if s := stepOf(t, steps, name); s.Status != Pass {
			t.Errorf("step %s: %s %q %+v", name, s.Status, s.Detail, s.Diagnosis)
		}
	}
	if s := stepOf(t, steps, "proxy"); !strings.Contains(s.Detail, "the HTTP proxy "+proxyAddr+" (user ann, password from the token store)") {
		t.Errorf("proxy step: %q", s.Detail)
	}
	s := stepOf(t, steps, "pop3-reach")
	if s.Title != "POP3 server reachable through the proxy" || !strings.Contains(s.Detail, `opened a tunnel to `+pop.Addr()) ||
		!strings.Contains(s.Detail, `"HTTP/1.1 200 Connection established"`) {
		t.Errorf("pop3-reach: %q %q", s.Title, s.Detail)
	}
	p.mu.Lock()
	targets := strings.Join(p.targets, " ")
	p.mu.Unlock()
	if want := strings.TrimPrefix(idp.URL(), "http://") + " " + pop.Addr(); targets != want {
		t.Errorf("CONNECT targets %q, want %q (the refresh, then POP3)", targets, want)
	}

	_, port, _ := net.SplitHostPort(pop.Addr())
	p.mu.Lock()
	p.refuse[port] = true
	p.mu.Unlock()
	steps = run()
	s = stepOf(t, steps, "pop3-reach")
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "proxy-refused" || !strings.Contains(s.Detail, "403 Forbidden") ||
		!strings.Contains(s.Diagnosis.Fix, "ConnectPort "+port) {
		t.Errorf("refused tunnel: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
	if s := stepOf(t, steps, "pop3-tls"); s.Status != Skipped {
		t.Errorf("pop3-tls after a refused tunnel: %s", s.Status)
	}

	st.Delete("proxy:ann@" + proxyAddr)
	steps = run()
	for _, name := range []string{"proxy", "refresh"} {
		s := stepOf(t, steps, name)
		if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "proxy-auth-required" || !strings.Contains(s.Diagnosis.Fix, "bridge proxy-password a@b.test") {
			t.Errorf("%s without the proxy password: %s %q %+v", name, s.Status, s.Detail, s.Diagnosis)
		}
	}
	if s := stepOf(t, steps, "pop3-reach"); s.Status != Skipped {
		t.Errorf("pop3-reach without the proxy password: %s", s.Status)
	}

	ps.Close()
	st.Put("proxy:ann@"+proxyAddr, tokens.Entry{Password: "pw"})
	steps = run()
	if s := stepOf(t, steps, "proxy"); s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "proxy-unreachable" || !strings.Contains(s.Diagnosis.Cause, proxyAddr) {
		t.Errorf("proxy gone: %s %q %+v", s.Status, s.Detail, s.Diagnosis)
	}
}
