package diag

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens"
	"golang.org/x/oauth2"
)

const (
	user     = "ann@contoso.com"
	shared   = "sales@contoso.com"
	personal = "bob@outlook.com"
)

var (
	work     = Account{Email: user}
	delegate = Account{Email: shared, Mailbox: shared, Delegate: user}
	consumer = Account{Email: personal, Personal: true, Tenant: "consumers"}
)

func imapFail(stage, text string) *Failure { return &Failure{Proto: "imap", Stage: stage, Text: text} }
func popFail(stage, text string) *Failure  { return &Failure{Proto: "pop3", Stage: stage, Text: text} }

// smtpLine is a reply as a front end may hand it over: the whole line.
func smtpLine(stage, line string) *Failure { return &Failure{Proto: "smtp", Stage: stage, Text: line} }

func tokErr(op string, status int, code string, aadsts int, desc string) *tokens.Error {
	return &tokens.Error{Account: user, Op: op, Status: status, Code: code, AADSTS: aadsts, Description: desc}
}

type classifyCase struct {
	name string
	err  error
	acct Account
	id   string
	// fix lists substrings the rendered Fix must contain.
	fix []string
}

// classifyCases holds one case or more per table entry, each built from the
// upstream's real words (microsoft-facts.md §0, §1, §2).
var classifyCases = []classifyCase{
	// IMAP and POP3.
	{"imap generic NO", imapFail("auth", "AUTHENTICATE failed."), work, "imap-auth-failed",
		[]string{"Set-CASMailbox -Identity " + user + " -ImapEnabled $true", "Manage email apps > IMAP", "bridge login " + user}},
	{"imap NO for shared mailbox names delegate", imapFail("auth", "AUTHENTICATE failed."), delegate, "imap-auth-failed",
		[]string{"Set-CASMailbox -Identity " + user + " -ImapEnabled $true"}},
	{"imap NO personal", imapFail("auth", "AUTHENTICATE failed."), consumer, "imap-auth-failed",
		[]string{"Settings > Mail > Forwarding and IMAP > Let devices and apps use IMAP"}},
	{"imap not connected", imapFail("mailbox", "User is authenticated but not connected."), work, "imap-not-connected",
		[]string{"bridge login " + user, "-AccessRights FullAccess"}},
	{"imap not connected shared", imapFail("mailbox", "User is authenticated but not connected."), delegate, "imap-not-connected",
		[]string{"Add-MailboxPermission -Identity " + shared + " -User " + user + " -AccessRights FullAccess", "bridge login " + user}},
	{"imap BYE token expired", imapFail("session", "Session invalidated - AccessTokenExpired"), work, "imap-token-expired",
		[]string{"refreshes the token"}},
	{"pop ERR", popFail("auth", "Authentication failure: unknown user name or bad password."), work, "pop-auth-failed",
		[]string{"Set-CASMailbox -Identity " + user + " -PopEnabled $true", "Manage email apps > POP"}},
	{"pop ERR personal", popFail("auth", "Authentication failure: unknown user name or bad password."), consumer, "pop-auth-failed",
		[]string{"Let devices and apps use POP"}},
	{"imap unknown", imapFail("select", "Mailbox does not exist"), work, "imap-failed", []string{"bridge doctor " + user}},
	{"pop unknown", popFail("retr", "Unknown message"), work, "pop-failed", []string{"bridge doctor " + user}},

	// SMTP login.
	{"smtp disabled tenant", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."),
		work, "smtp-auth-disabled-tenant",
		[]string{"Set-TransportConfig -SmtpClientAuthenticationDisabled $false", "Set-CASMailbox -Identity " + user + " -SmtpClientAuthenticationDisabled $false", "Turn off SMTP AUTH protocol"}},
	{"smtp disabled tenant structured", &Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.139", Text: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."},
		delegate, "smtp-auth-disabled-tenant",
		[]string{"Set-CASMailbox -Identity " + user + " -SmtpClientAuthenticationDisabled $false"}},
	{"smtp disabled tenant personal", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."),
		consumer, "smtp-auth-disabled-tenant", []string{"Outlook.com has no setting"}},
	{"smtp disabled mailbox", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."),
		work, "smtp-auth-disabled-mailbox",
		[]string{"Set-CASMailbox -Identity " + user + " -SmtpClientAuthenticationDisabled $false", "Manage email apps > Authenticated SMTP"}},
	{"smtp 5.7.3", smtpLine("auth", "535 5.7.3 Authentication unsuccessful [AM0PR06CA0126.eurprd06.prod.outlook.com 2024-02-14T14:50:26.590Z 08DC2D372B4C3DED]"),
		work, "smtp-auth-failed", []string{"bridge login " + user, "SMTP.Send"}},
	{"smtp 5.7.3 shared", &Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.3", Text: "Authentication unsuccessful [DB9PR02CA0001.eurprd02.prod.outlook.com]"},
		delegate, "smtp-auth-failed", []string{"Add-RecipientPermission -Identity " + shared + " -Trustee " + user + " -AccessRights SendAs"}},
	{"smtp bare 535", &Failure{Proto: "smtp", Stage: "auth", Code: 535, Text: "Authentication failed"}, work, "smtp-auth-failed", []string{"bridge login " + user}},
	{"smtp security defaults", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, user is locked by your organization's security defaults policy. Contact your administrator."),
		work, "smtp-security-defaults", []string{"Manage security defaults", "bridge login " + user}},
	{"smtp criteria", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, the request did not meet the criteria to be authenticated successfully. Contact your administrator."),
		work, "smtp-criteria", []string{"Sign-in logs", "Conditional Access"}},
	{"smtp basic disabled", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, basic authentication is disabled."),
		work, "smtp-basic-auth", []string{"bridge doctor " + user}},
	{"smtp 5.7.30", smtpLine("auth", "550 5.7.30 Basic authentication is not supported for Client Submission."),
		work, "smtp-basic-auth", []string{"127.0.0.1"}},

	// SMTP envelope and data.
	{"smtp 5.7.57", smtpLine("mail", "530 5.7.57 Client not authenticated to send mail. [AM0PR06CA0126.eurprd06.prod.outlook.com]"),
		work, "smtp-not-authenticated", []string{"127.0.0.1"}},
	{"smtp 5.7.57 anonymous", smtpLine("mail", "530 5.7.57 SMTP; Client was not authenticated to send anonymous mail during MAIL FROM"),
		work, "smtp-not-authenticated", nil},
	{"smtp 5.7.60", smtpLine("data", "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
		work, "smtp-sendas-denied", []string{"Add-RecipientPermission -Identity FROM-ADDRESS -Trustee " + user + " -AccessRights SendAs"}},
	{"smtp 5.7.60 shared", smtpLine("data", "550 5.7.60 SMTP; Client does not have permissions to send as this sender"),
		delegate, "smtp-sendas-denied", []string{"Add-RecipientPermission -Identity " + shared + " -Trustee " + user + " -AccessRights SendAs"}},
	{"smtp 5.2.252 SendAsDenied", smtpLine("data", "554 5.2.252 SendAsDenied; ann@contoso.com not allowed to send as sales@contoso.com; STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message due to a permanent exception with message [BeginDiagnosticData]"),
		delegate, "smtp-sendas-denied", []string{"-AccessRights SendAs"}},
	{"smtp 5.2.0 SendAsDenied old form", smtpLine("data", "554 5.2.0 STOREDRV.Submission.Exception:SendAsDeniedException.MapiExceptionSendAsDenied; Failed to process message"),
		work, "smtp-sendas-denied", nil},
	{"smtp 432 threads", smtpLine("data", "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
		work, "smtp-concurrency", []string{"Retry"}},
	{"smtp 432 connections", smtpLine("auth", "432 4.3.2 concurrent connection limit exceeded"),
		work, "smtp-concurrency", nil},
	{"smtp quota", smtpLine("data", "554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception"),
		work, "smtp-quota", []string{"24-hour"}},
	{"smtp error throttled", smtpLine("rcpt", "550 5.2.253 Sender throttled due to continuous invalid license errors"),
		work, "smtp-error-throttled", []string{"wait"}},
	{"smtp 5.2.252 throttled", smtpLine("rcpt", "550 5.2.252 Sender throttled due to continuous send as denied errors"),
		work, "smtp-error-throttled", nil},
	{"smtp tenant threshold", smtpLine("mail", "550 5.7.705 Access denied, tenant has exceeded threshold"),
		work, "smtp-tenant-blocked", []string{"Microsoft support"}},
	{"smtp unregistered domain", smtpLine("mail", "550 5.7.750 Service unavailable. Client blocked from sending from unregistered domains."),
		work, "smtp-tenant-blocked", nil},
	{"smtp bad outbound sender", smtpLine("mail", "550 5.1.8 Access denied, bad outbound sender"),
		work, "smtp-sender-blocked", []string{"Restricted entities"}},
	{"smtp unknown", smtpLine("rcpt", "550 5.1.10 RESOLVER.ADR.RecipientNotFound; Recipient not found by SMTP address lookup"),
		work, "smtp-failed", []string{"bridge doctor " + user}},

	// Identity platform: the sign-in itself.
	{"invalid_grant generic", tokErr("refresh", 400, "invalid_grant", 0, "AADSTS9999999: something new."), work, "token-needs-login",
		[]string{"bridge login " + user}},
	{"needs login sentinel", fmt.Errorf("bridge: %s: token account is not configured: %w", user, tokens.ErrNeedsLogin), work, "token-needs-login",
		[]string{"bridge login " + user}},
	{"700082", tokErr("refresh", 400, "invalid_grant", 700082, "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00."),
		work, "token-expired-inactive", []string{"bridge login " + user}},
	{"700082 stored reason", fmt.Errorf("tokens: %s: %w (AADSTS700082 at last refresh)", user, tokens.ErrNeedsLogin), work, "token-expired-inactive",
		[]string{"bridge login " + user}},
	{"70008 refresh", tokErr("refresh", 400, "invalid_grant", 70008, "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."),
		work, "token-expired-inactive", nil},
	{"50173", tokErr("refresh", 400, "invalid_grant", 50173, "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed."),
		work, "token-revoked", []string{"bridge login " + user}},
	{"50133", tokErr("refresh", 400, "invalid_grant", 50133, "AADSTS50133: Session is invalid due to expiration or recent password change."),
		work, "token-revoked", nil},
	{"65001", tokErr("refresh", 400, "invalid_grant", 65001, "AADSTS65001: The user or administrator has not consented to use the application."),
		Account{Email: user, Tenant: "contoso.onmicrosoft.com", ClientID: "11111111-2222-3333-4444-555555555555"}, "consent-required",
		[]string{"https://login.microsoftonline.com/contoso.onmicrosoft.com/adminconsent?client_id=11111111-2222-3333-4444-555555555555"}},
	{"90094 common tenant", tokErr("code exchange", 400, "invalid_grant", 90094, "AADSTS90094: The grant requires admin permission."),
		Account{Email: user, Tenant: "common"}, "consent-required",
		[]string{"https://login.microsoftonline.com/organizations/adminconsent?client_id=YOUR_CLIENT_ID"}},
	{"65001 personal", tokErr("refresh", 400, "invalid_grant", 65001, "AADSTS65001: The user or administrator has not consented to use the application."),
		consumer, "consent-required", []string{"bridge login " + personal}},
	{"65004", tokErr("code exchange", 400, "access_denied", 65004, "AADSTS65004: User declined to consent to access the app."),
		work, "consent-declined", []string{"bridge login " + user}},
	{"50076", tokErr("refresh", 400, "invalid_grant", 50076, "AADSTS50076: Due to a configuration change made by your administrator, or because you moved to a new location, you must use multi-factor authentication to access."),
		work, "mfa-required", []string{"bridge login " + user}},
	{"70043", tokErr("refresh", 400, "invalid_grant", 70043, "AADSTS70043: The refresh token has expired or is invalid due to sign-in frequency checks by conditional access. The token was issued on X and the maximum allowed lifetime for this request is 86400."),
		work, "mfa-required", []string{"sign-in frequency"}},
	{"50079 personal", tokErr("refresh", 400, "invalid_grant", 50079, "AADSTS50079: Due to a configuration change made by your administrator, or because you moved to a new location, you must enroll in multi-factor authentication."),
		consumer, "mfa-required", []string{"account.microsoft.com/security"}},
	{"53003", tokErr("refresh", 400, "invalid_grant", 53003, "AADSTS53003: Access has been blocked by Conditional Access policies. The access policy does not allow token issuance."),
		work, "conditional-access", []string{"Sign-in logs, filters by " + user}},
	{"53000", tokErr("code exchange", 400, "invalid_grant", 53000, "AADSTS53000: Device is not in required device state: compliant."),
		work, "conditional-access", nil},
	{"530035", tokErr("refresh", 400, "invalid_grant", 530035, "AADSTS530035: Access has been blocked by security defaults."),
		work, "security-defaults", []string{"Manage security defaults"}},
	{"530032", tokErr("refresh", 400, "invalid_grant", 530032, "AADSTS530032: User blocked due to risk on home tenant."),
		work, "tenant-security-policy", []string{"Sign-in logs"}},
	{"50053", tokErr("code exchange", 400, "invalid_grant", 50053, "AADSTS50053: The account is locked, you've tried to sign in too many times with an incorrect user ID or password."),
		work, "account-locked", []string{"bridge login " + user}},
	{"50055", tokErr("code exchange", 400, "invalid_grant", 50055, "AADSTS50055: The password is expired."),
		work, "password-expired", []string{"bridge login " + user}},
	{"50057", tokErr("refresh", 400, "invalid_grant", 50057, "AADSTS50057: The user account is disabled."),
		work, "account-disabled", []string{"Block sign-in"}},
	{"50126", tokErr("code exchange", 400, "invalid_grant", 50126, "AADSTS50126: Error validating credentials due to invalid username or password."),
		work, "bad-password", []string{"not the bridge's local password"}},
	{"70008 code exchange", tokErr("code exchange", 400, "invalid_grant", 70008, "AADSTS70008: The provided authorization code or refresh token has expired due to inactivity."),
		work, "code-expired", []string{"bridge login " + user}},
	{"54005", tokErr("code exchange", 400, "invalid_grant", 54005, "AADSTS54005: OAuth2 Authorization code was already redeemed, please retry with a new valid code or use an existing refresh token."),
		work, "code-expired", nil},
	{"device expired_token", tokErr("device code", 400, "expired_token", 70019, "AADSTS70019: Verification code expired."),
		work, "code-expired", nil},
	{"identity 5xx", tokErr("refresh", 503, "temporarily_unavailable", 0, "AADSTS90033: A transient error has occurred. Please try again."),
		work, "identity-unreachable", []string{"login.microsoftonline.com"}},
	{"identity network", &tokens.Error{Account: user, Op: "refresh", Err: &net.DNSError{Err: "no such host", Name: "login.microsoftonline.com", IsNotFound: true}},
		work, "identity-unreachable", nil},
	{"token unknown", tokErr("refresh", 400, "invalid_request", 9002313, "AADSTS9002313: Invalid request. Request is malformed or invalid."),
		work, "token-failed", []string{"login.microsoftonline.com/error"}},

	// Identity platform: the app registration and account settings.
	{"700016", tokErr("code exchange", 400, "unauthorized_client", 700016, "AADSTS700016: Application with identifier 'x' was not found in the directory 'Contoso'."),
		work, "app-not-found", []string{"client_id"}},
	{"7000112", tokErr("refresh", 400, "unauthorized_client", 7000112, "AADSTS7000112: Application 'x'(Thunderbird) is disabled."),
		work, "app-disabled", []string{"Allow public client flows"}},
	{"65002", tokErr("code exchange", 400, "invalid_client", 65002, "AADSTS65002: Consent between first party application 'x' and first party resource 'y' must be configured via preauthorization."),
		work, "app-first-party", []string{"client_id"}},
	{"7000218", tokErr("refresh", 401, "invalid_client", 7000218, "AADSTS7000218: The request body must contain the following parameter: 'client_assertion' or 'client_secret'."),
		work, "app-confidential", []string{"Allow public client flows", "Mobile and desktop applications", "http://localhost"}},
	{"700025", tokErr("refresh", 401, "invalid_client", 700025, "AADSTS700025: Client is public so neither 'client_assertion' nor 'client_secret' should be presented."),
		work, "public-client-secret", []string{"Remove client_secret"}},
	{"7000215", tokErr("refresh", 401, "invalid_client", 7000215, "AADSTS7000215: Invalid client secret provided."),
		work, "bad-secret", []string{"Certificates & secrets"}},
	{"7000222", tokErr("refresh", 401, "invalid_client", 7000222, "AADSTS7000222: The provided client secret keys for app 'x' are expired."),
		work, "bad-secret", nil},
	{"50011", tokErr("code exchange", 400, "invalid_request", 50011, "AADSTS50011: The redirect URI 'http://localhost:5000/' specified in the request does not match the redirect URIs configured for the application."),
		work, "redirect-mismatch", []string{"http://localhost", "bridge login --device " + user}},
	{"70011 mixed scopes", tokErr("code exchange", 400, "invalid_scope", 70011, "AADSTS70011: The provided request must include a 'scope' input parameter. One or more scopes in 'https://graph.microsoft.com/Mail.Read https://outlook.office.com/IMAP.AccessAsUser.All' are not compatible with each other."),
		work, "bad-scope", []string{"https://outlook.office.com/SMTP.Send", "offline_access"}},
	{"70000 scopes", tokErr("refresh", 400, "invalid_grant", 70000, "AADSTS70000: The request was denied because one or more scopes requested are unauthorized or expired."),
		work, "bad-scope", nil},
	{"70000 plain", tokErr("refresh", 400, "invalid_grant", 70000, "AADSTS70000: Provided grant is invalid or malformed."),
		work, "token-needs-login", nil},
	{"900144", tokErr("refresh", 400, "invalid_request", 900144, "AADSTS900144: The request body must contain the following parameter: 'scope'."),
		work, "bad-scope", nil},
	{"500011", tokErr("code exchange", 400, "invalid_resource", 500011, "AADSTS500011: The resource principal named https://outlook.office.com was not found in the tenant named Contoso."),
		work, "api-not-available", []string{"IMAP.AccessAsUser.All"}},
	{"500208", tokErr("code exchange", 400, "invalid_request", 500208, "AADSTS500208: The domain is not a valid login domain for the account type."),
		work, "personal-account-not-allowed", []string{"tenant to organizations"}},
	{"not enabled for consumers", tokErr("code exchange", 400, "unauthorized_client", 0, "The client does not exist or is not enabled for consumers. If you are the application developer, configure a new application through the App Registrations in the Azure Portal."),
		consumer, "personal-account-not-allowed", []string{"personal Microsoft accounts", "tenant to consumers or common for " + personal}},
	{"personal sign-in page", tokErr("code exchange", 0, "invalid_request", 0, "You can't sign in here with a personal account. Use your work or school account instead."),
		consumer, "personal-account-not-allowed", nil},
	{"9002332", tokErr("code exchange", 400, "invalid_request", 9002332, "AADSTS9002332: Application 'x' is configured for use by Azure Active Directory users only. Please do not use the /consumers endpoint to serve this request."),
		consumer, "personal-account-not-allowed", nil},
	{"50194", tokErr("code exchange", 400, "invalid_request", 50194, "AADSTS50194: Application 'x' is not configured as a multi-tenant application. Usage of the /common endpoint is not supported for such applications created after '10/15/2018'. Use a tenant-specific endpoint or configure the application to be multi-tenant."),
		work, "single-tenant-common", []string{"tenant id"}},
	{"90002", tokErr("code exchange", 400, "invalid_request", 90002, "AADSTS90002: Tenant 'contsoo.com' not found."),
		work, "tenant-not-found", []string{"Set tenant for " + user}},

	// Network.
	{"dial dns", &Failure{Proto: "imap", Stage: "dial", Text: "outlook.office365.com:993",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "outlook.office365.com", IsNotFound: true}}},
		work, "upstream-unreachable", []string{"Test-NetConnection outlook.office365.com -Port 993"}},
	{"dial refused", &Failure{Proto: "smtp", Stage: "dial", Text: "smtp.office365.com:587",
		Err: fmt.Errorf("dial tcp 52.97.1.1:587: connect: connection refused")},
		work, "upstream-unreachable", []string{"nc -vz smtp.office365.com 587"}},
	{"bare dns error", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "outlook.office365.com"}},
		work, "upstream-unreachable", []string{"Test-NetConnection outlook.office365.com -Port PORT"}},
	{"tls unknown authority", &Failure{Proto: "imap", Stage: "tls", Text: "outlook.office365.com:993", Err: x509.UnknownAuthorityError{}},
		work, "upstream-tls", []string{"upstream_ca_file"}},
	{"tls eof", &Failure{Proto: "pop3", Stage: "tls", Text: "outlook.office365.com:995", Err: errors.New("EOF")},
		work, "upstream-tls", []string{"upstream_ca_file"}},

	// Nothing recognisable.
	{"unknown", errors.New("something odd"), work, "unknown", []string{"bridge doctor " + user}},
}

func TestClassify(t *testing.T) {
	for _, c := range classifyCases {
		t.Run(c.name, func(t *testing.T) {
			d := Classify(c.err, c.acct)
			if d.ID != c.id {
				t.Fatalf("Classify(%q) = %s, want %s", c.err, d.ID, c.id)
			}
			e, ok := Lookup(d.ID)
			if !ok {
				t.Fatalf("Lookup(%q) failed", d.ID)
			}
			if d.Kind != e.Kind || d.Title == "" || d.Cause == "" || d.Fix == "" {
				t.Errorf("incomplete diagnosis: %+v", d)
			}
			if d.Raw == "" {
				t.Errorf("raw text lost for %q", c.err)
			}
			if d.At.IsZero() {
				t.Error("At not set")
			}
			for _, want := range c.fix {
				if !strings.Contains(d.Fix, want) {
					t.Errorf("fix lacks %q:\n%s", want, d.Fix)
				}
			}
			for _, text := range []string{d.Title, d.Cause, d.Fix} {
				if i := strings.IndexByte(text, '{'); i >= 0 && strings.Contains(text[i:], "}") {
					t.Errorf("unfilled placeholder in %q", text)
				}
			}
		})
	}
}

// TestEveryEntryTested fails when an entry is added without a test case.
func TestEveryEntryTested(t *testing.T) {
	tested := map[string]bool{}
	for _, c := range classifyCases {
		tested[c.id] = true
	}
	for _, id := range IDs() {
		if !tested[id] {
			t.Errorf("entry %q has no case in classifyCases", id)
		}
	}
}

func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range table {
		if seen[e.ID] {
			t.Errorf("duplicate ID %q", e.ID)
		}
		seen[e.ID] = true
		if e.Title == "" || e.Cause == "" || e.Fix == "" || e.Kind == "" {
			t.Errorf("%s: title, cause, fix and kind are required", e.ID)
		}
		if e.ID != unknownID && len(e.Match) == 0 {
			t.Errorf("%s: no matchers", e.ID)
		}
		for i, m := range e.Match {
			if m.score(&evidence{}) != 0 {
				t.Errorf("%s: matcher %d matches an empty failure", e.ID, i)
			}
		}
	}
	if _, ok := Lookup("no-such-entry"); ok {
		t.Error("Lookup of a missing ID succeeded")
	}
}

func TestRawText(t *testing.T) {
	line := "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
	if d := Classify(smtpLine("auth", line), work); d.Raw != line {
		t.Errorf("raw = %q, want %q", d.Raw, line)
	}
	structured := &Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.139",
		Text: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}
	if d := Classify(structured, work); d.Raw != line {
		t.Errorf("raw = %q, want %q", d.Raw, line)
	}
	d := Classify(tokErr("refresh", 400, "invalid_grant", 700082, "AADSTS700082: The refresh token has expired due to inactivity."), work)
	if !strings.Contains(d.Raw, "AADSTS700082") || !strings.Contains(d.Raw, "invalid_grant") {
		t.Errorf("token raw = %q", d.Raw)
	}
}

// TestTokenErrorInactive is the story of the style guide: a refresh refused
// with AADSTS700082 tells the user to sign in again, naming the address.
func TestTokenErrorInactive(t *testing.T) {
	body := `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.","error_codes":[700082]}`
	te := tokens.FromOAuth(user, "refresh", &oauth2.RetrieveError{
		Response:         &http.Response{StatusCode: http.StatusBadRequest},
		Body:             []byte(body),
		ErrorCode:        "invalid_grant",
		ErrorDescription: "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.",
	})
	wrapped := &Failure{Proto: "imap", Stage: "auth", Err: fmt.Errorf("get token: %w", te)}
	// The account is unknown to the caller: the address comes from the error.
	d := Classify(wrapped, Account{})
	if d.ID != "token-expired-inactive" {
		t.Fatalf("ID = %s", d.ID)
	}
	if !strings.Contains(d.Fix, "bridge login "+user) {
		t.Errorf("fix = %q", d.Fix)
	}
	if d.Email != user {
		t.Errorf("Email = %q", d.Email)
	}
	if !strings.Contains(te.Error(), "the sign-in expired after 90 days without use") {
		t.Errorf("tokens.Error text lacks the meaning: %s", te.Error())
	}
}

func TestTemporary(t *testing.T) {
	if !Classify(smtpLine("auth", "432 4.3.2 concurrent connection limit exceeded"), work).Temporary() {
		t.Error("432 not temporary")
	}
	if Classify(popFail("auth", "Authentication failure: unknown user name or bad password."), work).Temporary() {
		t.Error("POP refusal temporary")
	}
	// "pop" is accepted for "pop3".
	if d := Classify(&Failure{Proto: "POP", Stage: "auth", Text: "Authentication failure"}, work); d.ID != "pop-auth-failed" {
		t.Errorf("POP = %s", d.ID)
	}
}

func TestClassifyNil(t *testing.T) {
	if d := Classify(nil, work); d.ID != "" {
		t.Errorf("Classify(nil) = %+v", d)
	}
}
