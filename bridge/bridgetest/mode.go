package bridgetest

import "fmt"

// Mode scripts how the imitation servers behave at and after login, so
// tests can reproduce the failures Exchange Online sends. Modes are read at
// the moment a client authenticates; changing the mode later does not affect
// sessions that already logged in (except through ExpireSessions).
type Mode int

const (
	// Normal accepts a login whose token the Validator accepts.
	Normal Mode = iota
	// Disabled refuses every XOAUTH2 login, even with a valid token, the way
	// Exchange does when IMAP or POP is switched off for the mailbox:
	// IMAP "NO AUTHENTICATE failed.", POP3 "-ERR Authentication failure:
	// unknown user name or bad password.".
	Disabled
	// NotConnected (IMAP only) accepts the login, then answers the first
	// mailbox command (SELECT, EXAMINE, LIST, LSUB, NAMESPACE, STATUS) with
	// "BAD User is authenticated but not connected." followed by
	// "* BYE Connection closed. 14" and closes the connection, as Exchange
	// does when the token's identity has no rights on the mailbox.
	// POP3 treats it as Normal.
	NotConnected
	// TokenExpiredMidSession (IMAP only) accepts the login, then ends the
	// session with "* BYE Session invalidated - AccessTokenExpired" after
	// IMAPOptions.ExpireAfter, or when IMAP.ExpireSessions is called.
	// POP3 treats it as Normal.
	TokenExpiredMidSession
	// NotConnectedBye (IMAP only) accepts the login with Exchange's
	// "OK AUTHENTICATE completed." (no CAPABILITY code), sends
	// "* BYE User is authenticated but not connected." right after it and
	// closes the connection: the shape some mailboxes give instead of
	// NotConnected's BAD. POP3 treats it as Normal.
	NotConnectedBye
)

// String returns the mode's name as used in logs and test names.
func (m Mode) String() string {
	switch m {
	case Normal:
		return "normal"
	case Disabled:
		return "disabled"
	case NotConnected:
		return "not-connected"
	case TokenExpiredMidSession:
		return "token-expired-mid-session"
	case NotConnectedBye:
		return "not-connected-bye"
	default:
		return fmt.Sprintf("mode(%d)", int(m))
	}
}

// Service is the mail service an imitation answers as. The zero value is
// Exchange Online.
type Service int

const (
	// Exchange answers as Exchange Online (outlook.office365.com and
	// smtp.office365.com), with the Modes and Refusals above.
	Exchange Service = iota
	// Gmail answers as imap.gmail.com, pop.gmail.com and smtp.gmail.com
	// (docs/google-facts.md §5): Google's greetings, and a refused token
	// answered with Google's error challenge, the base64 of
	// {"status":"400","schemes":"Bearer","scope":"https://mail.google.com/"},
	// which the client must answer with an empty line before the final
	// refusal comes: IMAP "NO [AUTHENTICATIONFAILED] Invalid credentials
	// (Failure)", SMTP "535-5.7.8 Username and Password not accepted...".
	// Mode Disabled is IMAP (or POP) switched off by a Workspace
	// administrator; NotConnected and TokenExpiredMidSession act as Normal,
	// and SMTP's Refusals at AUTH (TenantDisabled, MailboxDisabled,
	// AuthUnsuccessful, SecurityDefaults) and its three-session limit do
	// not apply.
	Gmail
)
