// Package bridge is the proxy that lets password-only mail clients on this
// machine use a Microsoft 365 or Outlook.com mailbox: clients log in with a
// local password, and the bridge logs in upstream with SASL XOAUTH2.
//
// Bridge is the shared core: the accounts, resolved from the config, with
// their token sources and local passwords; the local login, with its
// password-guessing limits (guard.go); each account's status and last
// diagnosis, with the events that tell the control socket and the
// [notify] command of a change (status.go, notify.go); and upstream
// dialing with verified TLS (dial.go).
//
// The front ends speak each protocol until login and then hand over: IMAP
// (imap*.go) and POP3 (pop3*.go) relay bytes both ways once the upstream
// accepted the token (relay.go); SMTP (smtp*.go), built on go-smtp, relays
// each MAIL, RCPT and DATA and returns the upstream's own reply. Server runs
// their listeners from the config; lifecycle.go holds what the three share:
// the connection set, graceful shutdown, and the login context that
// shutdown cancels. With [log] trace on, trace.go logs the lines before
// login, credentials redacted.
//
// What the upstream refuses is classified by package diag, and the front
// ends word the diagnosis in their protocol's reply.
package bridge
