package diag

// gmail matches failures of Gmail accounts only.
const gmail = "gmail"

// Google Cloud console and Admin console paths the fixes name.
const (
	gcpAudience = "Google Cloud console > Google Auth Platform > Audience (formerly APIs & Services > OAuth consent screen)"
	gcpDataAcc  = "Google Cloud console > Google Auth Platform > Data Access"
	adminIMAP   = "Google Admin console > Apps > Google Workspace > Gmail > End User Access > POP and IMAP access"
	relogin     = "Run `bridge login {delegate}`, sign in as {delegate} itself, and on Google's consent page tick the box that lets the app " +
		"read, compose, send and permanently delete all your email from Gmail."
)

// gmailEntries explain what Google's identity platform and Gmail's servers
// answer (docs/google-facts.md §3-§5). They match Gmail accounts only.
//
// Gmail gives one answer to every token its servers refuse ("Invalid
// credentials", "Username and Password not accepted"), and Google one
// answer to a refresh token that expired or was revoked ("Token has been
// expired or revoked."), so those entries name every likely cause.
var gmailEntries = []Entry{
	{
		ID:    "gmail-token-expired-or-revoked",
		Kind:  KindUser,
		Title: "Google no longer accepts the stored sign-in: expired or revoked",
		Cause: "Google answered \"Token has been expired or revoked.\", the same words for two causes it does not tell apart. " +
			"If the Google Cloud project's consent screen is in \"Testing\", Google ends refresh tokens 7 days after the sign-in. " +
			"Otherwise the access was taken back: by the user (Google Account > Security > third-party apps), by a password change " +
			"(which ends tokens that hold the Gmail scope), after 6 months without use, or by an administrator.",
		Fix: "Run `bridge login {delegate}`.\n" +
			"If it comes back 7 days after each sign-in, the app is in Testing: in the " + gcpAudience + ", press \"Publish app\" to move it " +
			"to \"In production\". An app only you use may stay unverified; Google then shows a warning at sign-in that you can pass.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, OAuth: "invalid_grant", Text: []string{"expired or revoked"}},
			{Provider: gmail, Proto: ProtoToken, Cond: CondNeedsLogin, Text: []string{"expired or revoked"}},
		},
	},
	{
		ID:    "gmail-token-needs-login",
		Kind:  KindUser,
		Title: "Google refused the stored sign-in",
		Cause: "Google refused the stored refresh token; only a new sign-in replaces it. Its words are below.",
		Fix:   "Run `bridge login {delegate}`.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, OAuth: "invalid_grant"},
			{Provider: gmail, Proto: ProtoToken, Cond: CondNeedsLogin},
		},
	},
	{
		ID:    "gmail-access-denied",
		Kind:  KindApp,
		Title: "Google refused the sign-in to this app",
		Cause: "Google sent the sign-in back with access_denied. While the app's consent screen is in \"Testing\", only the accounts " +
			"listed as its test users may sign in (Google shows \"Error 403: access_denied\" and \"can only be accessed by developer-approved testers\"); " +
			"the same answer comes when Cancel is pressed on the consent page.",
		Fix: "In the " + gcpAudience + ", add {delegate} under Test users, or publish the app (\"In production\"). " +
			"Then run `bridge login {delegate}` and press Continue on the consent page.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, OAuth: "access_denied"},
		},
	},
	{
		ID:    "gmail-admin-policy",
		Kind:  KindAdmin,
		Title: "The Google Workspace administrator does not allow this app",
		Cause: "Google answered admin_policy_enforced: the organisation's API controls keep apps its administrator has not trusted away from Gmail.",
		Fix: "An administrator opens the Google Admin console > Security > Access and data control > API controls > Manage Third-Party App Access, " +
			"adds the app by its client id {client_id} and marks it Trusted. Then run `bridge login {delegate}`.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, OAuth: "admin_policy_enforced"},
		},
	},
	{
		ID:    "gmail-scope-missing",
		Kind:  KindApp,
		Title: "The sign-in did not give access to Gmail",
		Cause: "Google's answer lacks the scope https://mail.google.com/, the only one Gmail's IMAP, POP and SMTP servers take: " +
			"its box was left unticked on the consent page, the app's consent screen does not list it, or the account's scopes in the config replace it.",
		Fix: "In the Google Cloud console, enable the Gmail API for the project (APIs & Services > Library > Gmail API) and add " +
			"https://mail.google.com/ under " + gcpDataAcc + "; remove scopes from the account in the config.\n" + relogin,
		Match: []Match{
			{Provider: gmail, Cond: CondScopeNotGranted},
		},
	},
	{
		ID:    "gmail-client",
		Kind:  KindApp,
		Title: "Google does not know the app's client id or secret",
		Cause: "Google refused the app itself: the client id is not one of its OAuth clients (or the client was deleted), " +
			"or the client secret is missing or wrong. A Desktop app client must send its secret.",
		Fix: "In the Google Cloud console > Google Auth Platform > Clients, open the Desktop app client (or create one) and copy its client id and secret " +
			"into client_id and client_secret of the account in the config. Then run `bridge login {delegate}`.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, OAuth: "invalid_client"},
			{Provider: gmail, Proto: ProtoToken, OAuth: "deleted_client"},
			{Provider: gmail, Proto: ProtoToken, Text: []string{"client_secret is missing"}},
		},
	},
	{
		ID:    "gmail-imap-auth-failed",
		Kind:  KindUser,
		Title: "Google refused the IMAP login",
		Cause: "Gmail answered \"Invalid credentials\" after its error challenge, as it does for every token it will not take: " +
			"an expired or revoked token, a token without the scope https://mail.google.com/, or a token of another account than {mailbox}.",
		Fix: relogin + "\nIf it comes back, `bridge doctor {email}` shows which step fails.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoIMAP, Stage: StageAuth},
			{Provider: gmail, Proto: ProtoIMAP, Text: []string{"Invalid credentials"}},
		},
	},
	{
		ID:    "gmail-imap-disabled",
		Kind:  KindAdmin,
		Title: "IMAP is switched off for the Google Workspace domain",
		Cause: "Gmail answered that IMAP access is disabled: the Workspace administrator turned IMAP off for the organisational unit of {email}, " +
			"or allows only some mail clients.",
		Fix: "An administrator opens the " + adminIMAP + ", enables IMAP access for the organisational unit of {email} and, " +
			"if only some mail clients are allowed, allows all clients or adds the bridge's OAuth client id {client_id}.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoIMAP, Text: []string{"IMAP access is disabled"}},
			{Provider: gmail, Proto: ProtoIMAP, Text: []string{"not enabled for IMAP use"}},
		},
	},
	{
		ID:    "gmail-pop-auth-failed",
		Kind:  KindUser,
		Title: "Google refused the POP login",
		Cause: "Gmail refused the token: expired or revoked, without the scope https://mail.google.com/, or of another account than {mailbox}. " +
			"POP switched off may give the same answer.",
		Fix: relogin + "\nIf POP is off: for a Workspace account an administrator enables it in the " + adminIMAP + "; " +
			"for a personal account, switch it on in Gmail > Settings > See all settings > Forwarding and POP/IMAP.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoPOP3, Stage: StageAuth},
			{Provider: gmail, Proto: ProtoPOP3, Text: []string{"Username and password not accepted"}},
		},
	},
	{
		ID:    "gmail-smtp-auth-failed",
		Kind:  KindUser,
		Title: "Google refused the SMTP login",
		Cause: "Gmail answered 535 5.7.8 \"Username and Password not accepted\" after its error challenge: the token expired or was revoked, " +
			"lacks the scope https://mail.google.com/, or belongs to another account than {delegate}.",
		Fix: relogin + "\nIf it comes back, `bridge doctor {email}` shows which step fails.",
		Match: []Match{
			{Provider: gmail, Proto: ProtoSMTP, Code: 535, Enhanced: []string{"5.7.8"}},
			{Provider: gmail, Proto: ProtoSMTP, Text: []string{"Username and Password not accepted"}},
		},
	},
	{
		ID:    "gmail-identity-unreachable",
		Kind:  KindTemporary,
		Title: "Google's sign-in service could not be reached",
		Cause: "A network error, time-out, or server error (5xx or 429) on the way to oauth2.googleapis.com. The stored sign-in is kept.",
		Fix: "Nothing to do if it passes: the next attempt tries again with the same stored sign-in. " +
			"If it persists, check that this machine reaches https://oauth2.googleapis.com (DNS, firewall, proxy).",
		Match: []Match{
			{Provider: gmail, Proto: ProtoToken, Cond: CondTemporary},
		},
	},
	{
		ID:    "gmail-token-failed",
		Kind:  KindUnknown,
		Title: "Google's sign-in service refused the request",
		Cause: "Google's identity platform answered with an error the bridge does not recognise; its own words are below.",
		Fix: "Look the error up in Google's OAuth guide for desktop apps (https://developers.google.com/identity/protocols/oauth2/native-app), " +
			"then run `bridge login {delegate}` once the cause is fixed.",
		Match: []Match{{Provider: gmail, Proto: ProtoToken}},
	},
}
