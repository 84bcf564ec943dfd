package diag

// viaGraph is an account that sends through Microsoft Graph.
var viaGraph = Account{Email: user, ViaGraph: true}

func graphFail(stage Stage, status int, text string) *Failure {
	return &Failure{Proto: ProtoGraph, Stage: stage, Code: status, Text: text}
}

// graphCases: Microsoft Graph's sendMail and /me, and the Graph token
// request (docs/microsoft-facts.md, "Microsoft Graph sendMail").
var graphCases = []classifyCase{
	{"smtp disabled tenant, sending through graph", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."),
		viaGraph, "smtp-auth-disabled-tenant",
		[]string{"through Microsoft Graph instead", "Set-CASMailbox -Identity " + user + " -SmtpClientAuthenticationDisabled $false", `smtp_via = "smtp"`}},
	{"smtp disabled mailbox, sending through graph", smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information."),
		viaGraph, "smtp-auth-disabled-mailbox", []string{"through Microsoft Graph instead", "every 6 hours"}},
	{"graph consent missing", tokErr("graph token", 400, "invalid_grant", 65001, "AADSTS65001: The user or administrator has not consented to use the application with ID '5471030d-f311-4c5d-91ef-74ca885463a7' named 'bridge'. Send an interactive authorization request for this user and resource."),
		Account{Email: user, ClientID: "5471030d-f311-4c5d-91ef-74ca885463a7", Tenant: "contoso.com"}, "graph-consent-missing",
		[]string{"Mail.Send", "bridge login " + user, "https://login.microsoftonline.com/contoso.com/adminconsent?client_id=5471030d-f311-4c5d-91ef-74ca885463a7"}},
	{"graph consent missing shared", tokErr("graph token", 400, "invalid_grant", 65001, "AADSTS65001: The user or administrator has not consented to use the application with ID 'x' named 'bridge'. Send an interactive authorization request for this user and resource."),
		delegate, "graph-consent-missing", []string{"Mail.Send.Shared", "bridge login " + user}},
	{"graph 401", graphFail("data", 401, "InvalidAuthenticationToken: Access token validation failure. Invalid audience."),
		work, "graph-token-refused", []string{"bridge login " + user}},
	{"graph access denied", graphFail("data", 403, "ErrorAccessDenied: Access is denied. Check credentials and try again."),
		work, "graph-access-denied", []string{"Mail.Send", "bridge login " + user}},
	{"graph access denied shared", graphFail("data", 403, "ErrorAccessDenied: Access is denied. Check credentials and try again."),
		delegate, "graph-access-denied", []string{"Mail.Send.Shared", "Add-MailboxPermission -Identity " + shared + " -User " + user + " -AccessRights FullAccess"}},
	{"graph send as denied", graphFail("data", 403, "ErrorSendAsDenied: The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account. Cannot submit message."),
		delegate, "graph-sendas-denied", []string{"Add-RecipientPermission -Identity " + shared + " -Trustee " + user + " -AccessRights SendAs"}},
	{"graph throttled", graphFail("data", 429, "ApplicationThrottled: Application is over its MailboxConcurrency limit."),
		work, "graph-throttled", []string{"nothing is lost"}},
	{"graph mailbox not enabled", graphFail("data", 404, "MailboxNotEnabledForRESTAPI: The mailbox is either inactive, soft-deleted, or is hosted on-premise."),
		work, "graph-mailbox-not-enabled", []string{"Exchange Online", `smtp_via = "smtp"`}},
	{"graph mailbox not supported", graphFail("data", 404, "MailboxNotSupportedForRESTAPI: REST API is not yet supported for this mailbox."),
		work, "graph-mailbox-not-enabled", nil},
	{"graph too large", graphFail("data", 413, "the message of 10485760 bytes is larger than Graph takes in one request"),
		work, "graph-too-large", []string{"about 3 MB"}},
	{"graph 503", graphFail("data", 503, "ServiceNotAvailable: Service Unavailable"), work, "graph-unavailable", []string{"try again later"}},
	{"graph unknown", graphFail("data", 400, "ErrorInvalidRecipients: At least one recipient isn't valid."), work, "graph-failed", []string{"bridge doctor " + user}},
}
