package diag

// smtpEntries explain SMTP replies from Exchange Online, at login and at
// MAIL, RCPT and DATA. SMTP logs in as the delegate for a shared mailbox,
// so the per-user switches name {delegate}.
var smtpEntries = []Entry{
	{
		ID:    "smtp-auth-disabled-tenant",
		Kind:  KindAdmin,
		Title: "Authenticated SMTP is switched off for the organisation",
		Cause: "SMTP AUTH is disabled for the whole tenant. The switch blocks OAuth logins as well as passwords.",
		Fix: "An administrator switches SMTP AUTH on for the organisation: `Set-TransportConfig -SmtpClientAuthenticationDisabled $false` " +
			"(Exchange admin centre: Settings > Mail flow > untick \"Turn off SMTP AUTH protocol for your organization\"), " +
			"or only for this mailbox, which overrides the organisation: `Set-CASMailbox -Identity {delegate} -SmtpClientAuthenticationDisabled $false`.\n" +
			"Check with `Get-TransportConfig | Format-List SmtpClientAuthenticationDisabled`.",
		PersonalFix: "Outlook.com has no setting for this. Microsoft may keep SMTP off for some new Outlook.com accounts; " +
			"reading mail over IMAP or POP still works. Try again later, or ask Microsoft support about SMTP for {email}.",
		GraphFix: graphInstead,
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"SmtpClientAuthentication is disabled for the Tenant"}},
		},
	},
	{
		ID:    "smtp-auth-disabled-mailbox",
		Kind:  KindAdmin,
		Title: "Authenticated SMTP is switched off for this mailbox",
		Cause: "SMTP AUTH is disabled for {delegate}. The switch blocks OAuth logins as well as passwords.",
		Fix: "An administrator runs `Set-CASMailbox -Identity {delegate} -SmtpClientAuthenticationDisabled $false`, " +
			"or in the Microsoft 365 admin centre: Users > Active users > {delegate} > Mail > Manage email apps > Authenticated SMTP.\n" +
			"Check with `Get-CASMailbox -Identity {delegate} | Format-List SmtpClientAuthenticationDisabled` " +
			"(True = off, False = on, empty = follows the organisation).",
		PersonalFix: "Outlook.com has no setting for this. Microsoft may keep SMTP off for some new Outlook.com accounts; " +
			"reading mail over IMAP or POP still works. Try again later, or ask Microsoft support about SMTP for {email}.",
		GraphFix: graphInstead,
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"SmtpClientAuthentication is disabled for the Mailbox"}},
		},
	},
	{
		ID:    "smtp-security-defaults",
		Kind:  KindAdmin,
		Title: "The organisation's security defaults blocked the SMTP login",
		Cause: "Security defaults block legacy sign-ins and require multi-factor authentication. " +
			"Every captured reply of this kind came from a password login; whether it can happen with OAuth is unconfirmed, " +
			"so it may mean the sign-in behind the token lacked multi-factor authentication.",
		Fix: "Run `bridge login {delegate}` and complete the multi-factor prompt.\n" +
			"If it persists, an administrator reviews security defaults in the Microsoft Entra admin centre: " +
			"Identity > Overview > Properties > Manage security defaults.",
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"security defaults"}},
		},
	},
	{
		ID:    "smtp-criteria",
		Kind:  KindAdmin,
		Title: "The SMTP login did not meet the organisation's sign-in criteria",
		Cause: "A sign-in policy blocked the login: Microsoft names extra criteria such as multi-factor authentication, " +
			"and it is most often a Conditional Access policy. Seen with password logins; with OAuth it is unconfirmed.",
		Fix: "An administrator opens the Microsoft Entra admin centre > Monitoring & health > Sign-in logs, filters by {delegate}, " +
			"and allows the app, location or device in the blocking Conditional Access policy (or excludes the user). " +
			"Then run `bridge login {delegate}`.",
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"did not meet the criteria"}},
		},
	},
	{
		ID:    "smtp-basic-auth",
		Kind:  KindBridge,
		Title: "Microsoft saw a password login, which the bridge never sends",
		Cause: "Exchange says a basic (password) login reached it. The bridge only ever logs in with OAuth, " +
			"so either the mail client is talking to Microsoft directly instead of to the bridge, or this is a bug in the bridge.",
		Fix: "Check that the mail client's outgoing server is the bridge (127.0.0.1 and the bridge's SMTP port), not smtp.office365.com. " +
			"If it is, report a bug with the output of `bridge doctor {email}`.",
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"basic authentication is disabled"}},
			{Proto: ProtoSMTP, Enhanced: []string{"5.7.30"}},
			{Proto: ProtoSMTP, Text: []string{"basic authentication is not supported"}},
		},
	},
	{
		ID:    "smtp-not-authenticated",
		Kind:  KindBridge,
		Title: "Microsoft got a message before the login",
		Cause: "MAIL FROM reached Exchange without a successful login. The bridge forwards a message only after Exchange accepted the login, " +
			"so this points to a bug in the bridge or a client talking to Microsoft directly.",
		Fix: "Check that the mail client's outgoing server is the bridge (127.0.0.1 and the bridge's SMTP port) with login switched on. " +
			"If it is, report a bug with the output of `bridge doctor {email}`.",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.7.57"}},
			{Proto: ProtoSMTP, Text: []string{"not authenticated to send"}},
		},
	},
	{
		ID:    "smtp-sendas-denied",
		Kind:  KindAdmin,
		Title: "Not allowed to send as this sender",
		Cause: "The message's From address is not the signed-in mailbox, and the signed-in account has no Send As right on it.",
		Fix: "Send from {delegate} itself, or an administrator grants Send As on the From address: " +
			"`Add-RecipientPermission -Identity FROM-ADDRESS -Trustee {delegate} -AccessRights SendAs` " +
			"(check with `Get-RecipientPermission -Identity FROM-ADDRESS`).",
		SharedFix: "An administrator grants {delegate} Send As on {mailbox}: " +
			"`Add-RecipientPermission -Identity {mailbox} -Trustee {delegate} -AccessRights SendAs` " +
			"(check with `Get-RecipientPermission -Identity {mailbox}`), and the mail client sends with From: {mailbox}.",
		PersonalFix: "Send with From: {email} itself; an Outlook.com account has no Send As rights to grant.",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.7.60"}},
			{Proto: ProtoSMTP, Text: []string{"permissions to send as this sender"}},
			{Proto: ProtoSMTP, Text: []string{"SendAsDenied"}},
			{Proto: ProtoSMTP, Enhanced: []string{"5.2.252"}, Text: []string{"SendAsDenied"}},
		},
	},
	{
		ID:    "smtp-concurrency",
		Kind:  KindTemporary,
		Title: "Too many SMTP connections for this mailbox at once",
		Cause: "Exchange allows at most 3 simultaneous SMTP connections per mailbox; more are refused until one closes.",
		Fix:   "Retry in a moment. If it keeps happening, fewer devices or programs should send as {delegate} at the same time.",
		Match: []Match{
			{Proto: ProtoSMTP, Code: 432},
			{Proto: ProtoSMTP, Enhanced: []string{"4.3.2"}},
			{Proto: ProtoSMTP, Text: []string{"concurrent connection limit"}},
			{Proto: ProtoSMTP, Text: []string{"thread limit exceeded"}},
		},
	},
	{
		ID:    "smtp-quota",
		Kind:  KindTemporary,
		Title: "The mailbox reached its daily sending limit",
		Cause: "Exchange Online allows 10,000 recipients per 24 hours per mailbox (and 30 messages a minute); {delegate} went over.",
		Fix: "Wait: the limit is a sliding 24-hour window, so sending works again within a day. " +
			"Bulk mailings need a bulk-mail service rather than a mailbox.",
		Match: []Match{
			{Proto: ProtoSMTP, Text: []string{"SubmissionQuotaExceeded"}},
		},
	},
	{
		ID:    "smtp-error-throttled",
		Kind:  KindUser,
		Title: "Sending is paused after repeated errors",
		Cause: "Exchange throttles a mailbox that keeps producing the same error: a full mailbox, Send As denied, " +
			"an invalid licence, too many recipients or invalid recipients (the reply below says which).",
		Fix: "Fix the cause the reply names and wait for the throttle to expire; Microsoft support cannot lift it early.",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.2.251", "5.2.252", "5.2.253", "5.2.254", "5.2.255"}},
			{Proto: ProtoSMTP, Text: []string{"throttled due to continuous"}},
		},
	},
	{
		ID:    "smtp-tenant-blocked",
		Kind:  KindAdmin,
		Title: "Microsoft blocked outgoing mail for the organisation",
		Cause: "A tenant-wide block: the tenant exceeded a sending threshold (often after spam), " +
			"traffic from this IP is not accepted, or mail came from a domain the tenant has not registered.",
		Fix: "An administrator checks that the sending domain is an accepted, verified domain of the tenant " +
			"and opens a case with Microsoft support to lift the block.",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.7.705", "5.7.708", "5.7.750"}},
		},
	},
	{
		ID:    "smtp-sender-blocked",
		Kind:  KindAdmin,
		Title: "This mailbox is blocked from sending",
		Cause: "Microsoft restricted {delegate} from sending, usually after it sent what looked like spam; " +
			"the account may be compromised.",
		Fix: "An administrator secures the account (new password, sign-out everywhere) and releases it in the Microsoft Defender portal: " +
			"Email & collaboration > Review > Restricted entities (https://security.microsoft.com/restrictedentities).",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.1.8"}},
		},
	},
	{
		ID:    "smtp-auth-failed",
		Kind:  KindUser,
		Title: "Microsoft refused the SMTP login",
		Cause: "Exchange rejected the OAuth token. Most often the token belongs to a different account than the one logging in, " +
			"a shared mailbox is used as the login itself, or the token lacks the SMTP.Send permission.",
		Fix: "Run `bridge login {delegate}` and sign in as {delegate} itself. " +
			"A shared mailbox cannot log in to SMTP on its own: set it up with a delegate (token_from) that has Send As on it. " +
			"The account's scopes must include https://outlook.office.com/SMTP.Send (the default).",
		SharedFix: "SMTP logs in as {delegate}. Run `bridge login {delegate}` and sign in as {delegate} itself, " +
			"and make sure {delegate} has Send As on {mailbox}: `Add-RecipientPermission -Identity {mailbox} -Trustee {delegate} -AccessRights SendAs`. " +
			"The scopes must include https://outlook.office.com/SMTP.Send (the default).",
		Match: []Match{
			{Proto: ProtoSMTP, Enhanced: []string{"5.7.3"}},
			{Proto: ProtoSMTP, Code: 535},
		},
	},
}
