package bridge

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// Account is one mailbox a client can log in to, with its provider settings
// resolved (defaults plus the account's overrides).
type Account struct {
	// Email is the login name, in lower case.
	Email string
	// Mailbox is the XOAUTH2 user= for IMAP and POP3 (a shared mailbox);
	// it equals Email when not set.
	Mailbox string
	// TokenFrom is the email of the account whose tokens this one borrows
	// (the delegate of a shared mailbox); empty means its own.
	TokenFrom string
	// Provider holds the endpoints, scopes and servers.
	Provider tokens.Provider
	// Tenant is the Microsoft tenant value the account signs in with.
	Tenant string
	// ClientID and ClientSecret identify the app registration.
	ClientID, ClientSecret string
	// SMTPVia is how the SMTP front end submits the account's mail:
	// "smtp", "graph" or "auto" (config smtp_via, lower case).
	SMTPVia string
	// GraphURL is the Microsoft Graph endpoint, without a trailing slash.
	GraphURL string
	// Proxy is the proxy setting in force: the account's own, else
	// [network] proxy. A proxy URL carries the upstream connections and
	// the token requests; "direct" carries nothing; "" lets the mail go
	// direct and the token requests follow the environment (see
	// TokenHTTPClient).
	Proxy string
	// App is true for an app-only account (auth = "app"): its tokens come
	// from the client credentials grant with the app's secret or
	// certificate in the store, and it logs in upstream as Mailbox on
	// every protocol, SMTP included.
	App bool
}

// SourceOptions returns what a token source for this account refreshes
// with; the caller adds the store, the HTTP client, the clock and the
// logger. Only an account that uses its own tokens (TokenFrom empty)
// has a source.
func (a *Account) SourceOptions() tokens.SourceOptions {
	return tokens.SourceOptions{
		Account:      a.TokenAccount(),
		Provider:     a.Provider,
		ClientID:     a.ClientID,
		ClientSecret: a.ClientSecret,
		App:          a.App,
	}
}

// TokenAccount is the account whose tokens this one uses.
func (a *Account) TokenAccount() string {
	if a.TokenFrom != "" {
		return a.TokenFrom
	}
	return a.Email
}

// Service names who runs the account's servers, for replies: "Microsoft",
// "Google", or "The provider" (also for a nil account).
func (a *Account) Service() string {
	if a == nil {
		return diag.ServiceName("custom")
	}
	return diag.ServiceName(a.Provider.Name)
}

// LoginCommand is the command that gives the account a new sign-in:
// `bridge login` for the account whose tokens it uses, with --app for an
// app-only account (a new secret or certificate).
func (a *Account) LoginCommand() string {
	if a.App {
		return "bridge login " + a.Email + " --app"
	}
	return "bridge login " + a.TokenAccount()
}

// UpstreamUser is the XOAUTH2 user= for protocol p: the mailbox, except
// that SMTP logs in as the token's owner (a shared mailbox sends as its
// delegate; Exchange refuses a shared mailbox as the SMTP identity)
// unless the account is app-only, whose token names no user.
func (a *Account) UpstreamUser(p Proto) string {
	if p == SMTP && !a.App {
		return a.TokenAccount()
	}
	return a.Mailbox
}

// Personal reports whether this looks like an Outlook.com (consumer)
// account, whose fixes live in Outlook.com settings rather than an admin
// centre.
func (a *Account) Personal() bool {
	if a.Provider.Name != "" && a.Provider.Name != "microsoft" {
		return false
	}
	if a.Tenant == "consumers" || a.Tenant == "9188040d-6c67-4c5b-b112-36a304b66dad" {
		return true
	}
	at := strings.LastIndexByte(a.Email, '@')
	switch a.Email[at+1:] {
	case "outlook.com", "hotmail.com", "live.com", "msn.com", "outlook.de", "hotmail.co.uk", "hotmail.fr", "live.co.uk":
		return true
	}
	return false
}

// Diag returns what the diagnosis table needs of the account.
func (a *Account) Diag() diag.Account {
	d := diag.Account{Email: a.Email, Personal: a.Personal(), Provider: a.Provider.Name, Tenant: a.Tenant, ClientID: a.ClientID,
		ViaGraph: a.SMTPVia == viaGraph || a.SMTPVia == viaAuto, App: a.App}
	if a.Mailbox != a.Email {
		d.Mailbox = a.Mailbox
	}
	if a.TokenFrom != "" {
		d.Delegate = a.TokenFrom
	}
	d.Servers = map[diag.Proto]string{IMAP: a.Provider.IMAP, POP3: a.Provider.POP3, SMTP: a.Provider.SMTP}
	if u, err := url.Parse(a.Provider.TokenURL); err == nil {
		d.Servers[diag.ProtoToken] = u.Host
	}
	if u, err := url.Parse(a.GraphURL); err == nil && u.Host != "" {
		d.Servers[diag.ProtoGraph] = u.Host
	}
	if u := a.ProxyURL(); u != nil {
		d.Proxy = u.Host
	}
	return d
}

// ResolveAccounts returns the config's accounts with their provider's
// defaults overlaid by the account's own settings. Emails and token_from
// are lower case; an empty mailbox becomes the email.
func ResolveAccounts(c *config.Config) ([]*Account, error) {
	out := make([]*Account, 0, len(c.Accounts))
	for i, a := range c.Accounts {
		p, err := tokens.LookupProvider(a.Provider, a.Tenant, a.Cloud)
		if err != nil {
			return nil, c.ErrorAt(fmt.Sprintf("account[%d].provider", i), err.Error())
		}
		if a.IsApp() {
			p = p.ForApp()
		}
		overlay := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		proxySetting := c.Network.Proxy
		key := "network.proxy"
		if a.Proxy != "" {
			proxySetting, key = a.Proxy, fmt.Sprintf("account[%d].proxy", i)
		}
		if proxySetting != "" && proxySetting != proxy.Direct {
			if _, err := proxy.Parse(proxySetting); err != nil {
				return nil, c.ErrorAt(key, err.Error())
			}
		}
		overlay(&p.IMAP, a.IMAP)
		overlay(&p.SMTP, a.SMTP)
		p.SMTPImplicitTLS = a.SMTPTLS == "implicit" || a.SMTPTLS == "" && SMTPImplicitTLS(p.SMTP)
		overlay(&p.POP3, a.POP3)
		overlay(&p.AuthURL, a.AuthURL)
		overlay(&p.TokenURL, a.TokenURL)
		overlay(&p.DeviceURL, a.DeviceURL)
		if len(a.Scopes) > 0 {
			p.Scopes = append([]string(nil), a.Scopes...)
		}
		acc := &Account{
			Email:        strings.ToLower(strings.TrimSpace(a.Email)),
			Mailbox:      strings.TrimSpace(a.Mailbox),
			TokenFrom:    strings.ToLower(strings.TrimSpace(a.TokenFrom)),
			Provider:     p,
			Tenant:       a.Tenant,
			ClientID:     a.ClientID,
			ClientSecret: a.ClientSecret,
			SMTPVia:      strings.ToLower(a.SMTPVia),
			GraphURL:     strings.TrimRight(a.GraphURL, "/"),
			Proxy:        proxySetting,
			App:          a.IsApp(),
		}
		if acc.SMTPVia == "" {
			acc.SMTPVia = viaSMTP
		}
		if acc.GraphURL == "" {
			acc.GraphURL = DefaultGraphURL
		}
		if acc.Mailbox == "" {
			acc.Mailbox = acc.Email
		}
		if acc.Tenant == "" && p.Name == "microsoft" {
			acc.Tenant = "common"
		}
		out = append(out, acc)
	}
	return out, nil
}
