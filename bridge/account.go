package bridge

import (
	"strings"

	"github.com/mailbridge/bridge/bridge/diag"
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
}

// TokenAccount is the account whose tokens this one uses.
func (a *Account) TokenAccount() string {
	if a.TokenFrom != "" {
		return a.TokenFrom
	}
	return a.Email
}

// Personal reports whether this looks like an Outlook.com (consumer)
// account, whose fixes live in Outlook.com settings rather than an admin
// centre.
func (a *Account) Personal() bool {
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
	d := diag.Account{Email: a.Email, Personal: a.Personal(), Tenant: a.Tenant, ClientID: a.ClientID}
	if a.Mailbox != a.Email {
		d.Mailbox = a.Mailbox
	}
	if a.TokenFrom != "" {
		d.Delegate = a.TokenFrom
	}
	return d
}
