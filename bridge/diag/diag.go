// Package diag turns what Microsoft and Google answer (identity-platform
// errors, IMAP, POP3 and SMTP replies, network failures) into a diagnosis a
// person can act on: a stable identifier, a title, the likely cause and the
// fix with the user's address filled in. One table serves the protocol
// replies, the log, `bridge status`, the tray and `bridge doctor`.
package diag

import (
	"fmt"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// Proto names where a failure was seen: a mail protocol, or the identity
// platform's token endpoint.
type Proto string

// The protocols a failure is seen on.
const (
	ProtoIMAP Proto = "imap"
	ProtoPOP3 Proto = "pop3"
	ProtoSMTP Proto = "smtp"
	// ProtoToken is the identity platform; a *tokens.Error is classified
	// as seen there.
	ProtoToken Proto = "token"
	// ProtoGraph is Microsoft Graph, which the SMTP front end submits
	// messages to when the account sends through it (smtp_via). Its
	// Failure holds the HTTP status as Code and "ErrorCode: message" as
	// Text.
	ProtoGraph Proto = "graph"
)

// Stage names the step of a mail session a failure happened at. For the
// identity platform it is the tokens.Error Op ("refresh", "code exchange",
// "device code", "sign-in").
type Stage string

// The stages of a mail session, in the order they happen.
const (
	// StageProxy: the proxy the upstream is reached through (its TCP
	// connection, its authentication, the tunnel it was asked for).
	StageProxy Stage = "proxy"
	// StageDial: the TCP connection to the upstream.
	StageDial Stage = "dial"
	// StageTLS: the TLS handshake, implicit or after STARTTLS.
	StageTLS Stage = "tls"
	// StageGreeting: the upstream's greeting (and SMTP's EHLO).
	StageGreeting Stage = "greeting"
	// StageAuth: the XOAUTH2 login.
	StageAuth Stage = "auth"
	// StageMailbox: the first IMAP command after login.
	StageMailbox Stage = "mailbox"
	// StageSession: a logged-in IMAP session ended by the upstream (BYE).
	StageSession Stage = "session"
	// StageMail, StageRcpt, StageData: the SMTP transaction's commands.
	StageMail Stage = "mail"
	StageRcpt Stage = "rcpt"
	StageData Stage = "data"
	// StageCodeExchange is the identity platform's answer to a sign-in's
	// authorization code (tokens.Error Op "code exchange").
	StageCodeExchange Stage = "code exchange"
	// StageGraphToken is the identity platform's answer to a request for
	// a Microsoft Graph token (tokens.Error Op "graph token").
	StageGraphToken Stage = "graph token"
)

// Failure is one refusal seen upstream, before classification. Front ends
// build it from the wire; the token layer's *tokens.Error is classified too.
type Failure struct {
	// Proto is the mail protocol: ProtoIMAP, ProtoPOP3 or ProtoSMTP.
	Proto Proto
	// Stage is where it happened, one of the Stage constants.
	Stage Stage
	// Code is the SMTP reply code (535), or Graph's HTTP status; 0 for
	// IMAP and POP3.
	Code int
	// Enhanced is the SMTP enhanced status code ("5.7.139"), if any.
	Enhanced string
	// RespCode is the IMAP response code ("AUTHENTICATIONFAILED"), if any.
	RespCode string
	// Text is the upstream's own words, unaltered (never an AUTH line).
	Text string
	// Err is the transport error for dial/TLS failures.
	Err error
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("%s %s: %v", f.Proto, f.Stage, f.Err)
	}
	if f.Code != 0 {
		if f.Enhanced != "" {
			return fmt.Sprintf("%s %s: %d %s %s", f.Proto, f.Stage, f.Code, f.Enhanced, f.Text)
		}
		return fmt.Sprintf("%s %s: %d %s", f.Proto, f.Stage, f.Code, f.Text)
	}
	return fmt.Sprintf("%s %s: %s", f.Proto, f.Stage, f.Text)
}

func (f *Failure) Unwrap() error { return f.Err }

// Account is what the fix texts need to know of the account.
type Account struct {
	// Email is the address the client logs in with.
	Email string
	// Mailbox is the XOAUTH2 user= (a shared mailbox); empty means Email.
	Mailbox string
	// Delegate is the account whose tokens are used (token_from); empty
	// means Email.
	Delegate string
	// Personal is true for Outlook.com / consumer accounts.
	Personal bool
	// Provider is the account's provider: "microsoft" (or empty), "gmail"
	// or "custom". Entries made for one provider's words match only its
	// accounts.
	Provider string
	// Tenant is the account's tenant setting, for the admin-consent URL;
	// empty, "common" and "consumers" show "organizations" there.
	Tenant string
	// ClientID is the app registration's client id, for the admin-consent
	// URL; empty shows a placeholder.
	ClientID string
	// ViaGraph is true when the account sends through Microsoft Graph
	// when SMTP AUTH is off, or always (smtp_via "auto" or "graph").
	ViaGraph bool
	// App is true for an app-only account (client credentials): its
	// mail refusals are explained by the app's setup steps, its fixes name
	// `bridge login EMAIL --app` (Entry.AppFix).
	App bool
	// AppGrant is what the app-only token of the failed login granted
	// (its roles and service principal); nil when not known.
	AppGrant *tokens.AppGrant
	// Servers are the account's upstreams: host:port of its IMAP, POP3
	// and SMTP servers, the host of its token endpoint (ProtoToken) and
	// of its Graph endpoint (ProtoGraph).
	// They name the host in a fix when the failure does not; a missing
	// one is Microsoft's.
	Servers map[Proto]string
	// Proxy is the host:port of the proxy the account's connections go
	// through; empty for none. It names the proxy in a fix when the
	// failure does not.
	Proxy string
}

// AppRole is the application permission an app-only token needs for p,
// as its roles claim names it; "" for the identity platform.
func AppRole(p Proto) string {
	switch p {
	case ProtoIMAP:
		return "IMAP.AccessAsApp"
	case ProtoPOP3:
		return "POP.AccessAsApp"
	case ProtoSMTP:
		return "SMTP.SendAsApp"
	}
	return ""
}

// Diagnosis is the verdict on one failure.
type Diagnosis struct {
	// ID is stable, for scripts and tests: "smtp-auth-disabled-tenant".
	ID string `json:"id"`
	// Kind says who acts: one of the Kind constants ("admin", "user",
	// "app", "temporary", "bridge", "unknown").
	Kind Kind `json:"kind"`
	// Email is the account the diagnosis is for; Short names it in the
	// `bridge doctor` hint.
	Email string `json:"email,omitempty"`
	// Title is one line: "Authenticated SMTP is switched off for the organisation".
	Title string `json:"title"`
	// Cause is the likely cause, worded as sure as the facts allow.
	Cause string `json:"cause"`
	// Fix is what to do, with the address filled in.
	Fix string `json:"fix"`
	// Raw is the upstream's own text.
	Raw string `json:"raw,omitempty"`
	// At is when it was seen.
	At time.Time `json:"at"`
}
