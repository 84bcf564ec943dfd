package traymodel

import (
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

func server(accts ...bridge.AccountStatus) *control.Status {
	return &control.Status{Status: bridge.Status{Accounts: accts, Sessions: map[bridge.Proto]int64{bridge.IMAP: 2, bridge.SMTP: 1}}, PID: 42}
}

func signedIn(email string) bridge.AccountStatus {
	return bridge.AccountStatus{Email: email, Token: tokens.SourceState{HasRefreshToken: true}}
}

func menuAccount(t *testing.T, m Menu, email string) Item {
	t.Helper()
	for _, it := range m.Items {
		if strings.Contains(it.Title, email) {
			return it
		}
	}
	t.Fatalf("no item for %s in %+v", email, m.Items)
	return Item{}
}

func TestMenuAllOK(t *testing.T) {
	m := Build(Input{Server: server(signedIn("a@example.com")), Accounts: []string{"a@example.com"}, Doctor: true})
	if m.Icon != IconOK || !strings.Contains(m.Tooltip, "all accounts ok") {
		t.Errorf("icon %v tooltip %q", m.Icon, m.Tooltip)
	}
	if !strings.Contains(m.Items[0].Title, "3 live sessions") {
		t.Errorf("header %q", m.Items[0].Title)
	}
	it := menuAccount(t, m, "a@example.com")
	if !strings.Contains(it.Title, "ok") {
		t.Errorf("account title %q", it.Title)
	}
	for _, a := range []Action{ActionSignIn, ActionCopyPassword, ActionDiagnose} {
		if f := m.Find(a, "a@example.com"); f == nil || f.Disabled {
			t.Errorf("action %v missing or disabled for the account", a)
		}
	}
	last := m.Items[len(m.Items)-1]
	if last.Action != ActionQuit || m.Find(ActionOpenLog, "") == nil {
		t.Errorf("menu does not end with Open log and Quit: %+v", m.Items)
	}
}

func TestMenuNeedsSignIn(t *testing.T) {
	for name, as := range map[string]bridge.AccountStatus{
		"token state":     {Email: "a@example.com", Token: tokens.SourceState{HasRefreshToken: true, NeedsLogin: "AADSTS700082: the sign-in expired"}},
		"never signed in": {Email: "a@example.com"},
		"diagnosis": {Email: "a@example.com", Token: tokens.SourceState{HasRefreshToken: true},
			Last: map[bridge.Proto]diag.Diagnosis{bridge.IMAP: {ID: "token-needs-login", Kind: diag.KindUser, Title: "The stored sign-in is no longer accepted"}}},
	} {
		t.Run(name, func(t *testing.T) {
			m := Build(Input{Server: server(as, signedIn("b@example.com")), Accounts: []string{"a@example.com", "b@example.com"}})
			if m.Icon != IconAttention || !strings.Contains(m.Tooltip, "1 account needs") {
				t.Errorf("icon %v tooltip %q, want attention for one account", m.Icon, m.Tooltip)
			}
			it := menuAccount(t, m, "a@example.com")
			if !strings.Contains(it.Title, "sign") || !strings.HasPrefix(it.Title, "⚠") {
				t.Errorf("account title %q does not say it needs sign-in", it.Title)
			}
			if f := m.Find(ActionSignIn, "a@example.com"); f == nil || !strings.Contains(f.Title, "Sign in") {
				t.Errorf("no sign-in item for the account: %+v", it.Children)
			}
			if m.Find(ActionDiagnose, "") != nil {
				t.Error("diagnostics offered although doctor is not in this build")
			}
			if b := menuAccount(t, m, "b@example.com"); !strings.Contains(b.Title, "ok") {
				t.Errorf("the healthy account shows %q", b.Title)
			}
		})
	}
}

func TestMenuProtocolRefused(t *testing.T) {
	d := diag.Diagnosis{ID: "smtp-auth-disabled-tenant", Kind: diag.KindAdmin, Title: "Authenticated SMTP is switched off for the organisation",
		Fix: "An administrator switches SMTP AUTH on", At: time.Now()}
	as := signedIn("a@example.com")
	as.Last = map[bridge.Proto]diag.Diagnosis{bridge.SMTP: d}
	m := Build(Input{Server: server(as), Accounts: []string{"a@example.com"}, Doctor: true})
	if m.Icon != IconAttention {
		t.Errorf("icon %v, want attention", m.Icon)
	}
	it := menuAccount(t, m, "a@example.com")
	if !strings.Contains(it.Title, "SMTP refused") {
		t.Errorf("account title %q", it.Title)
	}
	var found bool
	for _, c := range it.Children {
		if strings.Contains(c.Title, d.Title) && c.Tooltip == d.Fix && c.Disabled {
			found = true
		}
	}
	if !found {
		t.Errorf("the refusal and its fix are not in the submenu: %+v", it.Children)
	}
	if m.Find(ActionDiagnose, "a@example.com") == nil {
		t.Error("no diagnostics item")
	}
}

func TestMenuTemporaryIsNotAttention(t *testing.T) {
	as := signedIn("a@example.com")
	as.Last = map[bridge.Proto]diag.Diagnosis{bridge.IMAP: {ID: "upstream-unreachable", Kind: diag.KindTemporary, Title: "The mail server cannot be reached"}}
	m := Build(Input{Server: server(as), Accounts: []string{"a@example.com"}})
	if m.Icon != IconOK {
		t.Errorf("icon %v for a temporary failure, want ok", m.Icon)
	}
	if st, why := AccountState(&as); st != StateTemporary || !strings.Contains(why, "cannot be reached") {
		t.Errorf("state %v %q", st, why)
	}
}

// TestMenuWrongLocalPasswords: an account whose clients keep giving a
// wrong local password asks for attention, and its submenu says how many,
// from where and by which client, with the fix as the tooltip.
func TestMenuWrongLocalPasswords(t *testing.T) {
	at := time.Now()
	as := signedIn("a@example.com")
	as.Refused = &bridge.RefusedLogins{Count: 12, Since: at.Add(-4 * time.Minute), Last: at, LastPeer: "127.0.0.1",
		LastProto: bridge.SMTP, LastClient: "Canon MF"}
	m := Build(Input{Server: server(as, signedIn("b@example.com")), Accounts: []string{"a@example.com", "b@example.com"}})
	if m.Icon != IconAttention || !strings.Contains(m.Tooltip, "1 account needs") {
		t.Errorf("icon %v tooltip %q, want attention for one account", m.Icon, m.Tooltip)
	}
	if st, why := AccountState(&as); st != StateWrongPassword || why != "12 wrong local passwords" {
		t.Errorf("state %v %q", st, why)
	}
	it := menuAccount(t, m, "a@example.com")
	if !strings.HasPrefix(it.Title, "⚠") || !strings.Contains(it.Title, "12 wrong local passwords") {
		t.Errorf("account title %q", it.Title)
	}
	var found bool
	for _, c := range it.Children {
		if strings.Contains(c.Title, "12 wrong local passwords since ") && strings.Contains(c.Title, "from 127.0.0.1 (Canon MF, SMTP)") &&
			strings.Contains(c.Tooltip, "`bridge password a@example.com`") && c.Disabled {
			found = true
		}
	}
	if !found {
		t.Errorf("the refused logins and their fix are not in the submenu: %+v", it.Children)
	}
	if m.Find(ActionCopyPassword, "a@example.com") == nil {
		t.Error("no copy-password item")
	}
	if b := menuAccount(t, m, "b@example.com"); !strings.Contains(b.Title, "ok") {
		t.Errorf("the other account shows %q", b.Title)
	}
	// A refusal by Microsoft still comes first.
	as.Last = map[bridge.Proto]diag.Diagnosis{bridge.SMTP: {ID: "smtp-auth-disabled", Kind: diag.KindAdmin, Title: "SMTP AUTH is off"}}
	if st, _ := AccountState(&as); st != StateRefused {
		t.Errorf("state %v with a refusal by Microsoft, want StateRefused", st)
	}
}

func TestMenuServerNotRunning(t *testing.T) {
	m := Build(Input{Accounts: []string{"a@example.com"}, Notice: "Password copied"})
	if m.Icon != IconStopped || !strings.Contains(m.Tooltip, "not running") {
		t.Errorf("icon %v tooltip %q", m.Icon, m.Tooltip)
	}
	if !strings.Contains(m.Items[0].Title, "not running") || !m.Items[0].Disabled {
		t.Errorf("header %+v", m.Items[0])
	}
	it := menuAccount(t, m, "a@example.com")
	if !strings.Contains(it.Title, "not running") {
		t.Errorf("account title %q", it.Title)
	}
	// Signing in and copying the password work without a server.
	if m.Find(ActionSignIn, "a@example.com") == nil || m.Find(ActionCopyPassword, "a@example.com") == nil {
		t.Error("account actions missing while the server is down")
	}
	var notice bool
	for _, it := range m.Items {
		notice = notice || it.Title == "Password copied"
	}
	if !notice {
		t.Error("the notice is not shown")
	}
}

func TestMenuAccountNotLoaded(t *testing.T) {
	m := Build(Input{Server: server(signedIn("a@example.com")), Accounts: []string{"a@example.com", "new@example.com"}})
	if it := menuAccount(t, m, "new@example.com"); !strings.Contains(it.Title, "not loaded") {
		t.Errorf("an account the server has not loaded shows %q", it.Title)
	}
}
