package diag

// graphInstead is the fix of the "SMTP AUTH switched off" entries for an
// account that sends through Microsoft Graph (smtp_via "auto" or "graph").
const graphInstead = "Nothing to do for mail to go out: the bridge sends {email}'s messages through Microsoft Graph instead " +
	"(smtp_via = \"auto\" or \"graph\"), and mail clients see no difference; messages are limited to about 3 MB there. " +
	"To go back to SMTP, an administrator switches SMTP AUTH on for {delegate} " +
	"(`Set-CASMailbox -Identity {delegate} -SmtpClientAuthenticationDisabled $false`, or for the organisation " +
	"`Set-TransportConfig -SmtpClientAuthenticationDisabled $false`); with smtp_via = \"auto\" the bridge tries SMTP again " +
	"every 6 hours and after a restart, and smtp_via = \"smtp\" makes it use SMTP only."

// graphEntries explain Microsoft Graph's answers to the bridge's sendMail
// and /me requests, and the identity platform's answer to its Graph token
// request (docs/microsoft-facts.md, "Microsoft Graph sendMail").
var graphEntries = []Entry{
	{
		ID:    "graph-consent-missing",
		Kind:  KindUser,
		Title: "The app may not send mail through Microsoft Graph yet",
		Cause: "Sending through Microsoft Graph needs the delegated Graph permissions Mail.Send and User.Read, " +
			"and nobody has consented to them for the app: not {delegate} at a sign-in, nor an administrator for the organisation.",
		Fix: "Add the Microsoft Graph delegated permissions Mail.Send and User.Read to the app registration " +
			"(Microsoft Entra admin centre > App registrations > the app > API permissions), then run `bridge login {delegate}`: " +
			"it asks for the consent once. Where users may not consent, an administrator consents for everyone at " +
			"https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id}.",
		SharedFix: "Sending from {mailbox} with {delegate}'s sign-in needs the Microsoft Graph delegated permissions Mail.Send, " +
			"Mail.Send.Shared and User.Read: add them to the app registration " +
			"(Microsoft Entra admin centre > App registrations > the app > API permissions), then run `bridge login {delegate}`: " +
			"it asks for the consent once. Where users may not consent, an administrator consents for everyone at " +
			"https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id}.",
		PersonalFix: "Add the Microsoft Graph delegated permissions Mail.Send and User.Read to the app registration, " +
			"then run `bridge login {email}` and accept the consent prompt.",
		Match: []Match{
			{Proto: ProtoToken, Stage: StageGraphToken, AADSTS: []int{65001, 65004, 90094, 90095}},
			{Proto: ProtoToken, Stage: StageGraphToken, Text: []string{"consent_required"}},
		},
	},
	{
		ID:    "graph-token-refused",
		Kind:  KindUser,
		Title: "Microsoft Graph refused the bridge's token",
		Cause: "Graph did not accept the access token: it expired or was revoked early (a password change, an administrator's " +
			"\"revoke sessions\"), or it was issued for another resource.",
		Fix: "The bridge fetches a new token by itself and the mail client sends again. If it keeps happening, run `bridge login {delegate}`.",
		Match: []Match{
			{Proto: ProtoGraph, Code: 401},
			{Proto: ProtoGraph, Text: []string{"InvalidAuthenticationToken"}},
		},
	},
	{
		ID:    "graph-access-denied",
		Kind:  KindAdmin,
		Title: "Microsoft Graph denied sending for this mailbox",
		Cause: "Graph answered ErrorAccessDenied: the token lacks the Mail.Send permission, or {delegate} has no right to the mailbox it sends from.",
		Fix: "Check that the app registration has the Microsoft Graph delegated permission Mail.Send with consent " +
			"(App registrations > the app > API permissions), then run `bridge login {delegate}`.",
		SharedFix: "Sending from {mailbox} as {delegate} needs the Graph permission Mail.Send.Shared (App registrations > the app > " +
			"API permissions, then `bridge login {delegate}`) and, in Exchange, Full Access and Send As for {delegate} on {mailbox}: " +
			"`Add-MailboxPermission -Identity {mailbox} -User {delegate} -AccessRights FullAccess` and " +
			"`Add-RecipientPermission -Identity {mailbox} -Trustee {delegate} -AccessRights SendAs`.",
		Match: []Match{
			{Proto: ProtoGraph, Text: []string{"ErrorAccessDenied"}},
			{Proto: ProtoGraph, Text: []string{"Authorization_RequestDenied"}},
		},
	},
	{
		ID:    "graph-sendas-denied",
		Kind:  KindAdmin,
		Title: "Not allowed to send as this sender through Microsoft Graph",
		Cause: "The message's From address is not {delegate}'s own, and {delegate} has no Send As right on it (Graph's ErrorSendAsDenied).",
		Fix: "Send from {delegate} itself, or an administrator grants Send As on the From address: " +
			"`Add-RecipientPermission -Identity FROM-ADDRESS -Trustee {delegate} -AccessRights SendAs`.",
		SharedFix: "An administrator grants {delegate} Send As on {mailbox}: " +
			"`Add-RecipientPermission -Identity {mailbox} -Trustee {delegate} -AccessRights SendAs` " +
			"(check with `Get-RecipientPermission -Identity {mailbox}`), and the mail client sends with From: {mailbox}.",
		PersonalFix: "Send with From: {email} itself; an Outlook.com account has no Send As rights to grant.",
		Match: []Match{
			{Proto: ProtoGraph, Text: []string{"ErrorSendAsDenied"}},
		},
	},
	{
		ID:    "graph-throttled",
		Kind:  KindTemporary,
		Title: "Microsoft Graph asked to slow down",
		Cause: "Graph throttles a mailbox or an app that sends too much at once (HTTP 429); the Exchange Online sending limits " +
			"(30 messages a minute, 10,000 recipients a day per mailbox) apply too.",
		Fix: "Nothing was sent and nothing is lost: the mail client was told to try again later and does so by itself. " +
			"If it keeps happening, fewer programs should send as {delegate} at the same time.",
		Match: []Match{
			{Proto: ProtoGraph, Code: 429},
		},
	},
	{
		ID:    "graph-mailbox-not-enabled",
		Kind:  KindAdmin,
		Title: "This mailbox cannot send through Microsoft Graph",
		Cause: "Graph answered MailboxNotEnabledForRESTAPI: {mailbox} has no Exchange Online licence, is inactive or soft-deleted, " +
			"or lives on an on-premises Exchange server.",
		Fix: "An administrator assigns {mailbox} a licence that includes Exchange Online (Microsoft 365 admin centre > Users > " +
			"Active users > the user > Licenses and apps), or moves the mailbox to Exchange Online. " +
			"Until then set smtp_via = \"smtp\" for {email} and switch SMTP AUTH on.",
		Match: []Match{
			{Proto: ProtoGraph, Text: []string{"MailboxNotEnabledForRESTAPI"}},
			{Proto: ProtoGraph, Text: []string{"MailboxNotSupportedForRESTAPI"}},
		},
	},
	{
		ID:    "graph-too-large",
		Kind:  KindUser,
		Title: "The message is too large for Microsoft Graph",
		Cause: "Graph takes a message in one request of at most 4 MB, and the message travels in it base64-encoded, " +
			"so about 3 MB of message fit; the bridge does not split larger ones into an upload session.",
		Fix: "Send the message with smaller attachments (about 3 MB in all), or share large files as links. " +
			"Through SMTP the limit is the mailbox's own (35 MB by default): an administrator can switch SMTP AUTH on for {delegate} " +
			"and set smtp_via = \"smtp\" or \"auto\" for {email}.",
		Match: []Match{
			{Proto: ProtoGraph, Code: 413},
		},
	},
	{
		ID:    "graph-unavailable",
		Kind:  KindTemporary,
		Title: "Microsoft Graph is not available now",
		Cause: "Graph answered with a server error (HTTP 5xx) or could not be reached.",
		Fix:   "Nothing to do: the mail client was told to try again later and does so by itself.",
		Match: []Match{
			{Proto: ProtoGraph, Code: 500}, {Proto: ProtoGraph, Code: 502},
			{Proto: ProtoGraph, Code: 503}, {Proto: ProtoGraph, Code: 504},
		},
	},
	{
		ID:    "graph-failed",
		Kind:  KindUnknown,
		Title: "Microsoft Graph refused the request",
		Cause: "Graph answered in a way the bridge does not recognise; its own words are below.",
		Fix:   "Run `bridge doctor {email}` to check the Graph path, and read the raw answer.",
		Match: []Match{{Proto: ProtoGraph}},
	},
}
