package diag

// netEntries explain failures to reach the mail servers at all.
var netEntries = []Entry{
	{
		ID:    "upstream-unreachable",
		Kind:  KindTemporary,
		Title: "{service}'s mail server could not be reached",
		Cause: "Connecting to {host} failed (name lookup, refused connection or time-out). " +
			"Nothing is wrong with the account; the network path is.",
		Fix: "Check that this machine resolves {hostname} and reaches it on TCP port {port}: " +
			"`Test-NetConnection {hostname} -Port {port}` on Windows, `nc -vz {hostname} {port}` elsewhere. " +
			"A firewall, or a network that allows only traffic through a proxy, may block it.",
		Match: []Match{
			{Stage: StageDial},
			{Cond: CondDNS},
			{Cond: CondRefused},
			{Cond: CondTimeout},
		},
	},
	{
		ID:    "upstream-tls",
		Kind:  KindAdmin,
		Title: "{service}'s mail server: the secure connection failed",
		Cause: "The TLS handshake with {host} failed or its certificate was not trusted. " +
			"Most often a proxy or antivirus on the network inspects TLS and presents its own certificate; a wrong system clock also does this.",
		Fix: "If the network inspects TLS, put that proxy's CA certificate (PEM) in a file and set upstream_ca_file in the [tls] section of the config. " +
			"Otherwise check the system clock, and that {hostname} is not redirected elsewhere.",
		Match: []Match{
			{Stage: StageTLS},
			{Cond: CondCert},
			{Cond: CondTLS},
		},
	},
}

// fallbackEntries catch what nothing above recognises, per protocol, so the
// reply still says where it failed and shows the raw words.
var fallbackEntries = []Entry{
	{
		ID:    "imap-failed",
		Kind:  KindUnknown,
		Title: "{service} refused an IMAP request",
		Cause: "The IMAP server answered in a way the bridge does not recognise; its own words are below.",
		Fix:   "Run `bridge doctor {email}` to check each step of the connection, and read the raw answer.",
		Match: []Match{{Proto: ProtoIMAP}},
	},
	{
		ID:    "pop-failed",
		Kind:  KindUnknown,
		Title: "{service} refused a POP request",
		Cause: "The POP server answered in a way the bridge does not recognise; its own words are below.",
		Fix:   "Run `bridge doctor {email}` to check each step of the connection, and read the raw answer.",
		Match: []Match{{Proto: ProtoPOP3}},
	},
	{
		ID:    "smtp-failed",
		Kind:  KindUnknown,
		Title: "{service} refused an SMTP request",
		Cause: "The SMTP server answered in a way the bridge does not recognise; its own words are below.",
		Fix:   "Run `bridge doctor {email}` to check each step of the connection, and read the raw answer.",
		Match: []Match{{Proto: ProtoSMTP}},
	},
	{
		ID:    "token-failed",
		Kind:  KindUnknown,
		Title: "The Microsoft sign-in service refused the request",
		Cause: "The identity platform answered with an error the bridge does not recognise; its own words are below.",
		Fix: "Look the AADSTS number up at https://login.microsoftonline.com/error, " +
			"then run `bridge login {delegate}` once the cause is fixed.",
		Match: []Match{{Proto: ProtoToken}},
	},
	{
		ID:    unknownID,
		Kind:  KindUnknown,
		Title: "Unexpected failure",
		Cause: "The bridge does not recognise this failure; the raw text is below.",
		Fix:   "Run `bridge doctor {email}` to check each step of the connection.",
	},
}
