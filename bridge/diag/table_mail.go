package diag

// mailEntries explain IMAP and POP3 refusals from Exchange Online.
//
// Exchange answers every refused XOAUTH2 login with the same generic text
// ("AUTHENTICATE failed." / "unknown user name or bad password."), so the
// login entries name the likeliest causes rather than one certain cause.
// Protocol switches are checked for the authenticated user, which for a
// shared mailbox is the delegate: hence {delegate} in the commands.
var mailEntries = []Entry{
	{
		ID:            "imap-auth-failed",
		Kind:          KindAdmin,
		Title:         "Microsoft refused the IMAP login",
		PersonalTitle: "Microsoft refused the IMAP login: IMAP may be off in Outlook.com > Settings > Mail > Forwarding and IMAP",
		Cause: "Exchange gives one generic answer for every refused OAuth login. " +
			"Most often IMAP is switched off for the account (Microsoft does not document a distinct reply for that), " +
			"or the tokens were obtained while signed in as a different account than {delegate}.",
		Fix: "An administrator switches IMAP on for {delegate}: `Set-CASMailbox -Identity {delegate} -ImapEnabled $true` " +
			"(check with `Get-CASMailbox -Identity {delegate} | Format-List ImapEnabled`), " +
			"or in the Microsoft 365 admin centre: Users > Active users > {delegate} > Mail > Manage email apps > IMAP.\n" +
			"If IMAP is already on, run `bridge login {delegate}` and sign in as {delegate} itself, not as an administrator or another account.",
		PersonalFix: "Switch IMAP on in Outlook.com: Settings > Mail > Forwarding and IMAP > Let devices and apps use IMAP " +
			"(some accounts may show this page as \"Sync email\").\n" +
			"If it is already on, run `bridge login {delegate}` and sign in as {delegate} itself.",
		Match: []Match{
			{Proto: ProtoIMAP, Stage: StageAuth},
			{Proto: ProtoIMAP, RespCode: "AUTHENTICATIONFAILED"},
			{Proto: ProtoIMAP, Text: []string{"AUTHENTICATE failed"}},
		},
	},
	{
		ID:    "imap-not-connected",
		Kind:  KindAdmin,
		Title: "Microsoft accepted the sign-in but will not open the mailbox",
		Cause: "The token is valid, but its account has no right to open {mailbox}: " +
			"most often the tokens were obtained while signed in as another account, " +
			"or a shared mailbox has not given the delegate Full Access.",
		Fix: "Run `bridge login {email}` and sign in as {email} itself.\n" +
			"If {email} is a shared mailbox, set it up as one (mailbox and token_from in the account's config) and have an administrator " +
			"grant the delegate Full Access: `Add-MailboxPermission -Identity {email} -User DELEGATE -AccessRights FullAccess`.",
		SharedFix: "An administrator grants {delegate} Full Access to {mailbox}: " +
			"`Add-MailboxPermission -Identity {mailbox} -User {delegate} -AccessRights FullAccess` " +
			"(check with `Get-MailboxPermission -Identity {mailbox}`).\n" +
			"If the permission is in place, run `bridge login {delegate}` and sign in as {delegate} itself.",
		PersonalFix: "Run `bridge login {email}` and sign in as {email} itself, not with another Microsoft account.",
		Match: []Match{
			{Proto: ProtoIMAP, Text: []string{"authenticated but not connected"}},
		},
	},
	{
		ID:    "imap-token-expired",
		Kind:  KindTemporary,
		Title: "Microsoft ended the session because its access token expired",
		Cause: "Access tokens last about an hour, and Exchange closes a session once the token it was opened with expires. " +
			"This is not a settings or password problem.",
		Fix: "Nothing to change: the bridge refreshes the token, and the next connection uses a fresh one. " +
			"Reconnect the mail client if it does not reconnect by itself.",
		Match: []Match{
			{Text: []string{"AccessTokenExpired"}},
		},
	},
	{
		ID:            "pop-auth-failed",
		Kind:          KindAdmin,
		Title:         "Microsoft refused the POP login: POP may be switched off for this mailbox",
		PersonalTitle: "Microsoft refused the POP login: POP may be off in Outlook.com > Settings > Mail > Forwarding and IMAP",
		Cause: "Exchange gives one generic answer (\"unknown user name or bad password\") for every refused OAuth login. " +
			"Most often POP is switched off for the account (Microsoft does not document a distinct reply for that), " +
			"or the tokens were obtained while signed in as a different account than {delegate}.",
		Fix: "An administrator switches POP on for {delegate}: `Set-CASMailbox -Identity {delegate} -PopEnabled $true` " +
			"(check with `Get-CASMailbox -Identity {delegate} | Format-List PopEnabled`), " +
			"or in the Microsoft 365 admin centre: Users > Active users > {delegate} > Mail > Manage email apps > POP.\n" +
			"If POP is already on, run `bridge login {delegate}` and sign in as {delegate} itself.",
		PersonalFix: "Switch POP on in Outlook.com: Settings > Mail > Forwarding and IMAP > Let devices and apps use POP " +
			"(some accounts may show this page as \"Sync email\").\n" +
			"If it is already on, run `bridge login {delegate}` and sign in as {delegate} itself.",
		Match: []Match{
			{Proto: ProtoPOP3, Stage: StageAuth},
			{Proto: ProtoPOP3, Text: []string{"unknown user name or bad password"}},
		},
	},
}
