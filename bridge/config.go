package bridge

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/mailbridge/bridge/tokens"
)

// Config is the bridge's configuration file. config.example.toml documents
// every key with its default; the zero value of each field is described on
// the field.
type Config struct {
	// Path is the file the config was loaded from; empty for a config made
	// in code.
	Path string `toml:"-"`
	// Listen holds the local listeners.
	Listen ListenConfig `toml:"listen"`
	// Store says where tokens and local passwords are kept.
	Store StoreConfig `toml:"store"`
	// TLS holds the local certificate and extra upstream roots.
	TLS TLSConfig `toml:"tls"`
	// Notify runs a command when an account needs attention.
	Notify NotifyConfig `toml:"notify"`
	// Log sets the log level and the pre-login wire trace.
	Log LogConfig `toml:"log"`
	// Accounts are the mailboxes clients can log in to, in file order.
	Accounts []AccountConfig `toml:"account"`

	// lines maps a key path ("listen.imap", "account[1].client_id",
	// "account[1]") to its 1-based line in the file, for error messages.
	lines map[string]int
}

// ListenConfig holds the local listen addresses as host:port. An empty
// address turns that listener off.
type ListenConfig struct {
	// IMAP is plain IMAP with STARTTLS offered; default "127.0.0.1:1143".
	IMAP string `toml:"imap"`
	// IMAPS is IMAP with implicit TLS; default off.
	IMAPS string `toml:"imaps"`
	// SMTP is plain SMTP with STARTTLS offered; default "127.0.0.1:1587".
	SMTP string `toml:"smtp"`
	// SMTPS is SMTP with implicit TLS; default off.
	SMTPS string `toml:"smtps"`
	// POP3 is plain POP3 with STLS offered; default "127.0.0.1:1110".
	POP3 string `toml:"pop3"`
	// POP3S is POP3 with implicit TLS; default off.
	POP3S string `toml:"pop3s"`
	// AllowRemote permits non-loopback listen addresses; false refuses them,
	// because anyone who can reach the port could try the local passwords.
	AllowRemote bool `toml:"allow_remote"`
}

// StoreConfig chooses the token store.
type StoreConfig struct {
	// Backend is "keyring" (the OS keyring) or "file"; empty means keyring.
	Backend string `toml:"backend"`
	// Path is the file store's location; empty means a default under the
	// user state directory. Ignored by the keyring backend.
	Path string `toml:"path"`
}

// TLSConfig holds certificate settings for both legs.
type TLSConfig struct {
	// CertFile and KeyFile are the local listeners' certificate and key
	// (PEM); both empty means a certificate is generated on first use.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// UpstreamCAFile adds PEM roots trusted for the upstream servers (tests,
	// TLS-inspecting proxies); empty means the system roots alone.
	UpstreamCAFile string `toml:"upstream_ca_file"`
}

// NotifyConfig runs a command when an account needs attention (a new
// `bridge login`, or a switch an admin must turn on).
type NotifyConfig struct {
	// Command is run through the shell with BRIDGE_ACCOUNT (the email),
	// BRIDGE_ID (the diagnosis id) and BRIDGE_TEXT (a sentence for people)
	// in its environment; empty means no command.
	Command string `toml:"command"`
}

// LogConfig controls logging.
type LogConfig struct {
	// Level is debug, info, warn or error; empty means info.
	Level string `toml:"level"`
	// Trace logs the pre-login part of each connection at debug level,
	// with AUTH and LOGIN lines redacted; false logs no wire lines.
	Trace bool `toml:"trace"`
}

// AccountConfig is one [[account]] block as written in the file. Empty
// fields take the provider's defaults.
type AccountConfig struct {
	// Email is the name the mail client logs in with; required.
	Email string `toml:"email"`
	// Provider is microsoft, gmail or custom; empty means microsoft.
	Provider string `toml:"provider"`
	// Tenant is common, organizations, consumers or a tenant id; empty
	// means common. Only microsoft uses it.
	Tenant string `toml:"tenant"`
	// ClientID is the app registration to sign in with.
	ClientID string `toml:"client_id"`
	// ClientSecret is only for confidential apps (gmail needs one).
	ClientSecret string `toml:"client_secret"`
	// Mailbox is the XOAUTH2 user= for IMAP and POP3; empty means Email.
	Mailbox string `toml:"mailbox"`
	// TokenFrom names another account whose tokens this one uses (the
	// delegate of a shared mailbox); empty means its own.
	TokenFrom string `toml:"token_from"`
	// IMAP, SMTP and POP3 override the provider's servers (host:port).
	IMAP string `toml:"imap"`
	SMTP string `toml:"smtp"`
	POP3 string `toml:"pop3"`
	// AuthURL, TokenURL and DeviceURL override the OAuth endpoints.
	AuthURL   string `toml:"auth_url"`
	TokenURL  string `toml:"token_url"`
	DeviceURL string `toml:"device_url"`
	// Scopes replaces the provider's scopes; empty means the defaults.
	Scopes []string `toml:"scopes"`
}

// ConfigError is a problem in the config file. File and Line say where (Line
// is 0 when unknown), Key names the setting, such as "account[1].client_id"
// (accounts are counted from 0 in file order).
type ConfigError struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *ConfigError) Error() string {
	var b strings.Builder
	b.WriteString("bridge: config")
	if e.File != "" {
		b.WriteString(" " + e.File)
		if e.Line > 0 {
			fmt.Fprintf(&b, ":%d", e.Line)
		}
	} else if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		b.WriteString(": " + e.Key)
	}
	b.WriteString(": " + e.Msg)
	return b.String()
}

// Default returns the configuration used when there is no file: the three
// plain listeners on loopback, the keyring store, info logging, no accounts.
// It does no I/O.
func Default() *Config {
	return &Config{
		Listen: ListenConfig{
			IMAP: "127.0.0.1:1143",
			SMTP: "127.0.0.1:1587",
			POP3: "127.0.0.1:1110",
		},
		Store: StoreConfig{Backend: "keyring"},
		Log:   LogConfig{Level: "info"},
	}
}

// DefaultConfigPath returns $BRIDGE_CONFIG, or else config.toml in the
// bridge directory under the user config directory.
func DefaultConfigPath() (string, error) {
	if p := os.Getenv("BRIDGE_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("bridge: finding the config directory: %w (set BRIDGE_CONFIG)", err)
	}
	return filepath.Join(dir, "bridge", "config.toml"), nil
}

// LoadConfig reads and validates the file at path. A missing file gives
// Default() with Path set and no error, so `bridge login` can create it.
// Problems in the file come back as one or more *ConfigError (joined), each
// naming the file, the key and the line.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c := Default()
		c.Path = path
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: reading config: %w", err)
	}
	return parseConfig(path, data)
}

// parseConfig decodes and validates the text of a config file. It checks
// the raw TOML against the struct first, so an unknown key or a wrong type
// is reported with its exact place ("account[1].scopes", line 14) rather
// than the decoder's last-key guess.
func parseConfig(path string, data []byte) (*Config, error) {
	text := string(data)
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &ConfigError{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	lines := keyLines(text)
	errs := checkTable(path, lines, "", raw, reflect.TypeFor[Config]())
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	c := Default()
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, &ConfigError{File: path, Msg: err.Error()}
	}
	// checkTable has already named every unknown key; this only guards
	// against the two disagreeing.
	for _, k := range md.Undecoded() {
		errs = append(errs, &ConfigError{File: path, Key: k.String(), Msg: "unknown key"})
	}
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	c.Path = path
	c.lines = lines
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// joinSorted joins config errors in line order, so the report reads like
// the file.
func joinSorted(errs []error) error {
	sort.SliceStable(errs, func(i, j int) bool {
		a, b := errs[i].(*ConfigError), errs[j].(*ConfigError)
		return a.Line < b.Line
	})
	return errors.Join(errs...)
}

// checkTable compares one decoded TOML table with the struct type t and
// reports unknown keys (with the closest known key) and values of the wrong
// type. prefix is the table's key path ("" for the root).
func checkTable(file string, lines map[string]int, prefix string, m map[string]any, t reflect.Type) []error {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		tag := strings.Split(f.Tag.Get("toml"), ",")[0]
		if !f.IsExported() || tag == "" || tag == "-" {
			continue
		}
		fields[tag] = f.Type
		names = append(names, tag)
	}
	var errs []error
	for k, v := range m {
		path := joinKey(prefix, k)
		bad := func(msg string, args ...any) {
			errs = append(errs, &ConfigError{File: file, Line: lines[path], Key: path, Msg: fmt.Sprintf(msg, args...)})
		}
		ft, ok := fields[k]
		if !ok {
			msg := "unknown key"
			if s := closest(k, names); s != "" {
				msg += "; did you mean " + s + "?"
			}
			bad("%s", msg)
			continue
		}
		switch {
		case ft.Kind() == reflect.String:
			if _, ok := v.(string); !ok {
				bad("want a string, found %s", tomlType(v))
			}
		case ft.Kind() == reflect.Bool:
			if _, ok := v.(bool); !ok {
				bad("want true or false, found %s", tomlType(v))
			}
		case ft.Kind() == reflect.Struct:
			sub, ok := v.(map[string]any)
			if !ok {
				bad("want a table [%s], found %s", path, tomlType(v))
				continue
			}
			errs = append(errs, checkTable(file, lines, path, sub, ft)...)
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.String:
			arr, ok := v.([]any)
			if !ok {
				bad("want an array of strings, found %s", tomlType(v))
				continue
			}
			for i, e := range arr {
				if _, ok := e.(string); !ok {
					bad("element %d: want a string, found %s", i, tomlType(e))
				}
			}
		case ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct:
			arr, ok := v.([]map[string]any)
			if !ok {
				bad("want [[%s]] blocks, found %s", path, tomlType(v))
				continue
			}
			for i, sub := range arr {
				errs = append(errs, checkTable(file, lines, fmt.Sprintf("%s[%d]", path, i), sub, ft.Elem())...)
			}
		}
	}
	return errs
}

func joinKey(prefix, k string) string {
	if prefix == "" {
		return k
	}
	return prefix + "." + k
}

// tomlType names the TOML type of a decoded value, for messages.
func tomlType(v any) string {
	switch v.(type) {
	case string:
		return "a string"
	case int64:
		return "an integer"
	case float64:
		return "a float"
	case bool:
		return "a boolean"
	case time.Time:
		return "a date/time"
	case []map[string]any:
		return "an array of tables"
	case []any:
		return "an array"
	case map[string]any:
		return "a table"
	}
	return fmt.Sprintf("%T", v)
}

// closest returns the known key nearest to k by edit distance, or "" when
// none is near enough to be a plausible misspelling.
func closest(k string, known []string) string {
	best, bestD := "", 0
	lk := strings.ToLower(k)
	for _, n := range known {
		d := editDistance(lk, n)
		if best == "" || d < bestD || (d == bestD && n < best) {
			best, bestD = n, d
		}
	}
	if best == "" || bestD > max(2, len(best)/3) {
		return ""
	}
	return best
}

// editDistance is the Levenshtein distance, with a swap of two adjacent
// letters counted once (the commonest typing slip).
func editDistance(a, b string) int {
	prev2 := make([]int, len(b)+1)
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(b)]
}

// Account returns the account whose email matches (ignoring case) and its
// index in Accounts, or nil and -1.
func (c *Config) Account(email string) (*AccountConfig, int) {
	for i := range c.Accounts {
		if strings.EqualFold(c.Accounts[i].Email, email) {
			return &c.Accounts[i], i
		}
	}
	return nil, -1
}

// SlogLevel returns the configured log level; info when empty or unknown
// (Validate refuses unknown levels).
func (l LogConfig) SlogLevel() slog.Level {
	switch strings.ToLower(l.Level) {
	case "debug":
		return slog.LevelDebug
	case "warn", "warning":
		return slog.LevelWarn
	case "error":
		return slog.LevelError
	}
	return slog.LevelInfo
}

// Validate checks the values: listen addresses, the store, the log level
// and the accounts. It reports every problem it finds, joined, each a
// *ConfigError naming the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, &ConfigError{File: c.Path, Line: c.lineOf(key), Key: key, Msg: fmt.Sprintf(msg, args...)})
	}
	c.validateListen(bad)
	switch c.Store.Backend {
	case "", "keyring", "file":
	default:
		bad("store.backend", "%q is not a store; want \"keyring\" or \"file\"", c.Store.Backend)
	}
	if (c.TLS.CertFile == "") != (c.TLS.KeyFile == "") {
		bad("tls.cert_file", "cert_file and key_file go together: set both, or neither to use a generated certificate")
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		bad("log.level", "%q is not a level; want debug, info, warn or error", c.Log.Level)
	}
	c.validateAccounts(bad)
	if len(errs) == 0 {
		return nil
	}
	return joinSorted(errs)
}

// lineOf returns the line of key, or of the nearest enclosing table that
// the file has, or 0.
func (c *Config) lineOf(key string) int {
	for key != "" {
		if n, ok := c.lines[key]; ok {
			return n
		}
		i := strings.LastIndexAny(key, ".[")
		if i < 0 {
			break
		}
		key = key[:i]
	}
	return 0
}

func (c *Config) validateListen(bad func(key, msg string, args ...any)) {
	l := c.Listen
	addrs := []struct{ key, addr string }{
		{"listen.imap", l.IMAP}, {"listen.imaps", l.IMAPS},
		{"listen.smtp", l.SMTP}, {"listen.smtps", l.SMTPS},
		{"listen.pop3", l.POP3}, {"listen.pop3s", l.POP3S},
	}
	ports := map[int]string{}
	for _, a := range addrs {
		if a.addr == "" {
			continue
		}
		host, port, err := splitHostPort(a.addr, true)
		if err != nil {
			bad(a.key, "%v", err)
			continue
		}
		if !l.AllowRemote && !isLoopback(host) {
			bad(a.key, "%q is not a loopback address; listening on the network exposes the local passwords, set listen.allow_remote = true to do it anyway", a.addr)
		}
		if port == 0 {
			continue // an ephemeral port never collides
		}
		if other, dup := ports[port]; dup {
			bad(a.key, "port %d is already used by %s", port, other)
			continue
		}
		ports[port] = a.key
	}
}

func (c *Config) validateAccounts(bad func(key, msg string, args ...any)) {
	seen := map[string]int{}
	for i, a := range c.Accounts {
		key := func(k string) string { return fmt.Sprintf("account[%d].%s", i, k) }
		switch {
		case a.Email == "":
			bad(fmt.Sprintf("account[%d]", i), "email is missing; every [[account]] needs the address the mail client logs in with")
		case !validEmail(a.Email):
			bad(key("email"), "%q does not look like an email address", a.Email)
		default:
			low := strings.ToLower(a.Email)
			if j, dup := seen[low]; dup {
				bad(key("email"), "%s is also account[%d]; each account must appear once", a.Email, j)
			} else {
				seen[low] = i
			}
		}
		p, err := tokens.LookupProvider(a.Provider, a.Tenant)
		if err != nil {
			bad(key("provider"), "%q is not a provider; want microsoft, gmail or custom", a.Provider)
		} else if p.Name == "custom" {
			for _, need := range []struct{ k, v string }{{"imap", a.IMAP}, {"smtp", a.SMTP}, {"auth_url", a.AuthURL}, {"token_url", a.TokenURL}} {
				if need.v == "" {
					bad(key(need.k), "a custom provider has no default; set %s", need.k)
				}
			}
		}
		if err == nil && p.NeedsSecret && a.ClientSecret == "" && a.TokenFrom == "" {
			bad(key("client_secret"), "%s refuses sign-in without a client secret; set client_secret", p.Name)
		}
		for _, hp := range []struct{ k, v string }{{"imap", a.IMAP}, {"smtp", a.SMTP}, {"pop3", a.POP3}} {
			if hp.v == "" {
				continue
			}
			if host, port, err := splitHostPort(hp.v, false); err != nil {
				bad(key(hp.k), "%v", err)
			} else if host == "" || port == 0 {
				bad(key(hp.k), "%q needs a host and a port, such as \"imap.example.com:993\"", hp.v)
			}
		}
		for _, u := range []struct{ k, v string }{{"auth_url", a.AuthURL}, {"token_url", a.TokenURL}, {"device_url", a.DeviceURL}} {
			if u.v == "" {
				continue
			}
			if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
				bad(key(u.k), "%q is not an http(s) URL", u.v)
			}
		}
		for j, s := range a.Scopes {
			if strings.TrimSpace(s) == "" {
				bad(key("scopes"), "element %d is empty", j)
			}
		}
	}
	c.validateTokenFrom(bad)
}

// validateTokenFrom checks that every token_from names another account
// that uses its own tokens: a delegate's tokens are borrowed directly, so a
// chain (or a cycle) has no account to sign in.
func (c *Config) validateTokenFrom(bad func(key, msg string, args ...any)) {
	for i, a := range c.Accounts {
		if a.TokenFrom == "" {
			continue
		}
		key := fmt.Sprintf("account[%d].token_from", i)
		if strings.EqualFold(a.TokenFrom, a.Email) {
			bad(key, "%s names the account itself; leave token_from empty to use its own tokens", a.TokenFrom)
			continue
		}
		d, j := c.Account(a.TokenFrom)
		if d == nil {
			bad(key, "%s is not an account in this file; add it (bridge login %s) or fix the name", a.TokenFrom, a.TokenFrom)
			continue
		}
		if d.TokenFrom == "" {
			continue
		}
		// Follow the chain, bounded by the number of accounts, to tell a
		// cycle from a chain: both are refused, with different advice.
		cur, cycle := d, false
		for range len(c.Accounts) {
			if cur == nil || cur.TokenFrom == "" {
				break
			}
			if strings.EqualFold(cur.TokenFrom, a.Email) {
				cycle = true
				break
			}
			cur, _ = c.Account(cur.TokenFrom)
		}
		if cycle {
			bad(key, "token_from forms a cycle through %s (account[%d]); one account of the group must use its own tokens", d.Email, j)
		} else {
			bad(key, "%s (account[%d]) itself borrows tokens from %s; name %s directly", d.Email, j, d.TokenFrom, d.TokenFrom)
		}
	}
}

// splitHostPort splits host:port and parses the port. An empty host is
// allowed for listeners (all interfaces); a port must be a number.
func splitHostPort(addr string, listen bool) (string, int, error) {
	host, ps, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	port, err := strconv.ParseUint(ps, 10, 16)
	if err != nil {
		return "", 0, fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, ps)
	}
	if listen && host == "" {
		return "", int(port), nil
	}
	return host, int(port), nil
}

// isLoopback reports whether a listen host stays on this machine. An empty
// host means every interface.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// validEmail is a plausibility check, not RFC 5322: one @, something on
// each side, no spaces or address punctuation.
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n\"<>,;") {
		return false
	}
	domain := s[at+1:]
	return !strings.Contains(s[:at], "@") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}

// ResolveAccounts returns the accounts with their provider's defaults
// overlaid by the account's own settings. Emails and token_from are lower
// case; an empty mailbox becomes the email.
func (c *Config) ResolveAccounts() ([]*Account, error) {
	out := make([]*Account, 0, len(c.Accounts))
	for i, a := range c.Accounts {
		p, err := tokens.LookupProvider(a.Provider, a.Tenant)
		if err != nil {
			return nil, &ConfigError{File: c.Path, Line: c.lineOf(fmt.Sprintf("account[%d].provider", i)), Key: fmt.Sprintf("account[%d].provider", i), Msg: err.Error()}
		}
		overlay := func(dst *string, v string) {
			if v != "" {
				*dst = v
			}
		}
		overlay(&p.IMAP, a.IMAP)
		overlay(&p.SMTP, a.SMTP)
		overlay(&p.POP3, a.POP3)
		overlay(&p.AuthURL, a.AuthURL)
		overlay(&p.TokenURL, a.TokenURL)
		overlay(&p.DeviceURL, a.DeviceURL)
		if len(a.Scopes) > 0 {
			p.Scopes = append([]string(nil), a.Scopes...)
		}
		acc := &Account{
			Email:        strings.ToLower(strings.TrimSpace(a.Email)),
			Mailbox:      strings.TrimSpace(a.Mailbox),
			TokenFrom:    strings.ToLower(strings.TrimSpace(a.TokenFrom)),
			Provider:     p,
			Tenant:       a.Tenant,
			ClientID:     a.ClientID,
			ClientSecret: a.ClientSecret,
		}
		if acc.Mailbox == "" {
			acc.Mailbox = acc.Email
		}
		if acc.Tenant == "" && p.Name == "microsoft" {
			acc.Tenant = "common"
		}
		out = append(out, acc)
	}
	return out, nil
}
