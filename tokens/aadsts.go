package tokens

// Meaning returns a short phrase for an AADSTS code that fits inside an
// error message, such as "the sign-in expired after 90 days without use",
// or "" when the code is unknown (and for 0, "no code"). Causes and fixes
// live in the diagnosis table (package bridge/diag), which matches on the
// same numbers.
//
// Microsoft warns that AADSTS numbers and texts change over time, so these
// phrases are hints shown next to the raw description, never instead of it.
func Meaning(code int) string {
	return aadstsMeaning[code]
}

// aadstsMeaning paraphrases Microsoft's "authentication and authorization
// error codes" reference (learn.microsoft.com/entra/identity-platform/
// reference-error-codes), limited to what a mail bridge meets.
var aadstsMeaning = map[int]string{
	// Consent.
	65001: "the app has not been granted consent",
	65002: "a Microsoft first-party client id cannot be used for this API",
	65004: "the user declined consent",
	90094: "an administrator must grant consent",
	90095: "an administrator must approve the consent request",
	90099: "the app is not authorized in this tenant",

	// Multi-factor, Conditional Access, security defaults.
	50076:  "multi-factor authentication is required",
	50079:  "the user must register for multi-factor authentication",
	50078:  "the multi-factor sign-in has expired",
	70043:  "a Conditional Access sign-in frequency policy ended the sign-in",
	53000:  "Conditional Access requires a compliant device",
	53001:  "Conditional Access requires a domain-joined device",
	53003:  "blocked by Conditional Access",
	50097:  "device authentication is required",
	50155:  "device authentication failed",
	50187:  "the browser did not present the device's identity",
	530032: "blocked by the tenant's security policy",
	530035: "blocked by security defaults",

	// App registration.
	700016:  "the app registration was not found in the tenant",
	7000112: "the app registration is disabled",
	50011:   "the redirect URI is not registered for the app",
	7000218: "the app is treated as confidential: public client flows are not allowed",
	700025:  "a public client must not send a client secret",
	7000215: "the client secret is invalid",
	7000222: "the client secret has expired",
	700027:  "the client assertion's signature did not verify: the certificate is not registered for the app, or has expired",
	700024:  "the client assertion is not within its valid time range",

	// Account type and tenant.
	50020:   "the account is not in this app's tenant",
	500208:  "the domain is not valid for this account type",
	16000:   "the account does not exist in this tenant",
	50194:   "a single-tenant app was used through the common endpoint",
	9002332: "the app accepts only work or school accounts",
	90130:   "the app is not supported over the common or consumers endpoint",
	90124:   "the resource is not supported over the common or consumers endpoint",
	9001023: "the grant type is not supported over the common or consumers endpoint",
	1002012: "client credentials need a scope ending in /.default",
	90002:   "the tenant was not found",
	50059:   "no tenant was identified in the request",
	50134:   "the request went to the wrong data centre",

	// Grants and refresh tokens.
	70000:  "the grant is invalid or its scopes are no longer authorized",
	70008:  "the sign-in grant has expired or was revoked",
	700082: "the sign-in expired after 90 days without use",
	50173:  "the sign-in was revoked",
	50132:  "the session ended after a password change or expiry",
	50133:  "the session ended after a password change or expiry",
	50058:  "no single sign-on session is available",

	// The sign-in flow itself.
	50089:   "the sign-in flow expired",
	54005:   "the authorization code was already used",
	501481:  "the PKCE code verifier did not match",
	9002313: "the request was malformed",
	70016:   "waiting for the user to finish signing in",
	70018:   "the device code entered was wrong",
	70019:   "the device code has expired",
	90120:   "the device sign-in was already completed or declined",

	// Scopes and resources.
	900144: "a required request parameter is missing",
	90009:  "the app requested a token for itself",
	70011:  "the requested scope is invalid",
	700022: "the scope names more than one resource",
	28002:  "the scope is invalid",
	28003:  "the scope is empty",
	500011: "the resource is not available in the tenant",
	650052: "the organization is not subscribed to the service",
	650057: "the app lacks the permission for the resource",

	// The account itself.
	50126: "wrong user name or password",
	50053: "the account is locked",
	50055: "the password has expired",
	50057: "the account is disabled",
}
