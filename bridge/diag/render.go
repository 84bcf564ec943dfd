package diag

import (
	"net"
	"net/url"
	"strings"

	"github.com/mailbridge/bridge/tokens"
)

// For fills e's templates for account a, without a failure: `bridge doctor`
// uses it to explain a check it ran itself.
func (e Entry) For(a Account) Diagnosis {
	return e.render(a, &evidence{})
}

func (e Entry) render(a Account, ev *evidence) Diagnosis {
	fix, title, kind := e.Fix, e.Title, e.Kind
	switch {
	case a.App && e.AppFix != "":
		fix = e.AppFix
	case a.ViaGraph && e.GraphFix != "":
		fix = e.GraphFix
	case a.Personal && e.PersonalFix != "":
		fix = e.PersonalFix
		if kind == KindAdmin {
			kind = KindUser
		}
	case a.shared() && e.SharedFix != "":
		fix = e.SharedFix
	}
	if a.Personal && e.PersonalTitle != "" {
		title = e.PersonalTitle
	}
	r := a.replacer(ev, e.proto())
	return Diagnosis{
		ID:    e.ID,
		Kind:  kind,
		Email: a.Email,
		Title: r.Replace(title),
		Cause: r.Replace(e.Cause),
		Fix:   r.Replace(fix),
	}
}

// shared reports whether the account reads another mailbox or borrows
// another account's tokens.
func (a Account) shared() bool {
	return (a.Mailbox != "" && !strings.EqualFold(a.Mailbox, a.Email)) ||
		(a.Delegate != "" && !strings.EqualFold(a.Delegate, a.Email))
}

// proto is the protocol every matcher of e names, or "" when they name
// none or several.
func (e Entry) proto() Proto {
	var p Proto
	for i, m := range e.Match {
		if i > 0 && m.Proto != p {
			return ""
		}
		p = m.Proto
	}
	return p
}

// defaultPorts fill {port} when the failure named a host without one.
var defaultPorts = map[Proto]string{ProtoIMAP: "993", ProtoPOP3: "995", ProtoSMTP: "587", ProtoToken: "443", ProtoGraph: "443"}

// replacer fills the templates. {host}, {hostname} and {port} name what
// the failure names, else the account's server for the failure's protocol
// (home, the entry's own, when the failure has none), so a fix never
// shows a word to replace where a host goes.
func (a Account) replacer(ev *evidence, home Proto) *strings.Replacer {
	email := orDefault(a.Email, "EMAIL")
	tenant := a.Tenant
	switch strings.ToLower(tenant) {
	case "", "common", "consumers":
		// Admin consent is given by a work or school tenant; the
		// organizations alias lets the administrator's own tenant answer.
		tenant = "organizations"
	}
	proto := ev.proto
	if proto == "" {
		proto = home
	}
	host := ev.host
	if host == "" && proto != "" {
		host = a.server(proto)
	}
	hostname, port := host, defaultPorts[proto]
	if h, p, err := net.SplitHostPort(host); err == nil {
		hostname, port = h, p
	}
	if hostname == "" || port == "" {
		// Neither the failure nor its protocol names the server: the
		// commands check the account's server of that name, or its IMAP
		// server, the one every client uses.
		s := a.serverNamed(hostname)
		if h, p, err := net.SplitHostPort(s); err == nil {
			hostname, port = orDefault(hostname, h), orDefault(port, p)
		}
	}
	spID := "ENTERPRISE_APP_OBJECT_ID"
	if a.AppGrant != nil && a.AppGrant.ServicePrincipal != "" {
		spID = a.AppGrant.ServicePrincipal
	}
	return strings.NewReplacer(
		"{role}", orDefault(AppRole(proto), "the protocol's permission"),
		"{sp_id}", spID,
		"{email}", email,
		"{mailbox}", orDefault(a.Mailbox, email),
		"{delegate}", orDefault(a.Delegate, email),
		"{tenant}", tenant,
		"{client_id}", orDefault(a.ClientID, "YOUR_CLIENT_ID"),
		"{service}", ServiceName(a.Provider),
		"{host}", orDefault(host, "the mail server"),
		"{hostname}", hostname,
		"{port}", port,
		"{proxy}", orDefault(orDefault(ev.proxy, a.Proxy), "the proxy"),
	)
}

// server returns the account's address for p: host:port for a mail
// protocol, the token endpoint's host for ProtoToken. Where the account
// names none, Microsoft's are used.
func (a Account) server(p Proto) string {
	if s := a.Servers[p]; s != "" {
		return s
	}
	ms := tokens.Microsoft("")
	switch p {
	case ProtoIMAP:
		return ms.IMAP
	case ProtoPOP3:
		return ms.POP3
	case ProtoSMTP:
		return ms.SMTP
	case ProtoToken:
		return hostOf(ms.TokenURL)
	case ProtoGraph:
		return "graph.microsoft.com"
	}
	return ""
}

// serverNamed returns the account's mail server (host:port) whose host is
// hostname, or its IMAP server.
func (a Account) serverNamed(hostname string) string {
	for _, p := range []Proto{ProtoIMAP, ProtoPOP3, ProtoSMTP} {
		if h, _, err := net.SplitHostPort(a.server(p)); err == nil && strings.EqualFold(h, hostname) {
			return a.server(p)
		}
	}
	return a.server(ProtoIMAP)
}

// hostOf returns the host (and port, when the URL has one) of a URL.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Host
}

// ServiceName names who runs an account's servers, by its provider, at
// the start of a sentence: "Microsoft", "Google", or "The provider" for a
// custom one.
func ServiceName(provider string) string {
	switch strings.ToLower(provider) {
	case "", "microsoft":
		return "Microsoft"
	case "gmail":
		return "Google"
	}
	return "The provider"
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// Temporary reports whether the failure should pass by itself, so a front
// end answers with a "try again later" code rather than a refusal.
func (d Diagnosis) Temporary() bool { return d.Kind == KindTemporary }

// maxShort bounds Short: IMAP and POP3 servers commonly accept reply lines
// far longer, but mail clients show these texts in small dialogs.
const maxShort = 200

// Short is one ASCII line for a NO, -ERR or SMTP reply text: the title and
// a pointer to `bridge doctor`, at most 200 bytes.
func (d Diagnosis) Short() string {
	title := ReplyText(d.Title, 0)
	if title == "" {
		title = "Microsoft refused the request"
	}
	hint := "; run `bridge doctor " + ReplyText(d.Email, 0) + "` for the fix"
	if d.Email == "" || len(hint) > maxShort/2 {
		hint = "; run `bridge doctor` for the fix"
	}
	if len(title)+len(hint) > maxShort {
		title = strings.TrimSpace(title[:maxShort-len(hint)-3]) + "..."
	}
	return title + hint
}

// ReplyText makes s safe inside one protocol reply line (an IMAP NO, a
// POP3 -ERR, an SMTP reply): printable ASCII only, line breaks and tabs as
// spaces, anything else as '?', and at most max bytes when max > 0.
func ReplyText(s string, max int) string {
	var b strings.Builder
	for _, r := range s {
		switch {
		case r == '\r' || r == '\n' || r == '\t':
			b.WriteByte(' ')
		case r < 0x20 || r > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteRune(r)
		}
	}
	out := strings.TrimSpace(b.String())
	if max > 3 && len(out) > max {
		out = strings.TrimSpace(out[:max-3]) + "..."
	}
	return out
}

// Long is the full text for the log and `bridge doctor`: title and ID, then
// cause, fix and the raw upstream text, one labelled paragraph each.
func (d Diagnosis) Long() string {
	var b strings.Builder
	b.WriteString(d.Title)
	if d.ID != "" {
		b.WriteString(" [" + d.ID + "]")
	}
	b.WriteByte('\n')
	para := func(label, text string) {
		if text == "" {
			return
		}
		b.WriteString(label)
		b.WriteString(strings.ReplaceAll(strings.TrimSpace(text), "\n", "\n"+strings.Repeat(" ", len(label))))
		b.WriteByte('\n')
	}
	para("  Cause: ", d.Cause)
	para("  Fix:   ", d.Fix)
	para("  Raw:   ", d.Raw)
	return strings.TrimSuffix(b.String(), "\n")
}
