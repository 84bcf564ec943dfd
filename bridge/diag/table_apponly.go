package diag

// appMail matches an app-only account's refusal at the login on each of
// protos under cond (CondApp or CondAppRole), with Exchange's generic
// words or without them, so that it outranks the delegated entries for
// the same words.
func appMail(cond string, protos ...Proto) []Match {
	var ms []Match
	for _, p := range protos {
		ms = append(ms, Match{Proto: p, Stage: StageAuth, Cond: cond})
		switch p {
		case ProtoIMAP:
			ms = append(ms, Match{Proto: p, Stage: StageAuth, Text: []string{"AUTHENTICATE failed"}, Cond: cond})
		case ProtoPOP3:
			ms = append(ms, Match{Proto: p, Stage: StageAuth, Text: []string{"unknown user name or bad password"}, Cond: cond})
		case ProtoSMTP:
			ms = append(ms, Match{Proto: p, Stage: StageAuth, Code: 535, Enhanced: []string{"5.7.3"}, Cond: cond})
		}
	}
	return ms
}

// appOnlyEntries explain what refuses an app-only (client credentials)
// account, step by step of its setup (docs/microsoft-facts.md §3.8): the
// application permission and its admin consent, the service principal in
// Exchange, the mailbox permission. Exchange answers each missing step
// with its generic refusal, so the entries read the token the login used
// (Account.AppGrant): a role it lacks is the likeliest cause; with the
// role present, the Exchange steps are.
var appOnlyEntries = []Entry{
	{
		ID:    "app-permission-missing",
		Kind:  KindAdmin,
		Title: "The app has no {role} permission, or no admin consent for it",
		Cause: "The app-only token for {mailbox} does not carry the {role} role: the application permission was not added " +
			"to the app registration, or an administrator has not granted consent for it. Exchange refuses such a token.",
		Fix: "An administrator adds the permission: Microsoft Entra admin centre > App registrations > the app ({client_id}) > " +
			"API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > Application permissions > {role}, " +
			"then \"Grant admin consent\" for the organisation (or opens https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id}). " +
			"The bridge gets a new token at the next login; `bridge doctor {email}` shows the roles a token carries.",
		Match: appMail(CondAppRole, ProtoIMAP, ProtoPOP3),
	},
	{
		ID:    "app-smtp-send-as-app",
		Kind:  KindAdmin,
		Title: "The app may not send mail: it has no SMTP.SendAsApp permission",
		Cause: "The app-only token for {mailbox} does not carry the SMTP.SendAsApp role, so Exchange refuses its SMTP login: " +
			"the application permission was not added or not consented to, " +
			"or (where the organisation grants it through RBAC for Applications instead) the role assignment is missing.",
		Fix: "An administrator adds the permission: Microsoft Entra admin centre > App registrations > the app ({client_id}) > " +
			"API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > Application permissions > SMTP.SendAsApp, " +
			"then \"Grant admin consent\" for the organisation. " +
			"Where RBAC for Applications is used instead, the Exchange role is assigned without that permission: " +
			"`New-ManagementRoleAssignment -Role \"Application SMTP.SendAsApp\" -App {client_id} -CustomResourceScope SCOPE` " +
			"(a management scope that includes {mailbox}).",
		Match: appMail(CondAppRole, ProtoSMTP),
	},
	{
		ID:    "app-not-in-exchange",
		Kind:  KindAdmin,
		Title: "Exchange does not let the app open {mailbox}",
		Cause: "Exchange refused the app's token for {mailbox}. Most often the app's service principal is not registered in Exchange, " +
			"or was registered with the app registration's object id instead of the enterprise application's, " +
			"or it has no permission on {mailbox}: Exchange gives one answer for all three.",
		Fix: "An administrator, in Exchange Online PowerShell (Connect-ExchangeOnline -Organization {tenant}):\n" +
			"1. registers the service principal with the enterprise application's object id " +
			"(Microsoft Entra admin centre > Enterprise applications > the app > Overview > Object ID, not the one under App registrations): " +
			"`New-ServicePrincipal -AppId {client_id} -ObjectId {sp_id}`; `Get-ServicePrincipal | Format-List AppId,ObjectId` shows what is registered, " +
			"and one with another object id is removed first (`Remove-ServicePrincipal -Identity` with the Identity it shows);\n" +
			"2. gives it the mailbox: `Add-MailboxPermission -Identity {mailbox} -User {sp_id} -AccessRights FullAccess`.\n" +
			"If both are in place, check that the protocol is on for the mailbox: `Get-CASMailbox -Identity {mailbox}`.",
		Match: appMail(CondApp, ProtoIMAP, ProtoPOP3, ProtoSMTP),
	},
	{
		ID:    "app-mailbox-permission",
		Kind:  KindAdmin,
		Title: "The app may sign in but not open {mailbox}",
		Cause: "Exchange accepted the app's token but will not open {mailbox}: the app's service principal has no permission on it.",
		Fix: "An administrator, in Exchange Online PowerShell: `Add-MailboxPermission -Identity {mailbox} -User {sp_id} -AccessRights FullAccess` " +
			"(check with `Get-MailboxPermission -Identity {mailbox}`). {sp_id} is the object id the service principal was registered with " +
			"(`Get-ServicePrincipal | Format-List AppId,ObjectId`).",
		Match: []Match{
			{Proto: ProtoIMAP, Text: []string{"authenticated but not connected"}, Cond: CondApp},
		},
	},
	{
		ID:    "app-credential-missing",
		Kind:  KindApp,
		Title: "The app's secret or certificate is missing or no longer accepted",
		Cause: "The bridge has no usable app credential for {email}: none is stored, or Microsoft refused the stored one (the raw answer says why).",
		Fix: "Run `bridge login {email} --app` with the app's current client secret, " +
			"or `bridge login {email} --app --certificate FILE` with its certificate and private key.",
		Match: []Match{
			{Proto: ProtoToken, Cond: CondAppNeedsLogin},
		},
	},
	{
		ID:    "app-certificate-refused",
		Kind:  KindApp,
		Title: "Microsoft does not accept the app's certificate",
		Cause: "The client assertion the bridge signed did not verify: the certificate is not uploaded to the app registration, " +
			"has expired there, or its key is not the one stored.",
		Fix: "Upload the certificate (its public part, without the key) under App registrations > the app ({client_id}) > " +
			"Certificates & secrets > Certificates, or renew it there, and store the matching certificate and key: " +
			"`bridge login {email} --app --certificate FILE`. `bridge doctor {email}` shows the thumbprint the bridge sends.",
		Match: []Match{
			aad(700027, 700030),
		},
	},
	{
		ID:    "app-assertion-clock",
		Kind:  KindApp,
		Title: "This machine's clock is off",
		Cause: "Microsoft refused the client assertion as outside its valid time: it is dated by this machine's clock, which is wrong by minutes or more.",
		Fix: "Set the system clock right and keep it synchronised (Linux: `timedatectl set-ntp true`; " +
			"Windows: Settings > Time & language > Date & time > Set time automatically); the next login tries again.",
		Match: []Match{
			aad(700024),
		},
	},
}
