package bridge

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestTokenRequestsFollowEnvironmentProxy: without a proxy setting, token
// requests go through the proxy HTTPS_PROXY names, except to the hosts
// NO_PROXY lists, as Go's http.ProxyFromEnvironment decides; an account
// set to "direct" ignores the environment. Go reads the environment once
// per process, so the check runs in a child process of the test binary
// that sets it before any request.
func TestTokenRequestsFollowEnvironmentProxy(t *testing.T) {
	if os.Getenv("BRIDGE_TEST_ENV_PROXY") == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestTokenRequestsFollowEnvironmentProxy$", "-test.count=1", "-test.v")
		cmd.Env = []string{"BRIDGE_TEST_ENV_PROXY=1", "PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir()}
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestTokenRequestsFollowEnvironmentProxy") {
			t.Fatalf("the check in a child process failed: %v\n%s", err, out)
		}
		return
	}

	// The identity platform answers at https://login.example.invalid
	// behind a TLS front; the proxy routes every tunnel there, since the
	// name resolves nowhere.
	idp := tokenstest.New(tokenstest.Options{})
	t.Cleanup(idp.Close)
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("login.example.invalid", "direct.example.invalid")
	if err != nil {
		t.Fatal(err)
	}
	target, _ := url.Parse(idp.URL())
	front := httptest.NewUnstartedServer(httputil.NewSingleHostReverseProxy(target))
	front.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	front.StartTLS()
	t.Cleanup(front.Close)
	p := newConnectProxy(t)
	p.via = front.Listener.Addr().String()

	t.Setenv("HTTPS_PROXY", "http://"+p.addr())
	t.Setenv("NO_PROXY", "direct.example.invalid")

	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.Pool}
	store, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	account := func(email, host, proxySetting string) *Account {
		_, rt, _ := idp.Issue(email)
		if err := store.Put(email, tokens.Entry{RefreshToken: rt}); err != nil {
			t.Fatal(err)
		}
		return &Account{Email: email, Mailbox: email, ClientID: "bridge-test-client", Proxy: proxySetting,
			Provider: tokens.Provider{Name: "microsoft", TokenURL: strings.Replace(idp.TokenURL("organizations"), idp.URL(), "https://"+host, 1)}}
	}
	viaEnv := account("env@example.com", "login.example.invalid", "")
	noProxy := account("noproxy@example.com", "direct.example.invalid", "")
	direct := account("direct@example.com", "login.example.invalid", "direct")
	b, err := New(Options{Accounts: []*Account{viaEnv, noProxy, direct}, Store: store, HTTPClient: &http.Client{Transport: tr, Timeout: 10 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := b.Source(viaEnv).Token(ctx); err != nil {
		t.Fatalf("refresh through HTTPS_PROXY: %v", err)
	}
	if got := p.seen(); len(got) != 1 || got[0] != "login.example.invalid:443" {
		t.Fatalf("CONNECT targets %q, want the token endpoint through HTTPS_PROXY", got)
	}
	for _, a := range []*Account{noProxy, direct} {
		if _, err := b.Source(a).Token(ctx); err == nil || !strings.Contains(err.Error(), "no such host") && !strings.Contains(err.Error(), "lookup") {
			t.Errorf("%s: refresh %v, want the direct connection's failed name lookup", a.Email, err)
		}
	}
	if got := p.seen(); len(got) != 1 {
		t.Errorf("CONNECT targets %q: NO_PROXY or \"direct\" went through the proxy", got)
	}
}
