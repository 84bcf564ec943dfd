package diag

// aad matches identity-platform answers carrying any of codes.
func aad(codes ...int) Match {
	return Match{Proto: ProtoToken, AADSTS: codes}
}

// tokenEntries explain the identity platform's answers about the sign-in
// itself: expiry, revocation, consent and policies. Microsoft asks apps to
// branch on the OAuth error field rather than the AADSTS text, so the
// generic entries match that field and the numbered ones refine it.
var tokenEntries = []Entry{
	{
		ID:    "token-needs-login",
		Kind:  KindUser,
		Title: "The stored sign-in is no longer accepted",
		Cause: "Microsoft refused the stored refresh token; only a new interactive sign-in can replace it. The raw answer below says why.",
		Fix:   "Run `bridge login {delegate}`.",
		Match: []Match{
			{Proto: ProtoToken, OAuth: "invalid_grant"},
			{Proto: ProtoToken, OAuth: "interaction_required"},
			{Proto: ProtoToken, Cond: CondNeedsLogin},
			aad(70000, 50058),
		},
	},
	{
		ID:    "token-expired-inactive",
		Kind:  KindUser,
		Title: "The sign-in expired after a long time without use",
		Cause: "Refresh tokens expire when unused for 90 days (or sooner under the organisation's policy), " +
			"so the bridge was not running for that long, or the grant was withdrawn.",
		Fix: "Run `bridge login {delegate}`. While the bridge runs it renews the sign-in well within that time.",
		Match: []Match{
			aad(700082, 70008),
		},
	},
	{
		ID:    "token-revoked",
		Kind:  KindUser,
		Title: "The sign-in was revoked",
		Cause: "A password change or reset, or the user or an administrator signing out all sessions, invalidated the stored sign-in.",
		Fix:   "Run `bridge login {delegate}` (with the new password if it changed).",
		Match: []Match{
			aad(50173, 50132, 50133),
		},
	},
	{
		ID:    "consent-required",
		Kind:  KindAdmin,
		Title: "The app has not been granted access to the mailbox",
		Cause: "No one has consented to the app's IMAP, POP and SMTP permissions for this account, " +
			"and the organisation may allow only administrators to consent.",
		Fix: "Run `bridge login {delegate}` and accept the permissions.\n" +
			"If the page says \"Need admin approval\", an administrator grants consent once for the organisation, " +
			"signed in as an administrator at https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id} " +
			"(or Microsoft Entra admin centre > Enterprise applications > the app > Permissions > Grant admin consent), " +
			"or approves the pending request if a consent request was sent.",
		PersonalFix: "Run `bridge login {delegate}` and accept the permissions on the consent page.",
		Match: []Match{
			aad(65001, 90094, 90095),
			{Proto: ProtoToken, OAuth: "consent_required"},
		},
	},
	{
		ID:    "consent-declined",
		Kind:  KindUser,
		Title: "The sign-in was declined",
		Cause: "The permissions page or the device sign-in was cancelled or declined.",
		Fix:   "Run `bridge login {delegate}` again and accept the permissions.",
		Match: []Match{
			aad(65004),
			{Proto: ProtoToken, OAuth: "access_denied"},
			{Proto: ProtoToken, OAuth: "authorization_declined"},
		},
	},
	{
		ID:    "mfa-required",
		Kind:  KindUser,
		Title: "A new multi-factor sign-in is required",
		Cause: "Microsoft wants a fresh multi-factor sign-in: a policy changed, the user has not registered multi-factor authentication yet (AADSTS50079), " +
			"or a Conditional Access sign-in frequency policy limits how long a sign-in lasts (AADSTS70043, AADSTS50078).",
		Fix: "Run `bridge login {delegate}` and complete the prompt (register security info at https://aka.ms/mysecurityinfo if asked).\n" +
			"If this repeats every day or so, an administrator may relax the sign-in frequency of the Conditional Access policy for this app.",
		PersonalFix: "Run `bridge login {delegate}` and complete the prompt; two-step verification is managed at https://account.microsoft.com/security.",
		Match: []Match{
			aad(50076, 50079, 50078, 70043),
		},
	},
	{
		ID:    "conditional-access",
		Kind:  KindAdmin,
		Title: "A Conditional Access policy blocked the sign-in",
		Cause: "A Conditional Access policy of the organisation blocks this sign-in for this app, platform or location, " +
			"or requires a compliant, domain-joined or registered device (AADSTS53000, 53001, 50097).",
		Fix: "An administrator opens the Microsoft Entra admin centre > Monitoring & health > Sign-in logs, filters by {delegate} " +
			"(or the correlation id in the raw answer), reads which policy failed, and excludes the user or allows the app, location or device in it. " +
			"Then run `bridge login {delegate}`.",
		Match: []Match{
			aad(53003, 53000, 53001, 50097, 50155, 50187),
		},
	},
	{
		ID:    "security-defaults",
		Kind:  KindAdmin,
		Title: "The organisation's security defaults blocked the sign-in",
		Cause: "Security defaults blocked the request as legacy or risky; they also require multi-factor authentication.",
		Fix: "Run `bridge login {delegate}` and complete multi-factor authentication.\n" +
			"If it is still blocked, an administrator reviews Microsoft Entra admin centre > Identity > Overview > Properties > Manage security defaults.",
		Match: []Match{
			aad(530035),
		},
	},
	{
		ID:    "tenant-security-policy",
		Kind:  KindAdmin,
		Title: "The organisation's security policy blocked the sign-in",
		Cause: "A tenant security policy blocked this sign-in.",
		Fix: "An administrator opens the Microsoft Entra admin centre > Monitoring & health > Sign-in logs, filters by {delegate}, " +
			"and adjusts the policy named there. Then run `bridge login {delegate}`.",
		Match: []Match{
			aad(530032),
		},
	},
	{
		ID:    "account-locked",
		Kind:  KindUser,
		Title: "The Microsoft account is locked",
		Cause: "Too many sign-in attempts with a wrong password, possibly by someone else, locked {delegate} for a while.",
		Fix: "Wait a few minutes and run `bridge login {delegate}` again. " +
			"An administrator can see the failed attempts in the Microsoft Entra admin centre > Monitoring & health > Sign-in logs.",
		PersonalFix: "Wait a few minutes, or recover the account at https://account.live.com, then run `bridge login {delegate}`.",
		Match: []Match{
			aad(50053),
		},
	},
	{
		ID:    "password-expired",
		Kind:  KindUser,
		Title: "The account's password has expired",
		Cause: "The organisation's password policy expired the password of {delegate}.",
		Fix:   "Run `bridge login {delegate}`; the sign-in page asks for a new password. The bridge's local password stays the same.",
		Match: []Match{
			aad(50055),
		},
	},
	{
		ID:    "account-disabled",
		Kind:  KindAdmin,
		Title: "The account is disabled",
		Cause: "Sign-in is blocked for {delegate}.",
		Fix: "An administrator allows sign-in again: Microsoft 365 admin centre > Users > Active users > {delegate} > Block sign-in (untick). " +
			"Then run `bridge login {delegate}`.",
		PersonalFix: "Recover the account at https://account.live.com, then run `bridge login {delegate}`.",
		Match: []Match{
			aad(50057),
		},
	},
	{
		ID:    "bad-password",
		Kind:  KindUser,
		Title: "Wrong Microsoft user name or password at sign-in",
		Cause: "The Microsoft sign-in rejected the user name or password.",
		Fix:   "Run `bridge login {delegate}` and enter the Microsoft password of {delegate}, not the bridge's local password.",
		Match: []Match{
			aad(50126),
		},
	},
	{
		ID:    "code-expired",
		Kind:  KindUser,
		Title: "The sign-in step expired or did not match",
		Cause: "The one-time code of the sign-in expired, was used twice, or did not match (a slow or interrupted sign-in).",
		Fix:   "Run `bridge login {delegate}` again and finish the sign-in within a few minutes.",
		Match: []Match{
			{Proto: ProtoToken, Stage: StageCodeExchange, AADSTS: []int{70008}},
			aad(54005, 501481, 70019, 70018, 50089, 90120),
			{Proto: ProtoToken, OAuth: "expired_token"},
			{Proto: ProtoToken, OAuth: "bad_verification_code"},
		},
	},
	{
		ID:    "identity-unreachable",
		Kind:  KindTemporary,
		Title: "The Microsoft sign-in service at {host} could not be reached",
		Cause: "Getting an access token from the identity platform at {host} failed: a network error, no answer in time, " +
			"or a server error (5xx or 429). The mail server was not contacted, and the stored sign-in is kept.",
		Fix: "Nothing to do if it passes: the next attempt tries again with the same stored sign-in. " +
			"If it persists, check that this machine reaches https://{host} (DNS, firewall, proxy): " +
			"`Test-NetConnection {hostname} -Port {port}` on Windows, `curl -sI https://{host}` elsewhere.",
		Match: []Match{
			{Proto: ProtoToken, Cond: CondTemporary},
			{Proto: ProtoToken, OAuth: "temporarily_unavailable"},
		},
	},
}
