package diag

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/url"

	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// tokenCases: the identity platform on the sign-in itself (docs/microsoft-facts.md §2).
var tokenCases = []classifyCase{
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
		work, "identity-unreachable", []string{"Test-NetConnection login.microsoftonline.com -Port 443"}},
	// No answer in time: the identity platform's host is named, not a
	// mail server's.
	{"identity timeout", &tokens.Error{Account: user, Op: "refresh", Err: &url.Error{Op: "Post",
		URL: "https://login.microsoftonline.com/organizations/oauth2/v2.0/token", Err: context.DeadlineExceeded}},
		work, "identity-unreachable", []string{"Test-NetConnection login.microsoftonline.com -Port 443", "curl -sI https://login.microsoftonline.com`"}},
	{"identity timeout, own endpoint", &tokens.Error{Account: user, Op: "refresh", Err: &url.Error{Op: "Post",
		URL: "https://login.example.net:8443/tenant/token", Err: fmt.Errorf("no answer within 10s: %w", context.DeadlineExceeded)}},
		work, "identity-unreachable", []string{"Test-NetConnection login.example.net -Port 8443", "curl -sI https://login.example.net:8443`"}},
	{"token unknown", tokErr("refresh", 400, "invalid_request", 9002313, "AADSTS9002313: Invalid request. Request is malformed or invalid."),
		work, "token-failed", []string{"login.microsoftonline.com/error"}},
}

// appCases: the identity platform on app registration, tenant and scopes.
var appCases = []classifyCase{
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
}

// proxyFail is a dial through a proxy that failed, as DialUpstream
// reports it.
func proxyFail(p Proto, pe *proxy.Error) *Failure {
	return &Failure{Proto: p, Stage: StageProxy, Text: pe.Target, Err: pe}
}

// netCases: reaching the mail servers, and what nothing recognises.
var netCases = []classifyCase{
	// Network.
	{"dial dns", &Failure{Proto: "imap", Stage: "dial", Text: "outlook.office365.com:993",
		Err: &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "outlook.office365.com", IsNotFound: true}}},
		work, "upstream-unreachable", []string{"Test-NetConnection outlook.office365.com -Port 993"}},
	{"dial refused", &Failure{Proto: "smtp", Stage: "dial", Text: "smtp.office365.com:587",
		Err: fmt.Errorf("dial tcp 52.97.1.1:587: connect: connection refused")},
		work, "upstream-unreachable", []string{"nc -vz smtp.office365.com 587"}},
	// No protocol and no port: the account's server of that name gives it.
	{"bare dns error", &net.OpError{Op: "dial", Net: "tcp", Err: &net.DNSError{Err: "no such host", Name: "smtp.office365.com"}},
		work, "upstream-unreachable", []string{"Test-NetConnection smtp.office365.com -Port 587"}},
	{"bare timeout", fmt.Errorf("reading: %w", context.DeadlineExceeded),
		work, "upstream-unreachable", []string{"nc -vz outlook.office365.com 993"}},
	{"pop3 timeout, no address", &Failure{Proto: "pop3", Stage: "greeting", Err: fmt.Errorf("bridge: pop3 upstream: %w", context.DeadlineExceeded)},
		Account{Email: user, Servers: map[Proto]string{ProtoPOP3: "pop.example.net:1995"}}, "upstream-unreachable",
		[]string{"nc -vz pop.example.net 1995"}},
	{"tls unknown authority", &Failure{Proto: "imap", Stage: "tls", Text: "outlook.office365.com:993", Err: x509.UnknownAuthorityError{}},
		work, "upstream-tls", []string{"upstream_ca_file"}},
	{"tls eof", &Failure{Proto: "pop3", Stage: "tls", Text: "outlook.office365.com:995", Err: errors.New("EOF")},
		work, "upstream-tls", []string{"upstream_ca_file"}},

	// Through a proxy: the proxy's answer, never the mail server's
	// (tinyproxy 1.11's own words).
	{"proxy refused", proxyFail("imap", &proxy.Error{Scheme: "http", Proxy: "proxy.corp:3128", Target: "outlook.office365.com:993",
		Step: proxy.StepConnect, Status: "403 Access violation", StatusCode: 403}),
		work, "proxy-refused", []string{"CONNECT from this machine to outlook.office365.com on port 993", "ConnectPort 993"}},
	{"proxy unable to connect", proxyFail("smtp", &proxy.Error{Scheme: "http", Proxy: "proxy.corp:3128", Target: "smtp.office365.com:587",
		Step: proxy.StepConnect, Status: "500 Unable to connect", StatusCode: 500}),
		work, "proxy-refused", []string{"smtp.office365.com on port 587"}},
	{"proxy 407", proxyFail("pop3", &proxy.Error{Scheme: "http", Proxy: "proxy.corp:3128", Target: "outlook.office365.com:995",
		Step: proxy.StepAuth, Status: "407 Proxy Authentication Required", StatusCode: 407}),
		work, "proxy-auth-required", []string{"http://USER@proxy.corp:3128", "bridge proxy-password " + user}},
	{"socks auth refused", proxyFail("imap", &proxy.Error{Scheme: "socks5", Proxy: "10.0.0.1:1080", Target: "outlook.office365.com:993",
		Step: proxy.StepAuth, Err: errors.New(`it refused the user name "ann" and its password (RFC 1929 status 1)`)}),
		work, "proxy-auth-required", []string{"bridge proxy-password " + user}},
	{"proxy unreachable", proxyFail("imap", &proxy.Error{Scheme: "http", Proxy: "proxy.corp:3128", Target: "outlook.office365.com:993",
		Step: proxy.StepReach, Err: &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connect: connection refused")}}),
		work, "proxy-unreachable", []string{"reaches proxy.corp:3128", `proxy = "direct"`}},
	{"socks ruleset", proxyFail("smtp", &proxy.Error{Scheme: "socks5", Proxy: "10.0.0.1:1080", Target: "smtp.office365.com:587",
		Step: proxy.StepConnect, Reply: 2}),
		work, "socks-refused", []string{"allow smtp.office365.com on port 587"}},
	// A token request through the proxy: the *proxy.Error inside the
	// transport error inside the *tokens.Error.
	{"token endpoint through a refusing proxy", &tokens.Error{Account: user, Op: "refresh",
		Err: &url.Error{Op: "Post", URL: "https://login.microsoftonline.com/common/oauth2/v2.0/token", Err: &proxy.Error{Scheme: "http",
			Proxy: "proxy.corp:3128", Target: "login.microsoftonline.com:443", Step: proxy.StepConnect, Status: "403 Forbidden", StatusCode: 403}}},
		work, "proxy-refused", []string{"login.microsoftonline.com on port 443"}},

	// Nothing recognisable.
	{"unknown", errors.New("something odd"), work, "unknown", []string{"bridge doctor " + user}},
}
