// Package diag turns what Microsoft answers (identity-platform errors, IMAP,
// POP3 and SMTP replies, network failures) into a diagnosis a person can act
// on: a stable identifier, a title, the likely cause and the fix with the
// user's address filled in. One table serves the protocol replies, the log,
// `bridge status`, the tray and `bridge doctor`.
package diag

import (
	"fmt"
	"time"
)

// Failure is one refusal seen upstream, before classification. Front ends
// build it from the wire; the token layer's *tokens.Error is classified too.
type Failure struct {
	// Proto is "imap", "pop3" or "smtp".
	Proto string
	// Stage is where it happened: "dial", "tls", "greeting", "auth",
	// "mailbox" (first command after login), "session" (mid-session BYE),
	// "mail", "rcpt", "data".
	Stage string
	// Code is the SMTP reply code (535); 0 for IMAP and POP3.
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
	// Tenant is the account's tenant setting, for the admin-consent URL;
	// empty, "common" and "consumers" show "organizations" there.
	Tenant string
	// ClientID is the app registration's client id, for the admin-consent
	// URL; empty shows a placeholder.
	ClientID string
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
