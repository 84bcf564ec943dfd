package diag

// appEntries explain identity-platform answers that point at the app
// registration or at the account's tenant, client and scope settings.
var appEntries = []Entry{
	{
		ID:    "app-not-found",
		Kind:  KindApp,
		Title: "The app registration was not found in this tenant",
		Cause: "The client id is mistyped, or the app is registered in another tenant as single-tenant, " +
			"or the organisation has not added the app yet.",
		Fix: "Check client_id in the config for {email}. If the app lives in another tenant, make it multi-tenant " +
			"(App registrations > the app > Authentication > Supported account types) or register one in this tenant; " +
			"an administrator may add it by consenting at https://login.microsoftonline.com/{tenant}/adminconsent?client_id={client_id}. " +
			"Then run `bridge login {delegate}`.",
		AppFix: "Check client_id and tenant for {email}: the app ({client_id}) must be registered in the tenant {tenant} " +
			"(Microsoft Entra admin centre > App registrations > All applications, or Enterprise applications for an app registered elsewhere " +
			"that an administrator added). Then run `bridge login {email} --app`.",
		Match: []Match{
			aad(700016),
		},
	},
	{
		ID:    "app-disabled",
		Kind:  KindApp,
		Title: "The app registration is disabled",
		Cause: "The client id was disabled by its owner or by Microsoft (this happened to Thunderbird's old client id in August 2024).",
		Fix: "Use another client id: register an app (Microsoft Entra admin centre > App registrations > New registration) " +
			"with the platform \"Mobile and desktop applications\", redirect URI http://localhost and \"Allow public client flows\" set to Yes, " +
			"put its client id in client_id for {email}, and run `bridge login {delegate}`.",
		Match: []Match{
			aad(7000112),
		},
	},
	{
		ID:    "app-first-party",
		Kind:  KindApp,
		Title: "A Microsoft client id cannot be borrowed for mail",
		Cause: "The configured client id belongs to a Microsoft first-party app, which Microsoft does not let other programs use for this API.",
		Fix: "Register an app of your own (Mobile and desktop applications, redirect URI http://localhost, \"Allow public client flows\" = Yes), " +
			"put its client id in client_id for {email}, and run `bridge login {delegate}`.",
		Match: []Match{
			aad(65002),
		},
	},
	{
		ID:    "app-confidential",
		Kind:  KindApp,
		Title: "The app is set up as a confidential client",
		Cause: "The app registration has no \"Mobile and desktop applications\" platform or does not allow public client flows, " +
			"so Microsoft expects a client secret the bridge does not have.",
		Fix: "In the Microsoft Entra admin centre > App registrations > the app > Authentication: add the platform " +
			"\"Mobile and desktop applications\" with redirect URI http://localhost, and set \"Allow public client flows\" to Yes. " +
			"Then run `bridge login {delegate}`.",
		Match: []Match{
			aad(7000218),
		},
	},
	{
		ID:    "public-client-secret",
		Kind:  KindApp,
		Title: "A client secret was sent for a public app",
		Cause: "The app is registered as a public client, which must not send a secret, but client_secret is set for {email}.",
		Fix:   "Remove client_secret from the config for {email}, then run `bridge login {delegate}`.",
		Match: []Match{
			aad(700025),
		},
	},
	{
		ID:    "bad-secret",
		Kind:  KindApp,
		Title: "The client secret is wrong or has expired",
		Cause: "The configured client_secret does not match the app registration, or it has expired.",
		Fix: "Create a new secret (App registrations > the app > Certificates & secrets > New client secret) and put its Value, " +
			"not its Secret ID, in client_secret for {email}; or remove client_secret and allow public client flows. " +
			"Then run `bridge login {delegate}`.",
		AppFix: "Create a new client secret (App registrations > the app ({client_id}) > Certificates & secrets > New client secret) " +
			"and store its Value, not its Secret ID: `bridge login {email} --app`. " +
			"A certificate sends nothing secret and may live longer: `bridge login {email} --app --certificate FILE`.",
		Match: []Match{
			aad(7000215, 7000222),
		},
	},
	{
		ID:    "redirect-mismatch",
		Kind:  KindApp,
		Title: "The app does not accept the bridge's redirect URI",
		Cause: "The app registration does not list http://localhost as a redirect URI for desktop apps.",
		Fix: "In App registrations > the app > Authentication > Add a platform > Mobile and desktop applications, add http://localhost " +
			"(the port does not have to match). Or sign in without a redirect: `bridge login --device {delegate}`.",
		Match: []Match{
			aad(50011),
		},
	},
	{
		ID:    "bad-scope",
		Kind:  KindApp,
		Title: "The requested permissions (scopes) are not valid",
		Cause: "The scope list is empty, mixes resources (such as Microsoft Graph with Outlook scopes), " +
			"or asks for permissions that were not granted.",
		Fix: "Request only the Outlook scopes, the bridge's default: https://outlook.office.com/IMAP.AccessAsUser.All, " +
			"https://outlook.office.com/POP.AccessAsUser.All, https://outlook.office.com/SMTP.Send and offline_access " +
			"(remove scopes from the config for {email} to get them). Then run `bridge login {delegate}`.",
		Match: []Match{
			aad(70011, 700022, 28002, 28003, 900144, 90009),
			{Proto: ProtoToken, AADSTS: []int{70000}, Text: []string{"scope"}},
			{Proto: ProtoToken, OAuth: "invalid_scope"},
		},
	},
	{
		ID:    "api-not-available",
		Kind:  KindAdmin,
		Title: "The app or the organisation has no access to Exchange Online",
		Cause: "The app registration does not list the Exchange mail permissions, " +
			"or the organisation or {delegate} has no Exchange Online licence.",
		Fix: "In App registrations > the app > API permissions, add the delegated permissions IMAP.AccessAsUser.All, POP.AccessAsUser.All " +
			"and SMTP.Send and grant consent; check that {delegate} has a licence that includes Exchange Online. " +
			"Then run `bridge login {delegate}`.",
		AppFix: "App-only tokens are asked for with the scope https://outlook.office365.com/.default: remove scopes from the config for {email}. " +
			"Check that the organisation has Exchange Online. Then run `bridge login {email} --app`.",
		Match: []Match{
			aad(500011, 650052, 650057),
		},
	},
	{
		ID:    "personal-account-not-allowed",
		Kind:  KindApp,
		Title: "The app or tenant setting does not accept this kind of account",
		Cause: "A personal Microsoft account (Outlook.com) met an app or tenant that accepts only work or school accounts, " +
			"or a work account met a tenant it does not belong to.",
		Fix: "For an Outlook.com address: set the app's supported account types to include personal Microsoft accounts " +
			"(App registrations > the app > Authentication) and set tenant to consumers or common. " +
			"For a work or school address: set tenant to organizations, common, or the organisation's own tenant id. " +
			"Then run `bridge login {delegate}`.",
		PersonalFix: "{email} is a personal Microsoft account: set the app's supported account types to include personal Microsoft accounts " +
			"(App registrations > the app > Authentication), set tenant to consumers or common for {email}, " +
			"and run `bridge login {delegate}`.",
		Match: []Match{
			aad(500208, 16000, 50020, 9002332),
			{Proto: ProtoToken, OAuth: "unauthorized_client", Text: []string{"not enabled for consumers"}},
			{Proto: ProtoToken, Text: []string{"sign in here with a personal account"}},
		},
	},
	{
		ID:    "single-tenant-common",
		Kind:  KindApp,
		Title: "A single-tenant app was used through the common endpoint",
		Cause: "The app registration accepts only its own tenant (or the request is not supported over common or consumers), " +
			"but the account signs in through common or consumers.",
		Fix: "Set tenant for {email} to the organisation's tenant id or domain, or make the app multi-tenant. " +
			"Then run `bridge login {delegate}`.",
		AppFix: "App-only tokens come only from the organisation's own endpoint: set tenant for {email} to the tenant id " +
			"(Microsoft Entra admin centre > Overview > Tenant ID) or a verified domain, and remove token_url if it names common, " +
			"organizations or consumers. Then run `bridge login {email} --app`.",
		Match: []Match{
			aad(50194, 90130, 90124, 9001023),
		},
	},
	{
		ID:    "tenant-not-found",
		Kind:  KindApp,
		Title: "The tenant was not found",
		Cause: "The tenant setting for {email} names no Microsoft tenant.",
		Fix: "Set tenant for {email} to common, organizations, consumers, the tenant id (a GUID) or a verified domain of the organisation. " +
			"Then run `bridge login {delegate}`.",
		Match: []Match{
			aad(90002, 50059),
		},
	},
}
