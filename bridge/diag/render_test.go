package diag

import (
	"regexp"
	"strings"
	"testing"
)

func checkShort(t *testing.T, s string) {
	t.Helper()
	if len(s) > maxShort {
		t.Errorf("Short is %d bytes: %q", len(s), s)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] > 0x7e {
			t.Fatalf("Short has byte %#x at %d: %q", s[i], i, s)
		}
	}
}

func TestShortEveryEntry(t *testing.T) {
	accounts := []Account{work, delegate, consumer, {Email: strings.Repeat("x", 240) + "@example.com"}, {}}
	for _, id := range IDs() {
		e, _ := Lookup(id)
		for _, a := range accounts {
			s := e.For(a).Short()
			checkShort(t, s)
			if !strings.Contains(s, "bridge doctor") {
				t.Errorf("%s: Short lacks the doctor hint: %q", id, s)
			}
		}
	}
}

func TestShortNamesAccount(t *testing.T) {
	d := Classify(smtpLine("auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant. Visit https://aka.ms/smtp_auth_disabled for more information."), work, seen)
	want := "Authenticated SMTP is switched off for the organisation; run `bridge doctor " + user + "` for the fix"
	if got := d.Short(); got != want {
		t.Errorf("Short = %q, want %q", got, want)
	}
}

func TestShortSanitises(t *testing.T) {
	d := Diagnosis{Title: "Bad\r\nline \u2192 " + strings.Repeat("long ", 60), Email: "j\u00f6rg@example.com"}
	s := d.Short()
	checkShort(t, s)
	if !strings.Contains(s, "Bad  line ? long") {
		t.Errorf("Short = %q", s)
	}
	if !strings.HasSuffix(s, "; run `bridge doctor j?rg@example.com` for the fix") {
		t.Errorf("Short lost its hint: %q", s)
	}
	if !strings.Contains(s, "...") {
		t.Errorf("long title not marked as cut: %q", s)
	}
}

func TestLong(t *testing.T) {
	line := "535 5.7.3 Authentication unsuccessful [AM0PR06CA0126.eurprd06.prod.outlook.com]"
	d := Classify(smtpLine("auth", line), work, seen)
	l := d.Long()
	lines := strings.Split(l, "\n")
	if lines[0] != d.Title+" [smtp-auth-failed]" {
		t.Errorf("first line = %q", lines[0])
	}
	for _, want := range []string{"  Cause: " + d.Cause, "  Raw:   " + line, "bridge login " + user} {
		if !strings.Contains(l, want) {
			t.Errorf("Long lacks %q:\n%s", want, l)
		}
	}
	// Multi-line fixes stay indented under their label.
	d = Classify(imapFail("auth", "AUTHENTICATE failed."), work, seen)
	for _, ln := range strings.Split(d.Long(), "\n")[1:] {
		if !strings.HasPrefix(ln, "  ") {
			t.Errorf("unindented line %q in\n%s", ln, d.Long())
		}
	}
}

func TestPersonalAndSharedVariants(t *testing.T) {
	for _, id := range IDs() {
		e, _ := Lookup(id)
		p := e.For(consumer)
		if e.PersonalFix != "" && strings.Contains(p.Fix, "Set-CASMailbox") {
			t.Errorf("%s: personal fix mentions an Exchange admin command: %q", id, p.Fix)
		}
		s := e.For(delegate)
		if e.SharedFix != "" && !strings.Contains(s.Fix, shared) {
			t.Errorf("%s: shared fix does not name the shared mailbox: %q", id, s.Fix)
		}
		w := e.For(work)
		if strings.Contains(w.Fix, "EMAIL") && !strings.Contains(w.Fix, user) {
			t.Errorf("%s: fix without the address: %q", id, w.Fix)
		}
	}
}

func FuzzClassifyFailure(f *testing.F) {
	f.Add("smtp", "auth", "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.")
	f.Add("imap", "mailbox", "User is authenticated but not connected.")
	f.Add("pop3", "auth", "Authentication failure: unknown user name or bad password.")
	f.Add("smtp", "data", "5.2.252 ")
	f.Fuzz(func(t *testing.T, proto, stage, text string) {
		d := Classify(&Failure{Proto: Proto(proto), Stage: Stage(stage), Text: text}, work, seen)
		if d.ID == "" || d.Fix == "" {
			t.Fatalf("empty diagnosis for %q %q %q", proto, stage, text)
		}
		checkShort(t, d.Short())
	})
}

// TestReplyText: the one sanitiser for text inside a protocol reply line.
func TestReplyText(t *testing.T) {
	for _, c := range []struct {
		in   string
		max  int
		want string
	}{
		{"alice@example.com", 0, "alice@example.com"},
		{" a\r\nb\tc ", 0, "a  b c"},
		{"nul\x00 esc\x1b del\x7f", 0, "nul? esc? del?"},
		{"j\u00f6rg \u2192 x", 0, "j?rg ? x"},
		{"bad \xff\xfe utf-8", 0, "bad ?? utf-8"},
		{"0123456789 abcdef", 10, "0123456..."},
		{"short", 10, "short"},
		{strings.Repeat("x", 500), 0, strings.Repeat("x", 500)},
	} {
		if got := ReplyText(c.in, c.max); got != c.want {
			t.Errorf("ReplyText(%q, %d) = %q, want %q", c.in, c.max, got, c.want)
		}
	}
}

// TestNoPlaceholderLeft renders every entry for each kind of account
// (work, personal, shared mailbox, delegate, own servers): without a
// failure, for each protocol without a host, and with every classify
// case's failure. No template field, and no word standing for one (HOST,
// PORT, EMAIL, YOUR_CLIENT_ID), may be left in a title, cause or fix.
func TestNoPlaceholderLeft(t *testing.T) {
	const clientID = "9e5f94bc-e8a4-4e73-b8be-63364c29d753"
	accounts := map[string]Account{
		"work":           {Email: user, Tenant: "contoso.com", ClientID: clientID},
		"personal":       {Email: personal, Personal: true, Tenant: "consumers", ClientID: clientID},
		"shared mailbox": {Email: "team@contoso.com", Mailbox: shared, ClientID: clientID},
		"delegate":       {Email: shared, Mailbox: shared, Delegate: user, Tenant: "common", ClientID: clientID},
		"own servers": {Email: user, ClientID: clientID, Servers: map[Proto]string{ProtoIMAP: "imap.example.net:143",
			ProtoPOP3: "pop.example.net:110", ProtoSMTP: "smtp.example.net:25", ProtoToken: "id.example.net:8443"}},
	}
	left := regexp.MustCompile(`\{[A-Za-z_]+\}|\b(HOST|PORT|EMAIL|YOUR_CLIENT_ID)\b`)
	check := func(what string, d Diagnosis) {
		t.Helper()
		for _, text := range []string{d.Title, d.Cause, d.Fix} {
			if m := left.FindString(text); m != "" {
				t.Errorf("%s: %q left in %q", what, m, text)
			}
		}
	}
	for name, a := range accounts {
		for _, id := range IDs() {
			e, _ := Lookup(id)
			check(id+" for "+name, e.For(a))
			for _, p := range []Proto{ProtoIMAP, ProtoPOP3, ProtoSMTP, ProtoToken} {
				check(id+" over "+string(p)+" for "+name, e.render(a, &evidence{proto: p}))
			}
		}
		for _, c := range classifyCases {
			check(c.name+" for "+name, Classify(c.err, a, seen))
		}
	}
}

// TestPersonalTitleAndKind: for an Outlook.com account the one line a mail
// client shows names the Outlook.com setting, and an admin entry is the
// user's to act on.
func TestPersonalTitleAndKind(t *testing.T) {
	for _, c := range []struct {
		err  error
		want string
	}{
		{imapFail("auth", "AUTHENTICATE failed."), "Outlook.com > Settings > Mail > Forwarding and IMAP"},
		{popFail("auth", "Authentication failure: unknown user name or bad password."), "Outlook.com > Settings > Mail > Forwarding and IMAP"},
	} {
		d := Classify(c.err, consumer, seen)
		if !strings.Contains(d.Short(), c.want) || d.Kind != KindUser || strings.Contains(d.Fix, "Set-CASMailbox") {
			t.Errorf("personal: short %q kind %s fix %q", d.Short(), d.Kind, d.Fix)
		}
		w := Classify(c.err, work, seen)
		if strings.Contains(w.Short(), "Outlook.com") || w.Kind != KindAdmin {
			t.Errorf("work: short %q kind %s", w.Short(), w.Kind)
		}
		checkShort(t, d.Short())
	}
}
