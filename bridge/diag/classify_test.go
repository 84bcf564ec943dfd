package diag

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"golang.org/x/oauth2"
)

const (
	user     = "ann@contoso.com"
	shared   = "sales@contoso.com"
	personal = "bob@outlook.com"
)

var (
	work     = Account{Email: user}
	delegate = Account{Email: shared, Mailbox: shared, Delegate: user}
	consumer = Account{Email: personal, Personal: true, Tenant: "consumers"}
	// seen is the clock reading every test classifies at.
	seen = time.Date(2025, 6, 1, 9, 30, 0, 0, time.UTC)
)

func imapFail(stage Stage, text string) *Failure {
	return &Failure{Proto: ProtoIMAP, Stage: stage, Text: text}
}

func popFail(stage Stage, text string) *Failure {
	return &Failure{Proto: ProtoPOP3, Stage: stage, Text: text}
}

// smtpLine is a reply as a front end may hand it over: the whole line.
func smtpLine(stage Stage, line string) *Failure {
	return &Failure{Proto: ProtoSMTP, Stage: stage, Text: line}
}

func tokErr(op string, status int, code string, aadsts int, desc string) *tokens.Error {
	return &tokens.Error{Account: user, Op: op, Status: status, Code: code, AADSTS: aadsts, Description: desc}
}

type classifyCase struct {
	name string
	err  error
	acct Account
	id   string
	// fix lists substrings the rendered Fix must contain.
	fix []string
}

// classifyCases holds one case or more per table entry, each built from the
// upstream's real words (docs/microsoft-facts.md §1, §2).
var classifyCases = concatCases(mailCases, smtpCases, graphCases, tokenCases, appCases, appOnlyCases, gmailCases, netCases)

func concatCases(parts ...[]classifyCase) []classifyCase {
	var all []classifyCase
	for _, p := range parts {
		all = append(all, p...)
	}
	return all
}

func TestClassify(t *testing.T) {
	for _, c := range classifyCases {
		t.Run(c.name, func(t *testing.T) {
			d := Classify(c.err, c.acct, seen)
			if !d.At.Equal(seen) {
				t.Errorf("At %v, want the time passed in, %v", d.At, seen)
			}
			if d.ID != c.id {
				t.Fatalf("Classify(%q) = %s, want %s", c.err, d.ID, c.id)
			}
			e, ok := Lookup(d.ID)
			if !ok {
				t.Fatalf("Lookup(%q) failed", d.ID)
			}
			// An Outlook.com account has no administrator.
			kind := e.Kind
			if c.acct.Personal && e.PersonalFix != "" && kind == KindAdmin {
				kind = KindUser
			}
			if d.Kind != kind || d.Title == "" || d.Cause == "" || d.Fix == "" {
				t.Errorf("incomplete diagnosis: %+v", d)
			}
			if d.Raw == "" {
				t.Errorf("raw text lost for %q", c.err)
			}
			if d.At.IsZero() {
				t.Error("At not set")
			}
			for _, want := range c.fix {
				if !strings.Contains(d.Fix, want) {
					t.Errorf("fix lacks %q:\n%s", want, d.Fix)
				}
			}
			for _, text := range []string{d.Title, d.Cause, d.Fix} {
				if i := strings.IndexByte(text, '{'); i >= 0 && strings.Contains(text[i:], "}") {
					t.Errorf("unfilled placeholder in %q", text)
				}
			}
		})
	}
}

// TestEveryEntryTested fails when an entry is added without a test case.
func TestEveryEntryTested(t *testing.T) {
	tested := map[string]bool{}
	for _, c := range classifyCases {
		tested[c.id] = true
	}
	for _, id := range IDs() {
		if !tested[id] {
			t.Errorf("entry %q has no case in classifyCases", id)
		}
	}
}

func TestTableWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, e := range table {
		if seen[e.ID] {
			t.Errorf("duplicate ID %q", e.ID)
		}
		seen[e.ID] = true
		if e.Title == "" || e.Cause == "" || e.Fix == "" || e.Kind == "" {
			t.Errorf("%s: title, cause, fix and kind are required", e.ID)
		}
		if e.ID != unknownID && len(e.Match) == 0 {
			t.Errorf("%s: no matchers", e.ID)
		}
		for i, m := range e.Match {
			if m.score(&evidence{}) != 0 {
				t.Errorf("%s: matcher %d matches an empty failure", e.ID, i)
			}
		}
	}
	if _, ok := Lookup("no-such-entry"); ok {
		t.Error("Lookup of a missing ID succeeded")
	}
}

func TestRawText(t *testing.T) {
	line := "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."
	if d := Classify(smtpLine("auth", line), work, seen); d.Raw != line {
		t.Errorf("raw = %q, want %q", d.Raw, line)
	}
	structured := &Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.139",
		Text: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."}
	if d := Classify(structured, work, seen); d.Raw != line {
		t.Errorf("raw = %q, want %q", d.Raw, line)
	}
	d := Classify(tokErr("refresh", 400, "invalid_grant", 700082, "AADSTS700082: The refresh token has expired due to inactivity."), work, seen)
	if !strings.Contains(d.Raw, "AADSTS700082") || !strings.Contains(d.Raw, "invalid_grant") {
		t.Errorf("token raw = %q", d.Raw)
	}
}

// TestTokenErrorInactive is the story of the style guide: a refresh refused
// with AADSTS700082 tells the user to sign in again, naming the address.
func TestTokenErrorInactive(t *testing.T) {
	body := `{"error":"invalid_grant","error_description":"AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.","error_codes":[700082]}`
	te := tokens.FromOAuth(user, "refresh", &oauth2.RetrieveError{
		Response:         &http.Response{StatusCode: http.StatusBadRequest},
		Body:             []byte(body),
		ErrorCode:        "invalid_grant",
		ErrorDescription: "AADSTS700082: The refresh token has expired due to inactivity. The token was issued on 2024-01-01T00:00:00Z and was inactive for 90.00:00:00.",
	})
	wrapped := &Failure{Proto: "imap", Stage: "auth", Err: fmt.Errorf("get token: %w", te)}
	// The account is unknown to the caller: the address comes from the error.
	d := Classify(wrapped, Account{}, seen)
	if d.ID != "token-expired-inactive" {
		t.Fatalf("ID = %s", d.ID)
	}
	if !strings.Contains(d.Fix, "bridge login "+user) {
		t.Errorf("fix = %q", d.Fix)
	}
	if d.Email != user {
		t.Errorf("Email = %q", d.Email)
	}
	if !strings.Contains(te.Error(), "the sign-in expired after 90 days without use") {
		t.Errorf("tokens.Error text lacks the meaning: %s", te.Error())
	}
}

func TestTemporary(t *testing.T) {
	if !Classify(smtpLine("auth", "432 4.3.2 concurrent connection limit exceeded"), work, seen).Temporary() {
		t.Error("432 not temporary")
	}
	if Classify(popFail("auth", "Authentication failure: unknown user name or bad password."), work, seen).Temporary() {
		t.Error("POP refusal temporary")
	}
	// "pop" is accepted for "pop3".
	if d := Classify(&Failure{Proto: "POP", Stage: "auth", Text: "Authentication failure"}, work, seen); d.ID != "pop-auth-failed" {
		t.Errorf("POP = %s", d.ID)
	}
}

func TestClassifyNil(t *testing.T) {
	if d := Classify(nil, work, seen); d.ID != "" {
		t.Errorf("Classify(nil) = %+v", d)
	}
}
