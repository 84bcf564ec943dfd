package doctor

import (
	"fmt"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// certWarn is how long before its end a stored app certificate is warned
// about.
const certWarn = 30 * 24 * time.Hour

// storedApp checks an app-only account's stored credential: present,
// readable and, for a certificate, within its validity by this machine's
// clock. The credential is kept to be scrubbed from the report.
func (tc *tokenCheck) storedApp(e tokens.Entry) Step {
	tc.refresh = e.AppCredential
	who, store := tc.a.Email, tc.o.Store.Name()
	switch {
	case e.NeedsLogin != "":
		return fail(tc.needsLogin(e.NeedsLogin), "the store marks the app credential of %s as refused: %s", who, e.NeedsLogin)
	case e.AppCredential == "":
		return fail(tc.needsLogin("no app secret or certificate is stored"), "no app secret or certificate for %s in the %s store", who, store)
	}
	c, err := tokens.ParseAppCredential(e.AppCredential)
	if err != nil {
		return fail(tc.needsLogin("the stored app credential cannot be read"), "the app credential of %s in the %s store cannot be read: %v", who, store, err)
	}
	when := "at an unknown time"
	if !e.Updated.IsZero() {
		when = e.Updated.Local().Format(time.DateTime)
	}
	if c.Cert == nil {
		return pass("an app client secret is in the %s store, saved %s (the admin centre shows when it expires)", store, when)
	}
	detail := fmt.Sprintf("an app certificate is in the %s store, saved %s: thumbprint %s, valid until %s",
		store, when, c.Thumbprint(), c.Cert.NotAfter.Local().Format(time.DateTime))
	now := tc.o.Now()
	e2, _ := diag.Lookup("app-certificate-refused")
	d := fromDiag(e2.For(tc.diagAccount()))
	switch {
	case now.After(c.Cert.NotAfter):
		d.Cause = "The stored certificate expired on " + c.Cert.NotAfter.Local().Format(time.DateOnly) + "; Microsoft refuses assertions signed with it."
		return fail(d, "%s (expired)", detail)
	case c.Cert.NotAfter.Sub(now) < certWarn:
		d.Title = "The app's certificate expires soon"
		d.Cause = "The stored certificate expires on " + c.Cert.NotAfter.Local().Format(time.DateOnly) + "; the account stops working then."
		return warn(d, "%s (in %s)", detail, roughly(c.Cert.NotAfter.Sub(now)))
	}
	return pass("%s", detail)
}

// checkAppClaims shows what an app-only token grants: the app, its
// service principal (the object id Exchange's New-ServicePrincipal wants)
// and its roles, and warns when a role a checked protocol needs is
// missing.
func checkAppClaims(token string, a *bridge.Account, protos []bridge.Proto, now time.Time) Step {
	g, ok := tokens.ReadAppGrant(token)
	if !ok {
		return warn(&Diagnosis{
			ID:    "token-not-app",
			Kind:  "app",
			Title: "The token is not an app-only token",
			Cause: "The account is app-only (auth = \"app\"), but its access token is not a readable app-only token.",
			Fix:   "Check tenant, client_id and token_url for " + a.Email + ", then run `bridge login " + a.Email + " --app`.",
		}, "not an app-only token")
	}
	c, _ := ParseClaims(token)
	detail := fmt.Sprintf("app-only, for app %s, service principal (enterprise application object id) %s, tenant %s; roles %s; expires %s",
		orNone(g.AppID), orNone(g.ServicePrincipal), orNone(c.Tenant), orNone(strings.Join(g.Roles, " ")), expiryText(c.Expiry, now))
	var missing []string
	for _, p := range protos {
		if r := diag.AppRole(p); !g.HasRole(r) {
			missing = append(missing, r)
		}
	}
	if len(missing) == 0 {
		return pass("%s", detail)
	}
	tenant := orNone(a.Tenant)
	fix := "An administrator adds the application permissions " + strings.Join(missing, ", ") +
		": Microsoft Entra admin centre > App registrations > the app (" + a.ClientID + ") > API permissions > Add a permission > " +
		"APIs my organization uses > Office 365 Exchange Online > Application permissions, then \"Grant admin consent\" " +
		"(or https://login.microsoftonline.com/" + tenant + "/adminconsent?client_id=" + a.ClientID + ")."
	for _, m := range missing {
		if m == diag.AppRole(bridge.SMTP) {
			fix += " Where the organisation grants SMTP through RBAC for Applications instead, the token carries no SMTP.SendAsApp role " +
				"and `New-ManagementRoleAssignment -Role \"Application SMTP.SendAsApp\" -App " + a.ClientID + " -CustomResourceScope SCOPE` " +
				"is what SMTP needs; the SMTP login below tells."
		}
	}
	return warn(&Diagnosis{
		ID:    "token-role-missing",
		Kind:  "admin",
		Title: "The app's token lacks a mail permission",
		Cause: "The app-only token does not carry " + strings.Join(missing, ", ") + ", so Exchange refuses the matching login.",
		Fix:   fix,
	}, "%s", detail)
}
