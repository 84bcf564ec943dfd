package doctor

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
)

// Claims are the access-token claims doctor shows. They are read without
// verifying the signature: only Exchange needs to trust the token, and
// doctor only reports what it says.
type Claims struct {
	// Audience is aud: the resource the token is for.
	Audience string
	// Scopes are scp, split.
	Scopes []string
	// User is upn, else preferred_username, else unique_name.
	User string
	// Tenant is tid.
	Tenant string
	// Expiry is exp.
	Expiry time.Time
}

// rawClaims is the JSON of the claims read; aud may be a string or a list
// (RFC 7519 section 4.1.3).
type rawClaims struct {
	Aud        json.RawMessage `json:"aud"`
	Scp        string          `json:"scp"`
	UPN        string          `json:"upn"`
	Preferred  string          `json:"preferred_username"`
	UniqueName string          `json:"unique_name"`
	TID        string          `json:"tid"`
	Exp        json.Number     `json:"exp"`
}

// ParseClaims reads the claims of a JWT access token (RFC 7519) without
// verifying it. ok is false for an opaque token, such as those Microsoft
// issues to personal accounts.
func ParseClaims(token string) (c Claims, ok bool) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return Claims{}, false
	}
	body, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return Claims{}, false
	}
	var raw rawClaims
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.UseNumber()
	if err := dec.Decode(&raw); err != nil {
		return Claims{}, false
	}
	c.Audience = audience(raw.Aud)
	c.Scopes = strings.Fields(raw.Scp)
	c.User = firstOf(raw.UPN, raw.Preferred, raw.UniqueName)
	c.Tenant = raw.TID
	if n, err := raw.Exp.Int64(); err == nil && n > 0 {
		c.Expiry = time.Unix(n, 0)
	}
	return c, true
}

func audience(raw json.RawMessage) string {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return s
	}
	var list []string
	if json.Unmarshal(raw, &list) == nil {
		return strings.Join(list, " ")
	}
	return ""
}

func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// wantScope is the scope each protocol needs, as the last part of a scope
// name (scp lists "IMAP.AccessAsUser.All", requests name it in full).
var wantScope = map[bridge.Proto]string{
	bridge.IMAP: "IMAP.AccessAsUser.All",
	bridge.POP3: "POP.AccessAsUser.All",
	bridge.SMTP: "SMTP.Send",
}

// checkClaims shows what the access token grants and to whom, and warns
// when the logins below are bound to fail because of it.
func checkClaims(token string, a *bridge.Account, protos []bridge.Proto, now time.Time) Step {
	if a.App {
		return checkAppClaims(token, a, protos, now)
	}
	c, ok := ParseClaims(token)
	switch {
	case !ok && a.Provider.Name != "microsoft":
		return pass("opaque (not a JWT), so its scopes and user cannot be shown; the logins below test it")
	case !ok:
		return pass("opaque (not a JWT), so its scopes and user cannot be shown; " +
			"Microsoft issues such tokens to personal accounts (Outlook.com), and the logins below test it")
	}
	detail := fmt.Sprintf("for user %s, tenant %s, audience %s; scopes %s; expires %s",
		orNone(c.User), orNone(c.Tenant), orNone(c.Audience), orNone(strings.Join(c.Scopes, " ")), expiryText(c.Expiry, now))
	want := a.TokenAccount()
	if c.User != "" && !strings.EqualFold(c.User, want) {
		fix := "Run `bridge login " + want + "` and sign in as " + want + " itself, not as an administrator or another account."
		if a.Mailbox != a.Email || a.TokenFrom != "" {
			fix += " To read the shared mailbox " + a.Mailbox + " with the sign-in of " + want +
				", an administrator grants it Full Access: `Add-MailboxPermission -Identity " + a.Mailbox +
				" -User " + want + " -AccessRights FullAccess`."
		}
		return warn(&Diagnosis{
			ID:    "token-user-mismatch",
			Kind:  "user",
			Title: "The token belongs to another user",
			Cause: "The sign-in was made as " + c.User + ", but the bridge uses it for " + want +
				"; Exchange refuses the login or will not open the mailbox (\"User is authenticated but not connected\").",
			Fix: fix,
		}, "%s", detail)
	}
	var missing []string
	for _, p := range protos {
		if c.Scopes != nil && !hasScope(c.Scopes, wantScope[p]) {
			missing = append(missing, wantScope[p])
		}
	}
	if len(missing) > 0 {
		return warn(&Diagnosis{
			ID:    "token-scope-missing",
			Kind:  "app",
			Title: "The token lacks a mail permission",
			Cause: "The token does not grant " + strings.Join(missing, ", ") + ", so the matching login will be refused.",
			Fix: "Remove scopes from the config for " + a.Email + " to get the bridge's defaults (or add the missing ones), " +
				"then run `bridge login " + want + "` and accept the permissions.",
		}, "%s", detail)
	}
	return pass("%s", detail)
}

func hasScope(scopes []string, want string) bool {
	for _, s := range scopes {
		if i := strings.LastIndexByte(s, '/'); i >= 0 {
			s = s[i+1:]
		}
		if strings.EqualFold(s, want) {
			return true
		}
	}
	return false
}

func expiryText(exp, now time.Time) string {
	if exp.IsZero() {
		return "at an unknown time"
	}
	left := exp.Sub(now)
	if left <= 0 {
		return exp.Local().Format(time.DateTime) + " (already expired)"
	}
	return fmt.Sprintf("%s (in %s)", exp.Local().Format(time.DateTime), roughly(left))
}

// roughly words a duration for people: "59 min", "3 h 5 min".
func roughly(d time.Duration) string {
	m := int(d.Round(time.Minute) / time.Minute)
	switch {
	case m < 1:
		return "less than a minute"
	case m < 60:
		return fmt.Sprintf("%d min", m)
	case m%60 == 0:
		return fmt.Sprintf("%d h", m/60)
	}
	return fmt.Sprintf("%d h %d min", m/60, m%60)
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
