package diag

// Kind says who has to act on a diagnosis. Front ends use it to pick a wire
// code (IMAP [CONTACTADMIN] or [UNAVAILABLE], SMTP 4xx or 5xx).
type Kind string

// The kinds of diagnosis.
const (
	// KindAdmin: a tenant administrator must change a setting.
	KindAdmin Kind = "admin"
	// KindUser: the user acts (signs in again, changes a setting of their
	// own account, uses another address).
	KindUser Kind = "user"
	// KindApp: the app registration or the bridge's account config is wrong.
	KindApp Kind = "app"
	// KindTemporary: it passes by itself; retry later.
	KindTemporary Kind = "temporary"
	// KindBridge: Microsoft saw something the bridge never sends; a bug or
	// a client talking to Microsoft directly.
	KindBridge Kind = "bridge"
	// KindUnknown: no entry recognised the failure.
	KindUnknown Kind = "unknown"
)

// Entry is one row of the diagnosis table. Its texts are templates: {email},
// {mailbox} (the XOAUTH2 user=, defaulting to {email}), {delegate} (the
// account whose tokens are used, defaulting to {email}), {host}, {hostname},
// {port} (the upstream the failure names, else the account's server for
// its protocol: the mail server, or the token endpoint for the identity
// platform's entries), {proxy} (the proxy that failed, else the account's),
// {tenant}, {client_id} and {service} (who runs the servers: Microsoft,
// Google, or the provider) are filled in by Classify, and for app-only
// accounts {role} (the application permission the failure's protocol
// needs) and {sp_id} (the app's service principal, the enterprise
// application's object id, when the token said it).
type Entry struct {
	// ID is the stable identifier, lower-case words joined by "-".
	ID string
	// Kind says who acts.
	Kind Kind
	// Title is one line naming what happened.
	Title string
	// Cause is the likely cause, worded no surer than the evidence.
	Cause string
	// Fix is what to do for a work or school account.
	Fix string
	// SharedFix replaces Fix when the account reads a shared mailbox or
	// borrows a delegate's tokens; empty means Fix.
	SharedFix string
	// PersonalFix replaces Fix for Outlook.com accounts; empty means Fix.
	// An Outlook.com account has no administrator: with a PersonalFix, an
	// entry of KindAdmin is KindUser for it.
	PersonalFix string
	// PersonalTitle replaces Title for Outlook.com accounts, so that the
	// one line a mail client shows already names the setting to change;
	// empty means Title.
	PersonalTitle string
	// GraphFix replaces the others when the account sends through
	// Microsoft Graph (Account.ViaGraph); empty means they apply.
	GraphFix string
	// AppFix replaces Fix for app-only accounts; empty means Fix.
	AppFix string
	// Match lists the shapes of failure this entry explains; any one
	// suffices. An entry without matchers is only reached by ID.
	Match []Match
}

// Match is one shape of failure. Empty fields match anything; a Match with
// every field empty matches nothing. When several entries match, the most
// specific Match wins (see score), then the earlier entry.
type Match struct {
	// Provider is the account's provider ("gmail"); empty matches any.
	Provider string
	// Proto is the protocol, or ProtoToken for the identity platform.
	Proto Proto
	// Stage is the Failure stage or, for the identity platform, the
	// tokens.Error Op.
	Stage Stage
	// Code is the SMTP reply code.
	Code int
	// Enhanced lists SMTP enhanced status codes; any one matches.
	Enhanced []string
	// RespCode is the IMAP response code, such as "AUTHENTICATIONFAILED".
	RespCode string
	// Text lists substrings of the upstream text (case-insensitive); every
	// one must appear.
	Text []string
	// AADSTS lists identity-platform error numbers; any one matches.
	AADSTS []int
	// OAuth is the OAuth error field, such as "invalid_grant".
	OAuth string
	// Cond is a condition the classifier derives: see the cond constants.
	Cond string
}

// Conditions the classifier derives from the error's type.
const (
	// CondNeedsLogin: the error wraps tokens.ErrNeedsLogin or is an
	// identity-platform answer that only a new sign-in fixes.
	CondNeedsLogin = "needs-login"
	// CondTemporary: the identity platform could not be reached or
	// answered 5xx or 429.
	CondTemporary = "temporary"
	// CondDNS, CondRefused, CondTimeout, CondNet: the dial failed on name
	// resolution, a refused connection, a time-out, or otherwise.
	CondDNS     = "dns"
	CondRefused = "refused"
	CondTimeout = "timeout"
	CondNet     = "net"
	// CondCert: the upstream's certificate was not trusted or did not
	// match; CondTLS: another TLS handshake failure.
	CondCert = "tls-cert"
	CondTLS  = "tls"
	// CondScopeNotGranted: a sign-in's answer lacked a scope the mail
	// servers need (tokens.ErrScopeNotGranted).
	CondScopeNotGranted = "scope-not-granted"
	// CondApp: a mail server refused an app-only account (Account.App);
	// CondAppRole: at the login, and the token's roles lack the
	// protocol's permission (AppRole). CondAppNeedsLogin: an app-only
	// account has no usable secret or certificate (in place of
	// CondNeedsLogin).
	CondApp           = "app"
	CondAppRole       = "app-role"
	CondAppNeedsLogin = "app-needs-login"
)

// table is every entry, in the order ties are broken. To explain a new
// failure, add one Entry to the table file of its area (table_mail.go,
// table_smtp.go, table_graph.go, table_token.go, table_app.go,
// table_apponly.go, table_net.go, table_gmail.go) with a Match built from the
// upstream's real words, and one case to classifyCases in classify_test.go;
// TestEveryEntryTested fails until both exist.
var table = concat(appOnlyEntries, mailEntries, smtpEntries, graphEntries, tokenEntries, appEntries, gmailEntries, netEntries, fallbackEntries)

func concat(parts ...[]Entry) []Entry {
	var all []Entry
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

// unknownID is the entry used when nothing else matches.
const unknownID = "unknown"

// Lookup returns the table entry with id.
func Lookup(id string) (Entry, bool) {
	for _, e := range table {
		if e.ID == id {
			return e, true
		}
	}
	return Entry{}, false
}

// IDs returns every entry's ID in table order.
func IDs() []string {
	ids := make([]string, len(table))
	for i, e := range table {
		ids[i] = e.ID
	}
	return ids
}
