package config

import (
	"errors"
	"strings"
	"testing"
)

// FuzzParseConfig runs the whole config loading path (TOML decoding, the
// raw key and type checks, Validate) over arbitrary text; package bridge's
// FuzzResolveAccounts carries on from there.
// It must not panic; every problem must be a *Error; and a config it
// accepts must keep every listener on loopback unless allow_remote is set.
func FuzzParseConfig(f *testing.F) {
	for _, s := range []string{
		"",
		"[listen]\nimap = \"127.0.0.1:1143\"\nallow_remote = false\n",
		"[listen]\nimap = \"0.0.0.0:1143\"\n",
		"[listen]\nimap = \"0.0.0.0:1143\"\nallow_remote = true\n",
		"[listen]\nimap = \"[::1]:0\"\nsmtp = \"localhost:25\"\npop3 = \"\"\n",
		"[store]\nbackend = \"file\"\npath = \"/tmp/x\"\n[log]\nlevel = \"debug\"\ntrace = true\n",
		"[[account]]\nemail = \"a@b.c\"\nclient_id = \"x\"\ntoken_from = \"d@e.f\"\n[[account]]\nemail = \"d@e.f\"\n",
		"[[account]]\nemail = \"a@b.c\"\nprovider = \"custom\"\nimap = \"h:993\"\nscopes = [\"s\", 3]\n",
		"[account]\nemail = 1\n",
		"[tls]\ncert_file = \"c\"\n",
		"listen = 3\n[listen.imap]\nx = 1\n",
		"[notify]\ncommand = \"echo $BRIDGE_ACCOUNT\"\n",
		"a = \"\"\"x\\\"\"\"\"\n[\"q.k\"]\nb = [1, {c = 'd'}]\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, text string) {
		c, err := parse("fuzz.toml", []byte(text))
		if err != nil {
			var errs []error
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				errs = j.Unwrap()
			} else {
				errs = []error{err}
			}
			for _, e := range errs {
				var ce *Error
				if !errors.As(e, &ce) {
					t.Fatalf("%T is not a *Error: %v", e, e)
				}
				if ce.File != "fuzz.toml" && ce.File != "" {
					t.Fatalf("error names file %q", ce.File)
				}
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted, then Validate says: %v", err)
		}
		if !c.Listen.AllowRemote {
			l := c.Listen
			for _, a := range []string{l.IMAP, l.IMAPS, l.SMTP, l.SMTPS, l.POP3, l.POP3S} {
				if a == "" {
					continue
				}
				host, _, err := splitHostPort(a, true)
				if err != nil || !isLoopback(host) {
					t.Fatalf("non-loopback listener %q accepted without allow_remote", a)
				}
			}
		}
		for _, a := range c.Accounts {
			if strings.ContainsFunc(a.Email, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
				t.Fatalf("email with a control character accepted: %q", a.Email)
			}
		}
	})
}
