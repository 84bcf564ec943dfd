package tokens

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/oauth2"
)

// A microsoftCloud is where one of Microsoft's clouds signs accounts in
// and serves their mail.
type microsoftCloud struct {
	login    string // the identity platform's host
	resource string // the Outlook resource the scopes name
	mail     string // the IMAP and POP3 host
	smtp     string // the SMTP submission host (port 587, STARTTLS)
}

// microsoftClouds are the values of an account's cloud setting
// (docs/microsoft-facts.md §2.2): the worldwide cloud, Microsoft 365 GCC
// High and DoD for US government, and Microsoft 365 operated by 21Vianet.
var microsoftClouds = map[string]microsoftCloud{
	"global": {"login.microsoftonline.com", "https://outlook.office.com", "outlook.office365.com", "smtp.office365.com"},
	"usgov":  {"login.microsoftonline.us", "https://outlook.office365.us", "outlook.office365.us", "smtp.office365.us"},
	"china":  {"login.partner.microsoftonline.cn", "https://partner.outlook.cn", "partner.outlook.cn", "partner.outlook.cn"},
}

// Clouds lists the values of a Microsoft account's cloud setting.
func Clouds() []string { return []string{"global", "usgov", "china"} }

// outlookSMTP is Outlook.com's submission server, for personal accounts.
const outlookSMTP = "smtp-mail.outlook.com:587"

// Microsoft returns the settings for Microsoft 365 and Outlook.com in the
// worldwide cloud. tenant is "common", "organizations", "consumers" or a
// tenant id; empty means common.
func Microsoft(tenant string) Provider {
	p, _ := MicrosoftCloud("", tenant)
	return p
}

// MicrosoftCloud returns the settings for Microsoft 365 in cloud: "global"
// (or empty), "usgov" (GCC High and DoD) or "china" (21Vianet). The
// delegated scopes for the three mail protocols name the cloud's Outlook
// resource, plus offline_access so that a refresh token is issued; the same
// explicit scopes serve personal Outlook.com accounts, which send mail
// through smtp-mail.outlook.com. Personal accounts exist only in the
// worldwide cloud.
func MicrosoftCloud(cloud, tenant string) (Provider, error) {
	if cloud == "" {
		cloud = "global"
	}
	cloud = strings.ToLower(cloud)
	c, ok := microsoftClouds[cloud]
	if !ok {
		return Provider{}, fmt.Errorf("tokens: unknown Microsoft cloud %q (want %s)", cloud, strings.Join(Clouds(), ", "))
	}
	if tenant == "" {
		tenant = "common"
	}
	if strings.EqualFold(tenant, "consumers") && cloud != "global" {
		return Provider{}, fmt.Errorf("tokens: personal Microsoft accounts (tenant consumers) exist only in the global cloud, not in %q", cloud)
	}
	base := "https://" + c.login + "/" + tenant + "/oauth2/v2.0/"
	p := Provider{
		Name:      "microsoft",
		AuthURL:   base + "authorize",
		TokenURL:  base + "token",
		DeviceURL: base + "devicecode",
		Scopes: []string{
			c.resource + "/IMAP.AccessAsUser.All",
			c.resource + "/POP.AccessAsUser.All",
			c.resource + "/SMTP.Send",
			"offline_access",
		},
		// preferred_username comes with profile, email with email.
		IdentityScopes: []string{"openid", "profile", "email"},
		IMAP:           c.mail + ":993",
		POP3:           c.mail + ":995",
		SMTP:           c.smtp + ":587",
		AuthParams:     map[string]string{"prompt": "select_account"},
	}
	if strings.EqualFold(tenant, "consumers") {
		p.SMTP = outlookSMTP
	}
	return p, nil
}

// GmailScope is the only scope Gmail's IMAP, POP and SMTP servers take.
const GmailScope = "https://mail.google.com/"

// Gmail returns Google's settings (docs/google-facts.md). Google issues no
// tokens to a client without its secret, gives a refresh token only to a
// sign-in that asks for offline access and shows the consent page, lets
// the person untick the mail scope there, and refuses the mail scope on
// its device-code flow. SMTP uses port 465 with implicit TLS (RFC 8314
// section 3.3); smtp.gmail.com:587 with STARTTLS works as well.
func Gmail() Provider {
	return Provider{
		Name:      "gmail",
		AuthURL:   "https://accounts.google.com/o/oauth2/v2/auth",
		TokenURL:  "https://oauth2.googleapis.com/token",
		DeviceURL: "https://oauth2.googleapis.com/device/code",
		Scopes:    []string{GmailScope},
		// Google's ID token carries email with the email scope.
		IdentityScopes:  []string{"openid", "email"},
		IMAP:            "imap.gmail.com:993",
		POP3:            "pop.gmail.com:995",
		SMTP:            "smtp.gmail.com:465",
		SMTPImplicitTLS: true,
		NeedsSecret:     true,
		AuthParams:      map[string]string{"access_type": "offline", "prompt": "consent"},
		DeviceRefused: "Google does not allow the mail scope (" + GmailScope + ") on its device-code flow: " +
			"it answers invalid_scope before anyone can sign in; use the browser sign-in",
		MustGrant: []string{GmailScope},
	}
}

// LookupProvider returns the named provider's defaults. "custom" has none:
// every value must come from the account. cloud selects a Microsoft cloud
// (see MicrosoftCloud); other providers take none.
func LookupProvider(name, tenant, cloud string) (Provider, error) {
	switch strings.ToLower(name) {
	case "", "microsoft":
		return MicrosoftCloud(cloud, tenant)
	}
	if cloud != "" {
		return Provider{}, fmt.Errorf("tokens: cloud %q applies to Microsoft accounts only", cloud)
	}
	switch strings.ToLower(name) {
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

// checkGranted fails a sign-in whose answer lists the scopes granted
// without one of p.MustGrant. An answer without a scope field granted what
// was asked (RFC 6749 section 5.1).
func (p Provider) checkGranted(account string, t *oauth2.Token) error {
	granted, _ := t.Extra("scope").(string)
	if granted == "" {
		return nil
	}
	fields := strings.Fields(granted)
	for _, s := range p.MustGrant {
		if !slices.Contains(fields, s) {
			return fmt.Errorf("tokens: sign-in for %s granted %q, without %s, which the mail servers need: %w", account, granted, s, ErrScopeNotGranted)
		}
	}
	return nil
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
