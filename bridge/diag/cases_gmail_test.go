package diag

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/tokens"
)

const gmailAddr = "cat@gmail.com"

var gmailAcct = Account{Email: gmailAddr, Provider: "gmail", ClientID: "123456789012-abc.apps.googleusercontent.com"}

// gmailCases: Google's identity platform and Gmail's servers, in Google's
// own words (docs/google-facts.md §3-§5).
var gmailCases = []classifyCase{
	{"google expired or revoked", tokErr("refresh", 400, "invalid_grant", 0, "Token has been expired or revoked."), gmailAcct,
		"gmail-token-expired-or-revoked", []string{"bridge login " + gmailAddr, "Publish app", "In production"}},
	{"google expired or revoked, stored", fmt.Errorf("tokens: %s: %w: invalid_grant: Token has been expired or revoked., refused 2025-06-01T09:00:00Z", gmailAddr, tokens.ErrNeedsLogin),
		gmailAcct, "gmail-token-expired-or-revoked", []string{"bridge login " + gmailAddr}},
	{"google bad request", tokErr("refresh", 400, "invalid_grant", 0, "Bad Request"), gmailAcct,
		"gmail-token-needs-login", []string{"bridge login " + gmailAddr}},
	{"google invalid_rapt", tokErr("refresh", 400, "invalid_grant", 0, "reauth related error (invalid_rapt)"), gmailAcct,
		"gmail-token-needs-login", nil},
	{"google access_denied", tokErr("sign-in", 0, "access_denied", 0, ""), gmailAcct,
		"gmail-access-denied", []string{"Test users", "bridge login " + gmailAddr}},
	{"google admin_policy_enforced", tokErr("sign-in", 0, "admin_policy_enforced", 0, ""), gmailAcct,
		"gmail-admin-policy", []string{"API controls", "123456789012-abc.apps.googleusercontent.com", "Trusted"}},
	{"google mail scope unticked", fmt.Errorf("tokens: sign-in for %s granted %q, without https://mail.google.com/, which the mail servers need: %w",
		gmailAddr, "openid https://www.googleapis.com/auth/userinfo.email", tokens.ErrScopeNotGranted), gmailAcct,
		"gmail-scope-missing", []string{"Gmail API", "https://mail.google.com/", "Data Access"}},
	{"google secret missing", tokErr("code exchange", 400, "invalid_request", 0, "client_secret is missing."), gmailAcct,
		"gmail-client", []string{"client_secret"}},
	{"google secret wrong", tokErr("refresh", 401, "invalid_client", 0, "Unauthorized"), gmailAcct, "gmail-client", nil},
	{"google client deleted", tokErr("refresh", 401, "deleted_client", 0, "The OAuth client was deleted."), gmailAcct, "gmail-client", nil},
	{"google unreachable", tokErr("refresh", 503, "", 0, ""), gmailAcct, "gmail-identity-unreachable", []string{"oauth2.googleapis.com"}},
	{"google org_internal", tokErr("sign-in", 0, "org_internal", 0, ""), gmailAcct, "gmail-token-failed", []string{"bridge login " + gmailAddr}},

	{"gmail imap invalid credentials", &Failure{Proto: ProtoIMAP, Stage: StageAuth, RespCode: "AUTHENTICATIONFAILED", Text: "Invalid credentials (Failure)"},
		gmailAcct, "gmail-imap-auth-failed", []string{"bridge login " + gmailAddr, "permanently delete all your email"}},
	{"gmail imap disabled", &Failure{Proto: ProtoIMAP, Stage: StageAuth, RespCode: "ALERT",
		Text: "IMAP access is disabled for your domain. Please contact your domain administrator for questions about this feature. (Failure)"},
		gmailAcct, "gmail-imap-disabled", []string{"End User Access > POP and IMAP access"}},
	{"gmail imap not enabled", &Failure{Proto: ProtoIMAP, Stage: StageAuth, RespCode: "ALERT", Text: "Your account is not enabled for IMAP use."},
		gmailAcct, "gmail-imap-disabled", nil},
	{"gmail pop refused", popFail("auth", "[AUTH] Username and password not accepted."), gmailAcct,
		"gmail-pop-auth-failed", []string{"bridge login " + gmailAddr, "Forwarding and POP/IMAP"}},
	{"gmail smtp 535 5.7.8", &Failure{Proto: ProtoSMTP, Stage: StageAuth, Code: 535, Enhanced: "5.7.8",
		Text: "Username and Password not accepted. For more information, go to\n5.7.8  https://support.google.com/mail/?p=BadCredentials d2e1a72fcca58-6e4a8f3c1b2d - gsmtp"},
		gmailAcct, "gmail-smtp-auth-failed", []string{"bridge login " + gmailAddr}},
}

// TestGmailEntriesOnlyForGmail: Google's words on a Microsoft account get
// the Microsoft entries, and Gmail's entries never leak into them.
func TestGmailEntriesOnlyForGmail(t *testing.T) {
	for _, c := range gmailCases {
		d := Classify(c.err, work, seen)
		if strings.HasPrefix(d.ID, "gmail-") {
			t.Errorf("%s: a Microsoft account got %s", c.name, d.ID)
		}
	}
	for _, c := range []struct {
		err error
		id  string
	}{
		{tokErr("refresh", 400, "invalid_grant", 0, "Token has been expired or revoked."), "token-needs-login"},
		{tokErr("sign-in", 0, "access_denied", 0, ""), "consent-declined"},
		{&Failure{Proto: ProtoIMAP, Stage: StageAuth, RespCode: "AUTHENTICATIONFAILED", Text: "Invalid credentials (Failure)"}, "imap-auth-failed"},
	} {
		if d := Classify(c.err, work, seen); d.ID != c.id {
			t.Errorf("Microsoft account, %v: %s, want %s", c.err, d.ID, c.id)
		}
	}
	// Microsoft's words on a Gmail account still get a Gmail entry or a
	// neutral one, never a Microsoft admin command.
	d := Classify(imapFail("auth", "AUTHENTICATE failed."), gmailAcct, seen)
	if d.ID != "gmail-imap-auth-failed" || strings.Contains(d.Fix, "Set-CASMailbox") {
		t.Errorf("Gmail account, Exchange's words: %s %q", d.ID, d.Fix)
	}
}

// TestServiceName: the generic entries name who runs the servers.
func TestServiceName(t *testing.T) {
	dial := &Failure{Proto: ProtoIMAP, Stage: StageDial, Text: "imap.gmail.com:993", Err: errors.New("connection refused")}
	if d := Classify(dial, gmailAcct, seen); d.Title != "Google's mail server could not be reached" {
		t.Errorf("Gmail: %q", d.Title)
	}
	if d := Classify(dial, work, seen); d.Title != "Microsoft's mail server could not be reached" {
		t.Errorf("Microsoft: %q", d.Title)
	}
	if d := Classify(&Failure{Proto: ProtoSMTP, Stage: StageRcpt, Code: 550, Text: "5.1.1 no such user"}, Account{Email: "x@example.org", Provider: "custom"}, seen); !strings.HasPrefix(d.Title, "The provider refused") {
		t.Errorf("custom: %q", d.Title)
	}
}
