package diag

import (
	"fmt"

	"github.com/mailbridge/bridge/tokens"
)

const (
	appClient = "0a1b2c3d-0000-4000-8000-00000000abcd"
	appTenant = "7d2f0000-0000-4000-8000-000000000001"
	appSP     = "5e1f0000-0000-4000-8000-0000000000aa"
	scanner   = "scanner@contoso.com"
)

// appUnread is an app-only account whose failed login's token was not
// read.
var appUnread = Account{Email: scanner, App: true, Tenant: appTenant, ClientID: appClient}

// appAcct is an app-only account whose failed login used a token with
// roles (none at all when none are given).
func appAcct(roles ...string) Account {
	a := appUnread
	a.AppGrant = &tokens.AppGrant{Roles: roles, ServicePrincipal: appSP, AppID: appClient}
	return a
}

// appOnlyCases: app-only accounts (docs/microsoft-facts.md §2, §3.8). Exchange
// answers each missing setup step with its generic refusal; the roles of
// the token tell the steps apart.
var appOnlyCases = []classifyCase{
	{"app imap without IMAP.AccessAsApp", imapFail("auth", "AUTHENTICATE failed."), appAcct("POP.AccessAsApp"), "app-permission-missing",
		[]string{"Application permissions > IMAP.AccessAsApp", "Grant admin consent", "https://login.microsoftonline.com/" + appTenant + "/adminconsent?client_id=" + appClient}},
	{"app pop without roles", popFail("auth", "Authentication failure: unknown user name or bad password."), appAcct(), "app-permission-missing",
		[]string{"Application permissions > POP.AccessAsApp"}},
	{"app smtp without SMTP.SendAsApp", smtpLine("auth", "535 5.7.3 Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]"), appAcct("IMAP.AccessAsApp"), "app-smtp-send-as-app",
		[]string{"Application permissions > SMTP.SendAsApp", `New-ManagementRoleAssignment -Role "Application SMTP.SendAsApp" -App ` + appClient}},
	{"app imap with the role: Exchange's steps", imapFail("auth", "AUTHENTICATE failed."), appAcct("IMAP.AccessAsApp"), "app-not-in-exchange",
		[]string{"New-ServicePrincipal -AppId " + appClient + " -ObjectId " + appSP, "Add-MailboxPermission -Identity " + scanner + " -User " + appSP + " -AccessRights FullAccess", "Enterprise applications"}},
	{"app pop, token not read", popFail("auth", "Authentication failure: unknown user name or bad password."), appUnread, "app-not-in-exchange",
		[]string{"New-ServicePrincipal -AppId " + appClient + " -ObjectId ENTERPRISE_APP_OBJECT_ID"}},
	{"app smtp with the role", smtpLine("auth", "535 5.7.3 Authentication unsuccessful [SN2PR00CA0018.namprd00.prod.outlook.com]"), appAcct("SMTP.SendAsApp"), "app-not-in-exchange",
		[]string{"Add-MailboxPermission -Identity " + scanner + " -User " + appSP}},
	{"app imap not connected", imapFail("mailbox", "User is authenticated but not connected."), appUnread, "app-mailbox-permission",
		[]string{"Add-MailboxPermission -Identity " + scanner + " -User ENTERPRISE_APP_OBJECT_ID -AccessRights FullAccess"}},
	{"app smtp switched off keeps its entry", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."),
		appAcct("IMAP.AccessAsApp"), "smtp-auth-disabled-tenant", []string{"Set-TransportConfig -SmtpClientAuthenticationDisabled $false"}},
	{"app expired secret", tokErr("app token", 401, "invalid_client", 7000222, "AADSTS7000222: The provided client secret keys for app '"+appClient+"' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds."),
		appAcct(), "bad-secret", []string{"New client secret", "bridge login " + scanner + " --app", "--certificate FILE"}},
	{"app wrong secret", tokErr("app token", 401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '"+appClient+"'."),
		appAcct(), "bad-secret", []string{"not its Secret ID: `bridge login " + scanner + " --app`"}},
	{"app certificate unknown", tokErr("app token", 401, "invalid_client", 700027, "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was not found.]"),
		appAcct(), "app-certificate-refused", []string{"Certificates & secrets > Certificates", "bridge login " + scanner + " --app --certificate FILE"}},
	{"app certificate expired", tokErr("app token", 401, "invalid_client", 700027, "AADSTS700027: Client assertion contains an invalid signature. [Reason - The key used is expired.]"),
		appAcct(), "app-certificate-refused", []string{"renew it"}},
	{"app assertion clock", tokErr("app token", 401, "invalid_client", 700024, "AADSTS700024: Client assertion is not within its valid time range."),
		appAcct(), "app-assertion-clock", []string{"timedatectl set-ntp true"}},
	{"app common endpoint", tokErr("app token", 400, "invalid_request", 9001023, "AADSTS9001023: The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint."),
		appAcct(), "single-tenant-common", []string{"set tenant for " + scanner + " to the tenant id", "remove token_url"}},
	{"app not in tenant", tokErr("app token", 400, "unauthorized_client", 700016, "AADSTS700016: Application with identifier '"+appClient+"' was not found in the directory 'contoso.com'."),
		appAcct(), "app-not-found", []string{"registered in the tenant " + appTenant, "bridge login " + scanner + " --app"}},
	{"app wrong resource", tokErr("app token", 400, "invalid_resource", 500011, "AADSTS500011: The resource principal named https://graph.microsoft.com was not found in the tenant named contoso."),
		appAcct(), "api-not-available", []string{"https://outlook.office365.com/.default"}},
	{"app no credential stored", fmt.Errorf("tokens: %s has no usable app secret or certificate: no app secret or certificate is stored; run `bridge login %s --app`: %w", scanner, scanner, tokens.ErrNeedsLogin), appAcct(), "app-credential-missing",
		[]string{"bridge login " + scanner + " --app"}},
}
