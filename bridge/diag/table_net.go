package diag

// netEntries explain failures to reach the mail servers at all: first
// through a proxy, then directly.
var netEntries = []Entry{
	{
		ID:    "proxy-unreachable",
		Kind:  KindTemporary,
		Title: "The proxy could not be reached",
		Cause: "The bridge reaches {host} through the proxy {proxy}, and connecting to the proxy failed " +
			"(name lookup, refused connection or time-out), or what answered there did not speak the proxy protocol the setting names. " +
			"The mail server was never asked.",
		Fix: "Check the proxy setting (proxy in [network], or in the account): http:// for an HTTP proxy, socks5:// for a SOCKS proxy, and its host and port. " +
			"Check that this machine reaches {proxy} (`nc -vz` with the proxy's host and port; on Windows `Test-NetConnection`). " +
			"Where no proxy is needed, remove the setting, or set proxy = \"direct\" in the account.",
		Match: []Match{{Stage: StageProxy, Cond: CondProxyUnreachable}},
	},
	{
		ID:    "proxy-auth-required",
		Kind:  KindApp,
		Title: "The proxy wants a user name and password",
		Cause: "The proxy {proxy} refused to open a tunnel to {host} without valid credentials " +
			"(HTTP 407 Proxy Authentication Required, or a SOCKS5 authentication refusal), or no password is stored for the proxy user the setting names.",
		Fix: "Name the proxy user in the setting, proxy = \"http://USER@{proxy}\" (socks5:// for a SOCKS proxy), " +
			"store its password with `bridge proxy-password {email}`, and reload the bridge (SIGHUP, or restart it). " +
			"The bridge sends Basic credentials; a proxy that takes only NTLM or Kerberos needs a local helper such as cntlm or px, and the bridge pointed at that helper.",
		Match: []Match{{Stage: StageProxy, Cond: CondProxyAuth}},
	},
	{
		ID:    "proxy-refused",
		Kind:  KindAdmin,
		Title: "The proxy refused the connection to the mail server",
		Cause: "The proxy {proxy} answered the request for a tunnel to {host} with the error below. " +
			"403 usually means its rules allow CONNECT only to some ports (often 443 alone); a 5xx answer means the proxy could not reach {host} itself. " +
			"The mail server was never asked.",
		Fix: "Ask the network administrator to allow CONNECT from this machine to {hostname} on port {port} " +
			"(squid: add {port} to the SSL_ports ACL; tinyproxy: a ConnectPort {port} line). " +
			"Until then the mail cannot pass through this proxy: use another one, or proxy = \"direct\" in the account where the port is open.",
		Match: []Match{{Stage: StageProxy, Cond: CondProxyRefused}},
	},
	{
		ID:    "socks-refused",
		Kind:  KindAdmin,
		Title: "The SOCKS proxy refused the connection to the mail server",
		Cause: "The SOCKS5 proxy {proxy} refused to connect to {host}; its reply code and the meaning RFC 1928 gives it are below. " +
			"\"Connection not allowed by ruleset\" is the proxy's own rule; \"host unreachable\", \"network unreachable\" and " +
			"\"connection refused\" are what the proxy met when it tried {host}.",
		Fix: "For a ruleset refusal, ask the proxy's administrator to allow {hostname} on port {port}. " +
			"Otherwise check from the proxy's side that {hostname} resolves and port {port} answers: " +
			"the bridge sends the host name, and the proxy looks it up itself.",
		Match: []Match{{Stage: StageProxy, Cond: CondSOCKSRefused}},
	},
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
