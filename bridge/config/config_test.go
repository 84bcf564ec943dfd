package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// writeConfig writes text to a config file in a fresh directory.
func writeConfig(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.toml")
	if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// configErrors returns every *Error inside err (joined or not).
func configErrors(t *testing.T, err error) []*Error {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got none")
	}
	var out []*Error
	var walk func(error)
	walk = func(e error) {
		if ce, ok := e.(*Error); ok {
			out = append(out, ce)
			return
		}
		switch u := e.(type) {
		case interface{ Unwrap() []error }:
			for _, x := range u.Unwrap() {
				walk(x)
			}
		case interface{ Unwrap() error }:
			walk(u.Unwrap())
		}
	}
	walk(err)
	if len(out) == 0 {
		t.Fatalf("error %v (%T) holds no *Error", err, err)
	}
	return out
}

// findErr returns the error about key, failing the test if there is none.
func findErr(t *testing.T, errs []*Error, key string) *Error {
	t.Helper()
	for _, e := range errs {
		if e.Key == key {
			return e
		}
	}
	t.Fatalf("no error names %s; got %v", key, errs)
	return nil
}

func TestLoadMissingFileGivesDefaults(t *testing.T) {
	p := filepath.Join(t.TempDir(), "nope", "config.toml")
	c, err := Load(p)
	if err != nil {
		t.Fatalf("Load(missing) = %v", err)
	}
	if c.Path != p {
		t.Errorf("Path = %q, want %q", c.Path, p)
	}
	want := Default()
	want.Path = p
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want the defaults %+v", c, want)
	}
	if c.Listen.IMAP != "127.0.0.1:1143" || c.Listen.SMTP != "127.0.0.1:1587" || c.Listen.POP3 != "127.0.0.1:1110" || c.Listen.IMAPS != "" {
		t.Errorf("listen defaults = %+v", c.Listen)
	}
	if c.Store.Backend != "keyring" || c.Log.Level != "info" {
		t.Errorf("store/log defaults = %+v %+v", c.Store, c.Log)
	}
}

func TestLoadKeepsDefaultsForMissingKeysAndAllowsOff(t *testing.T) {
	p := writeConfig(t, "[listen]\npop3 = \"\"\nimaps = \"127.0.0.1:1993\"\n")
	c, err := Load(p)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen.POP3 != "" || c.Listen.IMAPS != "127.0.0.1:1993" || c.Listen.IMAP != "127.0.0.1:1143" {
		t.Errorf("listen = %+v", c.Listen)
	}
}

func TestLoadUnknownKeyNamesKeyLineAndSuggestion(t *testing.T) {
	text := `# two accounts
[listen]
imap = "127.0.0.1:1143"

[[account]]
email = "a@example.com"

[[account]]
email = "b@example.com"
clinet_id = "abc"
`
	p := writeConfig(t, text)
	_, err := Load(p)
	errs := configErrors(t, err)
	e := findErr(t, errs, "account[1].clinet_id")
	if e.Line != 10 {
		t.Errorf("line = %d, want 10", e.Line)
	}
	if e.File != p {
		t.Errorf("file = %q, want %q", e.File, p)
	}
	if !strings.Contains(e.Msg, "did you mean client_id?") {
		t.Errorf("msg = %q, want a suggestion of client_id", e.Msg)
	}
	for _, want := range []string{p + ":10", "account[1].clinet_id", "client_id"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
}

func TestLoadUnknownTableAndTopLevelKey(t *testing.T) {
	text := "[lisen]\nimap = \"127.0.0.1:1\"\n\n[log]\nlevl = \"debug\"\n"
	_, err := Load(writeConfig(t, text))
	errs := configErrors(t, err)
	if e := findErr(t, errs, "lisen"); e.Line != 1 || !strings.Contains(e.Msg, "did you mean listen?") {
		t.Errorf("lisen: %+v", e)
	}
	if e := findErr(t, errs, "log.levl"); e.Line != 5 || !strings.Contains(e.Msg, "did you mean level?") {
		t.Errorf("log.levl: %+v", e)
	}
	_, err = Load(writeConfig(t, "[log]\nverbosity_of_everything = 3\n"))
	e := findErr(t, configErrors(t, err), "log.verbosity_of_everything")
	if strings.Contains(e.Msg, "did you mean") {
		t.Errorf("a far-off key got a suggestion: %q", e.Msg)
	}
}

// TestLoadListenLimitsAndTwin: the loopback twin is on unless the file
// turns it off, and the connection caps are read as integers.
func TestLoadListenLimitsAndTwin(t *testing.T) {
	c, err := Load(writeConfig(t, "[listen]\nimap = \"127.0.0.1:1143\"\n"))
	if err != nil || !c.Listen.LoopbackTwin || c.Listen.MaxConnections != 0 || c.Listen.MaxConnectionsPerPeer != 0 {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
	c, err = Load(writeConfig(t, "[listen]\nloopback_twin = false\nmax_connections = 300\nmax_connections_per_peer = 20\n"))
	if err != nil || c.Listen.LoopbackTwin || c.Listen.MaxConnections != 300 || c.Listen.MaxConnectionsPerPeer != 20 {
		t.Fatalf("set: %+v, %v", c, err)
	}
	_, err = Load(writeConfig(t, "[listen]\nmax_connections = \"many\"\nloopback_twin = \"no\"\n"))
	errs := configErrors(t, err)
	if e := findErr(t, errs, "listen.max_connections"); e.Line != 2 || !strings.Contains(e.Msg, "want an integer") {
		t.Errorf("max_connections: %+v", e)
	}
	if e := findErr(t, errs, "listen.loopback_twin"); e.Line != 3 || !strings.Contains(e.Msg, "true or false") {
		t.Errorf("loopback_twin: %+v", e)
	}
}

func TestLoadWrongTypeNamesKeyAndLine(t *testing.T) {
	text := `[listen]
allow_remote = "yes"
imap = 1143

[[account]]
email = "a@example.com"

[[account]]
email = "b@example.com"
scopes = ["x", 2]
`
	_, err := Load(writeConfig(t, text))
	errs := configErrors(t, err)
	cases := []struct {
		key  string
		line int
		msg  string
	}{
		{"listen.allow_remote", 2, "true or false"},
		{"listen.imap", 3, "an integer"},
		{"account[1].scopes", 10, "element 1"},
	}
	for _, c := range cases {
		e := findErr(t, errs, c.key)
		if e.Line != c.line || !strings.Contains(e.Msg, c.msg) {
			t.Errorf("%s: line %d msg %q; want line %d and %q", c.key, e.Line, e.Msg, c.line, c.msg)
		}
	}
	// The errors come in file order.
	for i := 1; i < len(errs); i++ {
		if errs[i].Line < errs[i-1].Line {
			t.Errorf("errors out of line order: %v", errs)
		}
	}
}

func TestLoadAccountAsSingleTable(t *testing.T) {
	_, err := Load(writeConfig(t, "[account]\nemail = \"a@example.com\"\n"))
	e := findErr(t, configErrors(t, err), "account")
	if e.Line != 1 || !strings.Contains(e.Msg, "[[account]]") {
		t.Errorf("got %+v", e)
	}
}

func TestLoadSyntaxErrorHasLine(t *testing.T) {
	p := writeConfig(t, "[listen]\nimap = \"127.0.0.1:1143\"\nsmtp = \"unterminated\n")
	_, err := Load(p)
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("err = %v, want *Error", err)
	}
	if ce.Line != 3 || ce.File != p {
		t.Errorf("got %+v, want line 3 of %s", ce, p)
	}
}

func TestValidateListen(t *testing.T) {
	cases := []struct {
		name   string
		listen Listen
		bad    []string // keys that must be named
	}{
		{"defaults", Default().Listen, nil},
		{"ipv6 loopback and localhost", Listen{IMAP: "[::1]:1143", SMTP: "localhost:1587"}, nil},
		{"ephemeral ports", Listen{IMAP: "127.0.0.1:0", SMTP: "127.0.0.1:0"}, nil},
		{"all interfaces", Listen{IMAP: "0.0.0.0:1143", SMTP: ":1587"}, []string{"listen.imap", "listen.smtp"}},
		{"lan address", Listen{POP3S: "192.168.1.5:995"}, []string{"listen.pop3s"}},
		{"remote allowed", Listen{IMAP: "0.0.0.0:1143", SMTPS: "192.168.1.5:465", AllowRemote: true}, nil},
		{"duplicate port", Listen{IMAP: "127.0.0.1:1143", IMAPS: "127.0.0.1:1143"}, []string{"listen.imaps"}},
		{"no port", Listen{SMTP: "127.0.0.1"}, []string{"listen.smtp"}},
		{"bad port", Listen{POP3: "127.0.0.1:pop"}, []string{"listen.pop3"}},
		{"port too big", Listen{POP3: "127.0.0.1:70000"}, []string{"listen.pop3"}},
		{"connection caps", Listen{IMAP: "127.0.0.1:1143", MaxConnections: 50, MaxConnectionsPerPeer: 10}, nil},
		{"negative caps", Listen{IMAP: "127.0.0.1:1143", MaxConnections: -1, MaxConnectionsPerPeer: -5},
			[]string{"listen.max_connections", "listen.max_connections_per_peer"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Listen = tc.listen
			err := c.Validate()
			if len(tc.bad) == 0 {
				if err != nil {
					t.Fatalf("Validate = %v, want nil", err)
				}
				return
			}
			errs := configErrors(t, err)
			for _, k := range tc.bad {
				findErr(t, errs, k)
			}
			if len(errs) != len(tc.bad) {
				t.Errorf("got %d errors, want %d: %v", len(errs), len(tc.bad), err)
			}
		})
	}
	c := Default()
	c.Listen.IMAP = "0.0.0.0:1143"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "allow_remote") {
		t.Errorf("a refused remote address should name allow_remote: %v", err)
	}
}

func TestValidateListenFromFileHasLine(t *testing.T) {
	_, err := Load(writeConfig(t, "[listen]\n\nsmtp = \"0.0.0.0:1587\"\n"))
	if e := findErr(t, configErrors(t, err), "listen.smtp"); e.Line != 3 {
		t.Errorf("line = %d, want 3", e.Line)
	}
}

func TestValidateTokenFrom(t *testing.T) {
	acc := func(email, from string) Account { return Account{Email: email, TokenFrom: from} }
	cases := []struct {
		name     string
		accounts []Account
		key      string // "" = valid
		msg      string
	}{
		{"delegate", []Account{acc("me@x.com", ""), acc("shared@x.com", "ME@x.com")}, "", ""},
		{"missing", []Account{acc("me@x.com", ""), acc("shared@x.com", "who@x.com")}, "account[1].token_from", "not an account"},
		{"self", []Account{acc("me@x.com", "me@x.com")}, "account[0].token_from", "itself"},
		{"chain", []Account{acc("me@x.com", ""), acc("s1@x.com", "me@x.com"), acc("s2@x.com", "s1@x.com")}, "account[2].token_from", "name me@x.com directly"},
		{"cycle", []Account{acc("a@x.com", "b@x.com"), acc("b@x.com", "a@x.com")}, "account[0].token_from", "cycle"},
		{"long cycle", []Account{acc("a@x.com", "b@x.com"), acc("b@x.com", "c@x.com"), acc("c@x.com", "a@x.com")}, "account[1].token_from", "cycle"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := Default()
			c.Accounts = tc.accounts
			err := c.Validate()
			if tc.key == "" {
				if err != nil {
					t.Fatalf("Validate = %v", err)
				}
				return
			}
			e := findErr(t, configErrors(t, err), tc.key)
			if !strings.Contains(e.Msg, tc.msg) {
				t.Errorf("msg = %q, want %q", e.Msg, tc.msg)
			}
		})
	}
}

func TestValidateAccountsCollectsEveryProblem(t *testing.T) {
	c := Default()
	c.Store.Backend = "vault"
	c.Log.Level = "loud"
	c.TLS.CertFile = "cert.pem"
	c.TLS.LocalMinVersion = "TLSv1"
	c.Accounts = []Account{
		{Email: "me@example.com"},
		{Email: "ME@Example.com"},
		{Email: "not-an-address"},
		{},
		{Email: "g@gmail.com", Provider: "gmail"},
		{Email: "c@example.org", Provider: "custom", SMTP: "smtp.example.org:587"},
		{Email: "p@example.org", Provider: "yahoo"},
		{Email: "o@example.org", IMAP: "imap.example.org", TokenURL: "ftp://x/token", Scopes: []string{""}},
	}
	errs := configErrors(t, c.Validate())
	for _, k := range []string{
		"store.backend", "log.level", "tls.cert_file", "tls.local_min_version",
		"account[1].email", "account[2].email", "account[3]",
		"account[4].client_secret",
		"account[5].imap", "account[5].auth_url", "account[5].token_url",
		"account[6].provider", "account[7].imap", "account[7].token_url", "account[7].scopes",
	} {
		findErr(t, errs, k)
	}
	if len(errs) != 15 {
		t.Errorf("got %d errors, want 15: %v", len(errs), errs)
	}
}

func TestConfigAccountLookup(t *testing.T) {
	c := Default()
	c.Accounts = []Account{{Email: "a@x.com"}, {Email: "B@X.com"}}
	if a, i := c.Account("b@x.COM"); a == nil || i != 1 || a.Email != "B@X.com" {
		t.Errorf("Account(b) = %v, %d", a, i)
	}
	if a, i := c.Account("c@x.com"); a != nil || i != -1 {
		t.Errorf("Account(c) = %v, %d", a, i)
	}
}

func TestDefaultPath(t *testing.T) {
	t.Setenv("BRIDGE_CONFIG", "/somewhere/b.toml")
	if p, err := DefaultPath(); err != nil || p != "/somewhere/b.toml" {
		t.Errorf("with BRIDGE_CONFIG: %q, %v", p, err)
	}
	t.Setenv("BRIDGE_CONFIG", "")
	dir, err := os.UserConfigDir()
	if err != nil {
		t.Skipf("no user config dir on this machine: %v", err)
	}
	if p, err := DefaultPath(); err != nil || p != filepath.Join(dir, "bridge", "config.toml") {
		t.Errorf("default: %q, %v", p, err)
	}
}

// TestExampleConfig checks that config.example.toml loads, that it lists
// every key the structs know, and that its values are the defaults.
func TestExampleConfig(t *testing.T) {
	p := filepath.Join("..", "..", "config.example.toml")
	c, err := Load(p)
	if err != nil {
		t.Fatalf("config.example.toml: %v", err)
	}
	if len(c.Accounts) != 1 {
		t.Fatalf("want exactly one example account, got %d", len(c.Accounts))
	}
	want := Default()
	if !reflect.DeepEqual(c.Listen, want.Listen) || c.Store != want.Store || c.TLS != want.TLS || c.Notify != want.Notify || c.Log != want.Log {
		t.Errorf("the example's values differ from Default():\n%+v\n%+v", c, want)
	}
	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	lines := keyLines(string(data))
	var keys []string
	var walk func(prefix string, t reflect.Type)
	walk = func(prefix string, rt reflect.Type) {
		for i := range rt.NumField() {
			f := rt.Field(i)
			tag := f.Tag.Get("toml")
			if !f.IsExported() || tag == "" || tag == "-" {
				continue
			}
			switch {
			case f.Type.Kind() == reflect.Struct:
				walk(joinKey(prefix, tag), f.Type)
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(joinKey(prefix, tag)+"[0]", f.Type.Elem())
			default:
				keys = append(keys, joinKey(prefix, tag))
			}
		}
	}
	walk("", reflect.TypeFor[Config]())
	if len(keys) < 32 { // 10 listen, 2 store, 3 tls, 1 notify, 2 log, 14 account
		t.Fatalf("found only %d keys in the structs: %v", len(keys), keys)
	}
	for _, k := range keys {
		if lines[k] == 0 {
			t.Errorf("config.example.toml does not document %s", k)
		}
	}
}

func TestClosestKey(t *testing.T) {
	known := []string{"email", "client_id", "client_secret", "token_from", "imap", "imaps"}
	for in, want := range map[string]string{
		"clinet_id": "client_id", "Client_ID": "client_id", "emial": "email",
		"tokenfrom": "token_from", "imapp": "imap", "password": "",
	} {
		if got := closest(in, known); got != want {
			t.Errorf("closest(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestValidateSMTPVia(t *testing.T) {
	c := Default()
	c.Accounts = []Account{
		{Email: "a@example.com", SMTPVia: "graph"},
		{Email: "b@example.com", SMTPVia: "Auto", GraphURL: "http://127.0.0.1:9/v1.0"},
		{Email: "c@example.com", SMTPVia: "smtp"},
		{Email: "d@example.com", SMTPVia: "ews"},
		{Email: "e@gmail.com", Provider: "gmail", ClientSecret: "s", SMTPVia: "graph"},
		{Email: "f@example.com", SMTPVia: "graph", GraphURL: "graph.microsoft.com"},
	}
	errs := configErrors(t, c.Validate())
	for _, k := range []string{"account[3].smtp_via", "account[4].smtp_via", "account[5].graph_url"} {
		findErr(t, errs, k)
	}
	if len(errs) != 3 {
		t.Errorf("got %d errors, want 3: %v", len(errs), errs)
	}
}
