package bridgetest

import (
	"crypto/rand"
	"encoding/hex"
)

// gmailScope is the scope Google's error challenge names.
const gmailScope = "https://mail.google.com/"

// gmailChallenge is the error document Gmail sends as a challenge after a
// refused XOAUTH2 token, on IMAP, POP3 and SMTP alike (observed 2013-2024;
// Google's own example shows status 401, never seen in the wild).
var gmailChallenge = []byte(`{"status":"400","schemes":"Bearer","scope":"` + gmailScope + `"}`)

// Gmail's words, verbatim where a capture exists (docs/google-facts.md
// §5). The tail of the IMAP-disabled text after its first sentence, the
// final POP3 refusal of a token, and POP switched off are unconfirmed: the
// POP3 refusal is the one Gmail gives a password, for both.
const (
	gmailIMAPRefused  = "Invalid credentials (Failure)"
	gmailIMAPDisabled = "IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)"
	gmailPOPRefused   = "-ERR [AUTH] Username and password not accepted."
	gmailPOPAuthOK    = "+OK Welcome."
	gmailPOPQuit      = "+OK Farewell."
	gmailSMTPHost     = "smtp.gmail.com"
)

var gmailPOPCapa = []string{"USER", "RESP-CODES", "EXPIRE 0", "LOGIN-DELAY 300", "TOP", "UIDL", "X-GOOGLE-RICO", "SASL PLAIN XOAUTH2 OAUTHBEARER"}

// gmailID is a made-up session id of the kind Gmail ends its lines with.
func gmailID() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b[:6]) + "-" + hex.EncodeToString(b[6:])
}

// gmailSMTPRefusal is the text of Gmail's 535 5.7.8 to a refused token,
// in two lines: go-smtp puts the code before each and the enhanced code
// before the last, giving "535-5.7.8 ... go to" and "535 5.7.8  https://...".
func gmailSMTPRefusal() string {
	return "5.7.8 Username and Password not accepted. For more information, go to\n https://support.google.com/mail/?p=BadCredentials " + gmailID() + " - gsmtp"
}
