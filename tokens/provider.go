package tokens

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// Microsoft's delegated scopes for the three mail protocols, plus
// offline_access so that a refresh token is issued.
var microsoftScopes = []string{
	"https://outlook.office.com/IMAP.AccessAsUser.All",
	"https://outlook.office.com/POP.AccessAsUser.All",
	"https://outlook.office.com/SMTP.Send",
	"offline_access",
}

// Microsoft returns the settings for Microsoft 365 and Outlook.com. tenant is
// "common", "organizations", "consumers" or a tenant id; empty means common.
func Microsoft(tenant string) Provider {
	if tenant == "" {
		tenant = "common"
	}
	base := "https://login.microsoftonline.com/" + tenant + "/oauth2/v2.0/"
	return Provider{
		Name:      "microsoft",
		AuthURL:   base + "authorize",
		TokenURL:  base + "token",
		DeviceURL: base + "devicecode",
		Scopes:    append([]string(nil), microsoftScopes...),
		// preferred_username comes with profile, email with email.
		IdentityScopes: []string{"openid", "profile", "email"},
		IMAP:           "outlook.office365.com:993",
		POP3:           "outlook.office365.com:995",
		SMTP:           "smtp.office365.com:587",
	}
}

// Gmail returns Google's settings. Google does not issue tokens to public
// clients without a secret.
func Gmail() Provider {
	return Provider{
		Name:      "gmail",
		AuthURL:   "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL:  "https://oauth2.googleapis.com/token",
		DeviceURL: "https://oauth2.googleapis.com/device/code",
		Scopes:    []string{"https://mail.google.com/"},
		// Google's ID token carries email with the email scope.
		IdentityScopes: []string{"openid", "email"},
		IMAP:           "imap.gmail.com:993",
		POP3:           "pop.gmail.com:995",
		SMTP:           "smtp.gmail.com:587",
		NeedsSecret:    true,
	}
}

// LookupProvider returns the named provider's defaults. "custom" has none:
// every value must come from the account.
func LookupProvider(name, tenant string) (Provider, error) {
	switch strings.ToLower(name) {
	case "", "microsoft":
		return Microsoft(tenant), nil
	case "gmail":
		return Gmail(), nil
	case "custom":
		return Provider{Name: "custom"}, nil
	}
	return Provider{}, fmt.Errorf("tokens: unknown provider %q (want microsoft, gmail or custom)", name)
}

// Config returns the OAuth client configuration for this provider's
// refreshes. A public client (no secret) sends its id in the request body,
// as Microsoft requires.
func (p Provider) Config(clientID, clientSecret, redirectURL string) *oauth2.Config {
	ep := oauth2.Endpoint{AuthURL: p.AuthURL, TokenURL: p.TokenURL, DeviceAuthURL: p.DeviceURL}
	if clientSecret == "" {
		ep.AuthStyle = oauth2.AuthStyleInParams
	}
	return &oauth2.Config{
		ClientID:     clientID,
		ClientSecret: clientSecret,
		Endpoint:     ep,
		RedirectURL:  redirectURL,
		Scopes:       append([]string(nil), p.Scopes...),
	}
}

// signInConfig is Config with the identity scopes added, for sign-ins.
func (p Provider) signInConfig(clientID, clientSecret, redirectURL string) *oauth2.Config {
	c := p.Config(clientID, clientSecret, redirectURL)
	for _, s := range p.IdentityScopes {
		if !slices.Contains(c.Scopes, s) {
			c.Scopes = append(c.Scopes, s)
		}
	}
	return c
}
