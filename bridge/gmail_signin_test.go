package bridge

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// browse plays the person at the browser: it opens the sign-in address and
// follows Google's redirect back to the loopback listener.
func browse(raw string) error {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == "localhost" {
				host = "127.0.0.1"
			}
			return d.DialContext(ctx, "tcp4", net.JoinHostPort(host, port))
		}}}
	defer c.CloseIdleConnections()
	resp, err := c.Get(raw)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}

// TestGmailSignInRefusals: Google's refusals at sign-in, an account that
// is not among an app's test users and a mail scope left unticked, come
// out of the sign-in as the Gmail diagnoses.
func TestGmailSignInRefusals(t *testing.T) {
	for _, c := range []struct {
		name string
		o    tokenstest.Options
		id   string
		fix  string
	}{
		{"not a test user", tokenstest.Options{TestUsers: []string{"tester@gmail.com"}}, "gmail-access-denied", "Test users"},
		{"mail scope unticked", tokenstest.Options{Unticked: []string{tokens.GmailScope}}, "gmail-scope-missing", "Data Access"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.o.Google, c.o.ClientSecret = true, "GOCSPX-signin"
			idp := tokenstest.New(c.o)
			defer idp.Close()
			cfg := config.Default()
			cfg.Accounts = []config.Account{{Email: "ann@gmail.com", Provider: "gmail", ClientID: "x.apps.googleusercontent.com",
				ClientSecret: "GOCSPX-signin", AuthURL: idp.AuthURL(""), TokenURL: idp.TokenURL("")}}
			accs, err := ResolveAccounts(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := accs[0]
			_, err = tokens.BrowserLogin(context.Background(), tokens.LoginOptions{
				Provider: a.Provider, ClientID: a.ClientID, ClientSecret: a.ClientSecret, Email: a.Email,
				OpenBrowser: browse, Out: io.Discard, Timeout: 10 * time.Second,
			})
			if err == nil {
				t.Fatal("the sign-in succeeded")
			}
			d := diag.Classify(err, a.Diag(), time.Now())
			if d.ID != c.id || !strings.Contains(d.Fix, c.fix) || !strings.Contains(d.Fix, "bridge login ann@gmail.com") {
				t.Errorf("diagnosis %s %q, want %s naming %q", d.ID, d.Fix, c.id, c.fix)
			}
		})
	}
}
