package config

import (
	"strings"
	"testing"
)

// TestValidateAppAccounts: an app-only account needs its organisation's
// own tenant and the app's client id, keeps its secret out of the file,
// borrows no tokens and lends none; auth takes only delegated or app.
func TestValidateAppAccounts(t *testing.T) {
	const tenant, client = "7d2f0000-0000-4000-8000-000000000001", "0a1b2c3d-0000-4000-8000-00000000abcd"
	app := func(email string) Account {
		return Account{Email: email, Auth: "app", Tenant: tenant, ClientID: client}
	}
	cases := []struct {
		name string
		a    []Account
		key  string // "" = valid
		msg  string
	}{
		{"app", []Account{app("scanner@x.com"), app("printer@x.com")}, "", ""},
		{"domain tenant", []Account{{Email: "s@x.com", Auth: "APP", Tenant: "contoso.onmicrosoft.com", ClientID: client}}, "", ""},
		{"delegated spelled out", []Account{{Email: "me@x.com", Auth: "delegated"}}, "", ""},
		{"unknown auth", []Account{{Email: "me@x.com", Auth: "password"}}, "account[0].auth", `want "delegated"`},
		{"no tenant", []Account{{Email: "s@x.com", Auth: "app", ClientID: client}}, "account[0].tenant", "tenant is not set"},
		{"common", []Account{{Email: "s@x.com", Auth: "app", Tenant: "common", ClientID: client}}, "account[0].tenant", "its organisation's own tenant"},
		{"organizations", []Account{{Email: "s@x.com", Auth: "app", Tenant: "organizations", ClientID: client}}, "account[0].tenant", `"organizations"`},
		{"consumers", []Account{{Email: "s@x.com", Auth: "app", Tenant: "consumers", ClientID: client}}, "account[0].tenant", "tenant id"},
		{"no client", []Account{{Email: "s@x.com", Auth: "app", Tenant: tenant}}, "account[0].client_id", "Application (client) ID"},
		{"secret in file", []Account{func() Account { a := app("s@x.com"); a.ClientSecret = "x"; return a }()}, "account[0].client_secret", "bridge login s@x.com --app"},
		{"gmail", []Account{{Email: "s@gmail.com", Auth: "app", Provider: "gmail", ClientSecret: "x", Tenant: tenant, ClientID: client}}, "account[0].auth", "provider gmail has none"},
		{"borrows", []Account{{Email: "me@x.com"}, func() Account { a := app("s@x.com"); a.TokenFrom = "me@x.com"; return a }()}, "account[1].token_from", "remove token_from"},
		{"lends", []Account{app("s@x.com"), {Email: "shared@x.com", TokenFrom: "s@x.com"}}, "account[1].token_from", "is app-only"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Accounts = tc.a
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			e := findErr(t, configErrors(t, err), tc.key)
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg = %q, want %q", e.Msg, tc.msg)
			}
		})
	}
	if a := app("s@x.com"); !a.IsApp() || (&Account{Auth: "delegated"}).IsApp() {
		t.Error("IsApp")
	}
}

// TestLoadAppAccountFromFile: auth is a key of [[account]] like the
// others, with its line in errors.
func TestLoadAppAccountFromFile(t *testing.T) {
	p := writeConfig(t, "[[account]]\nemail = \"scanner@x.com\"\nauth = \"app\"\ntenant = \"common\"\nclient_id = \"c\"\n")
	_, err := Load(p)
	e := findErr(t, configErrors(t, err), "account[0].tenant")
	if e.Line != 4 {
		t.Errorf("line %d, want 4", e.Line)
	}
}
