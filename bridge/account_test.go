package bridge

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/config"
)

func TestResolveAccounts(t *testing.T) {
	c := config.Default()
	c.Accounts = []config.Account{
		{Email: "Me@Example.COM", Tenant: "contoso.onmicrosoft.com", ClientID: "cid"},
		{Email: "Shared@Example.com", Mailbox: "shared@example.com", TokenFrom: "ME@example.com",
			IMAP: "127.0.0.1:9993", SMTP: "127.0.0.1:9587", POP3: "127.0.0.1:9995", TokenURL: "http://127.0.0.1:8080/token",
			Scopes: []string{"a", "b"}},
		{Email: "x@gmail.com", Provider: "gmail", ClientSecret: "s"},
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	accs, err := ResolveAccounts(c)
	if err != nil {
		t.Fatal(err)
	}
	if len(accs) != 3 {
		t.Fatalf("got %d accounts", len(accs))
	}
	me, sh, g := accs[0], accs[1], accs[2]
	if me.Email != "me@example.com" || me.Mailbox != "me@example.com" || me.TokenFrom != "" || me.ClientID != "cid" {
		t.Errorf("me = %+v", me)
	}
	if me.Provider.IMAP != "outlook.office365.com:993" || me.Provider.SMTP != "smtp.office365.com:587" || me.Provider.POP3 != "outlook.office365.com:995" {
		t.Errorf("me servers = %+v", me.Provider)
	}
	if want := "https://login.microsoftonline.com/contoso.onmicrosoft.com/oauth2/v2.0/token"; me.Provider.TokenURL != want {
		t.Errorf("me token url = %q, want %q", me.Provider.TokenURL, want)
	}
	if len(me.Provider.Scopes) != 4 {
		t.Errorf("me scopes = %v", me.Provider.Scopes)
	}
	if sh.Email != "shared@example.com" || sh.TokenFrom != "me@example.com" || sh.TokenAccount() != "me@example.com" {
		t.Errorf("shared = %+v", sh)
	}
	if sh.Provider.IMAP != "127.0.0.1:9993" || sh.Provider.SMTP != "127.0.0.1:9587" || sh.Provider.POP3 != "127.0.0.1:9995" {
		t.Errorf("shared servers = %+v", sh.Provider)
	}
	if sh.Provider.TokenURL != "http://127.0.0.1:8080/token" || !strings.HasSuffix(sh.Provider.AuthURL, "/common/oauth2/v2.0/authorize") {
		t.Errorf("shared endpoints = %q %q", sh.Provider.TokenURL, sh.Provider.AuthURL)
	}
	if !reflect.DeepEqual(sh.Provider.Scopes, []string{"a", "b"}) || sh.Tenant != "common" {
		t.Errorf("shared scopes/tenant = %v %q", sh.Provider.Scopes, sh.Tenant)
	}
	if g.Provider.Name != "gmail" || g.Provider.IMAP != "imap.gmail.com:993" || g.ClientSecret != "s" || g.Tenant != "" {
		t.Errorf("gmail = %+v", g)
	}
	// The overlay must not leak into the provider defaults of later calls.
	c.Accounts[1].Scopes[0] = "changed"
	if sh.Provider.Scopes[0] != "a" {
		t.Error("resolved scopes share the config's slice")
	}
}

// FuzzResolveAccounts loads arbitrary config text and resolves the accounts
// of every config that loads: resolving must not panic, and every problem
// it reports must be a *config.Error.
func FuzzResolveAccounts(f *testing.F) {
	for _, s := range []string{
		"",
		"[[account]]\nemail = \"a@b.c\"\nclient_id = \"x\"\ntoken_from = \"d@e.f\"\n[[account]]\nemail = \"d@e.f\"\n",
		"[[account]]\nemail = \"a@b.c\"\nprovider = \"custom\"\nimap = \"h:993\"\nsmtp = \"h:587\"\nauth_url = \"https://h/a\"\ntoken_url = \"https://h/t\"\n",
		"[[account]]\nemail = \"x@gmail.com\"\nprovider = \"gmail\"\nclient_secret = \"s\"\nscopes = [\"a\"]\n",
		"[[account]]\nemail = \"Me@Example.COM\"\ntenant = \"contoso.onmicrosoft.com\"\nmailbox = \" box@example.com \"\n",
	} {
		f.Add(s)
	}
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, text string) {
		p := filepath.Join(dir, "fuzz.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := config.Load(p)
		if err != nil {
			return
		}
		accs, err := ResolveAccounts(c)
		if err != nil {
			var ce *config.Error
			if !errors.As(err, &ce) {
				t.Fatalf("ResolveAccounts: %T %v", err, err)
			}
			return
		}
		if len(accs) != len(c.Accounts) {
			t.Fatalf("resolved %d accounts of %d", len(accs), len(c.Accounts))
		}
	})
}
