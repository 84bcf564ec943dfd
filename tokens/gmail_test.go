package tokens

import (
	"context"
	"errors"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

const (
	gmailClient = "123456789012-abc.apps.googleusercontent.com"
	gmailSecret = "GOCSPX-test"
	gmailUser   = "ann@gmail.example"
)

// gmailOptions signs gmailUser in with Gmail's settings pointed at the
// Google imitation s.
func gmailOptions(s *tokenstest.Server, b *fakeBrowser) LoginOptions {
	p := Gmail()
	p.AuthURL, p.TokenURL, p.DeviceURL = s.AuthURL(""), s.TokenURL(""), s.DeviceURL("")
	return LoginOptions{
		Provider: p, ClientID: gmailClient, ClientSecret: gmailSecret, Email: gmailUser,
		OpenBrowser: b.open, Out: io.Discard, Timeout: 5 * time.Second,
	}
}

func newGoogle(t *testing.T, o tokenstest.Options) *tokenstest.Server {
	t.Helper()
	o.Google, o.ClientID, o.ClientSecret = true, gmailClient, gmailSecret
	s := tokenstest.New(o)
	t.Cleanup(s.Close)
	return s
}

// TestGmailBrowserLogin: the sign-in asks for offline access and the
// consent page, so every sign-in (not only an account's first) gets a
// refresh token, and the Source refreshes with it although Google never
// rotates it.
func TestGmailBrowserLogin(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	for i := range 2 {
		b := &fakeBrowser{}
		tok, err := BrowserLogin(context.Background(), gmailOptions(s, b))
		if err != nil {
			t.Fatalf("sign-in %d: %v", i+1, err)
		}
		if tok.RefreshToken == "" {
			t.Fatalf("sign-in %d: no refresh token", i+1)
		}
		q := b.authURL.Query()
		for k, want := range map[string]string{"access_type": "offline", "prompt": "consent", "login_hint": gmailUser} {
			if q.Get(k) != want {
				t.Errorf("sign-in address has %s=%q, want %q", k, q.Get(k), want)
			}
		}
		if got := SignedInAs(tok); got != gmailUser {
			t.Errorf("SignedInAs = %q", got)
		}
		if i == 1 {
			store, err := NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
			if err != nil {
				t.Fatal(err)
			}
			if err := store.Put(gmailUser, Entry{RefreshToken: tok.RefreshToken}); err != nil {
				t.Fatal(err)
			}
			o := gmailOptions(s, b)
			src := NewSource(SourceOptions{Account: gmailUser, Provider: o.Provider, ClientID: gmailClient, ClientSecret: gmailSecret, Store: store})
			at, err := src.Token(context.Background())
			if err != nil {
				t.Fatalf("refresh: %v", err)
			}
			if err := s.Validate(gmailUser, at.AccessToken); err != nil {
				t.Errorf("refreshed token: %v", err)
			}
			if e, _ := store.Get(gmailUser); e.RefreshToken != tok.RefreshToken {
				t.Error("the stored refresh token changed, though Google does not rotate")
			}
		}
	}
}

// TestGmailUntickedMailScope: a person who leaves the mail box unticked on
// Google's consent page gets a sign-in that fails, saying so, instead of
// tokens every mail server refuses.
func TestGmailUntickedMailScope(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{Unticked: []string{GmailScope}})
	b := &fakeBrowser{}
	_, err := BrowserLogin(context.Background(), gmailOptions(s, b))
	if !errors.Is(err, ErrScopeNotGranted) || !strings.Contains(err.Error(), GmailScope) {
		t.Fatalf("err = %v, want ErrScopeNotGranted naming %s", err, GmailScope)
	}
	if b.status != 400 || !strings.Contains(b.page, "Sign-in failed") {
		t.Errorf("landing page %d %q", b.status, b.page)
	}
}

// TestGmailNeedsSecret: Google refuses a Desktop client's code exchange
// without its secret.
func TestGmailNeedsSecret(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	o := gmailOptions(s, &fakeBrowser{})
	o.ClientSecret = ""
	o.OpenBrowser = (&fakeBrowser{}).open
	_, err := BrowserLogin(context.Background(), o)
	var te *Error
	if !errors.As(err, &te) || te.Code != "invalid_request" || te.Description != "client_secret is missing." || te.AADSTS != 0 {
		t.Fatalf("err = %v, want Google's invalid_request", err)
	}
}

// TestGmailDeviceRefused: the device flow is refused before any request,
// because Google refuses the mail scope there, as the imitation shows.
func TestGmailDeviceRefused(t *testing.T) {
	s := newGoogle(t, tokenstest.Options{})
	o := gmailOptions(s, &fakeBrowser{})
	_, err := DeviceLogin(context.Background(), o)
	if err == nil || !strings.Contains(err.Error(), "invalid_scope") || !strings.Contains(err.Error(), "browser sign-in") {
		t.Fatalf("err = %v, want the refusal with its reason", err)
	}
	if n := s.DeviceRequests(); n != 0 {
		t.Errorf("%d device requests were made", n)
	}
	// What Google would answer had the flow been tried.
	o.Provider.DeviceRefused = ""
	_, err = DeviceLogin(context.Background(), o)
	var te *Error
	if !errors.As(err, &te) || te.Code != "invalid_scope" || !strings.Contains(te.Description, GmailScope) {
		t.Fatalf("err = %v, want Google's invalid_scope", err)
	}
}

func TestMicrosoftClouds(t *testing.T) {
	cases := []struct {
		cloud, tenant          string
		auth, imap, pop3, smtp string
		scope                  string
	}{
		{"", "", "https://login.microsoftonline.com/common/oauth2/v2.0/authorize",
			"outlook.office365.com:993", "outlook.office365.com:995", "smtp.office365.com:587", "https://outlook.office.com/IMAP.AccessAsUser.All"},
		{"global", "consumers", "https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize",
			"outlook.office365.com:993", "outlook.office365.com:995", "smtp-mail.outlook.com:587", "https://outlook.office.com/IMAP.AccessAsUser.All"},
		{"usgov", "contoso.onmicrosoft.us", "https://login.microsoftonline.us/contoso.onmicrosoft.us/oauth2/v2.0/authorize",
			"outlook.office365.us:993", "outlook.office365.us:995", "smtp.office365.us:587", "https://outlook.office365.us/IMAP.AccessAsUser.All"},
		{"China", "organizations", "https://login.partner.microsoftonline.cn/organizations/oauth2/v2.0/authorize",
			"partner.outlook.cn:993", "partner.outlook.cn:995", "partner.outlook.cn:587", "https://partner.outlook.cn/IMAP.AccessAsUser.All"},
	}
	for _, c := range cases {
		p, err := LookupProvider("microsoft", c.tenant, c.cloud)
		if err != nil {
			t.Fatalf("%s/%s: %v", c.cloud, c.tenant, err)
		}
		if p.AuthURL != c.auth || p.IMAP != c.imap || p.POP3 != c.pop3 || p.SMTP != c.smtp || p.Scopes[0] != c.scope {
			t.Errorf("%s/%s: auth %s imap %s pop3 %s smtp %s scope %s", c.cloud, c.tenant, p.AuthURL, p.IMAP, p.POP3, p.SMTP, p.Scopes[0])
		}
		if !strings.HasSuffix(p.TokenURL, "/token") || len(p.Scopes) != 4 || p.Scopes[3] != "offline_access" {
			t.Errorf("%s/%s: token %s scopes %v", c.cloud, c.tenant, p.TokenURL, p.Scopes)
		}
	}
	for _, bad := range []struct{ name, tenant, cloud string }{
		{"microsoft", "consumers", "usgov"}, {"microsoft", "", "mars"}, {"gmail", "", "usgov"}, {"yahoo", "", ""},
	} {
		if _, err := LookupProvider(bad.name, bad.tenant, bad.cloud); err == nil {
			t.Errorf("LookupProvider(%q, %q, %q) accepted", bad.name, bad.tenant, bad.cloud)
		}
	}
}
