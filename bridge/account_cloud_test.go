package bridge

import (
	"reflect"
	"testing"

	"github.com/mailbridge/bridge/bridge/config"
)

// TestResolveAccountsClouds: what the bridge would use for each kind of
// account: the sign-in endpoints, the scopes, the mail servers and how SMTP
// starts TLS.
func TestResolveAccountsClouds(t *testing.T) {
	outlook := func(res string) []string {
		return []string{res + "/IMAP.AccessAsUser.All", res + "/POP.AccessAsUser.All", res + "/SMTP.Send", "offline_access"}
	}
	cases := []struct {
		name               string
		acct               config.Account
		auth, token        string
		scopes             []string
		imap, pop3, smtp   string
		implicit, personal bool
	}{
		{"work, global", config.Account{Email: "ann@contoso.com", Tenant: "organizations"},
			"https://login.microsoftonline.com/organizations/oauth2/v2.0/authorize", "https://login.microsoftonline.com/organizations/oauth2/v2.0/token",
			outlook("https://outlook.office.com"), "outlook.office365.com:993", "outlook.office365.com:995", "smtp.office365.com:587", false, false},
		{"outlook.com", config.Account{Email: "bob@outlook.com", Tenant: "consumers"},
			"https://login.microsoftonline.com/consumers/oauth2/v2.0/authorize", "https://login.microsoftonline.com/consumers/oauth2/v2.0/token",
			outlook("https://outlook.office.com"), "outlook.office365.com:993", "outlook.office365.com:995", "smtp-mail.outlook.com:587", false, true},
		{"GCC High", config.Account{Email: "ann@agency.gov", Tenant: "agency.onmicrosoft.us", Cloud: "usgov"},
			"https://login.microsoftonline.us/agency.onmicrosoft.us/oauth2/v2.0/authorize", "https://login.microsoftonline.us/agency.onmicrosoft.us/oauth2/v2.0/token",
			outlook("https://outlook.office365.us"), "outlook.office365.us:993", "outlook.office365.us:995", "smtp.office365.us:587", false, false},
		{"21Vianet", config.Account{Email: "ann@contoso.partner.onmschina.cn", Cloud: "china"},
			"https://login.partner.microsoftonline.cn/common/oauth2/v2.0/authorize", "https://login.partner.microsoftonline.cn/common/oauth2/v2.0/token",
			outlook("https://partner.outlook.cn"), "partner.outlook.cn:993", "partner.outlook.cn:995", "partner.outlook.cn:587", false, false},
		{"GCC High with an IMAP override", config.Account{Email: "ann@dod.mil", Tenant: "organizations", Cloud: "usgov", IMAP: "outlook-dod.office365.us:993"},
			"https://login.microsoftonline.us/organizations/oauth2/v2.0/authorize", "https://login.microsoftonline.us/organizations/oauth2/v2.0/token",
			outlook("https://outlook.office365.us"), "outlook-dod.office365.us:993", "outlook.office365.us:995", "smtp.office365.us:587", false, false},
		{"gmail", config.Account{Email: "cat@gmail.com", Provider: "gmail", ClientID: "x.apps.googleusercontent.com", ClientSecret: "s"},
			"https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
			[]string{"https://mail.google.com/"}, "imap.gmail.com:993", "pop.gmail.com:995", "smtp.gmail.com:465", true, false},
		{"gmail on 587", config.Account{Email: "cat@gmail.com", Provider: "gmail", ClientSecret: "s", SMTP: "smtp.gmail.com:587"},
			"https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
			[]string{"https://mail.google.com/"}, "imap.gmail.com:993", "pop.gmail.com:995", "smtp.gmail.com:587", false, false},
		{"implicit TLS on another port", config.Account{Email: "dan@example.org", Provider: "custom", IMAP: "mail.example.org:993", SMTP: "127.0.0.1:2465", SMTPTLS: "implicit",
			AuthURL: "https://id.example.org/auth", TokenURL: "https://id.example.org/token"},
			"https://id.example.org/auth", "https://id.example.org/token", nil, "mail.example.org:993", "", "127.0.0.1:2465", true, false},
		{"STARTTLS on 465", config.Account{Email: "cat@gmail.com", Provider: "gmail", ClientSecret: "s", SMTPTLS: "starttls"},
			"https://accounts.google.com/o/oauth2/v2/auth", "https://oauth2.googleapis.com/token",
			[]string{"https://mail.google.com/"}, "imap.gmail.com:993", "pop.gmail.com:995", "smtp.gmail.com:465", false, false},
		{"custom on 465", config.Account{Email: "dan@example.org", Provider: "custom", IMAP: "mail.example.org:993", SMTP: "mail.example.org:465",
			AuthURL: "https://id.example.org/auth", TokenURL: "https://id.example.org/token"},
			"https://id.example.org/auth", "https://id.example.org/token", nil, "mail.example.org:993", "", "mail.example.org:465", true, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg := config.Default()
			cfg.Accounts = []config.Account{c.acct}
			if err := cfg.Validate(); err != nil {
				t.Fatal(err)
			}
			accs, err := ResolveAccounts(cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := accs[0]
			p := a.Provider
			if p.AuthURL != c.auth || p.TokenURL != c.token {
				t.Errorf("endpoints %s %s, want %s %s", p.AuthURL, p.TokenURL, c.auth, c.token)
			}
			if !reflect.DeepEqual(p.Scopes, c.scopes) {
				t.Errorf("scopes %v, want %v", p.Scopes, c.scopes)
			}
			if a.Server(IMAP) != c.imap || a.Server(POP3) != c.pop3 || a.Server(SMTP) != c.smtp {
				t.Errorf("servers %s %s %s, want %s %s %s", a.Server(IMAP), a.Server(POP3), a.Server(SMTP), c.imap, c.pop3, c.smtp)
			}
			if p.SMTPImplicitTLS != c.implicit {
				t.Errorf("SMTP implicit TLS %v, want %v", p.SMTPImplicitTLS, c.implicit)
			}
			if a.Personal() != c.personal || a.Diag().Personal != c.personal {
				t.Errorf("personal %v, want %v", a.Personal(), c.personal)
			}
		})
	}
}
