// Package config reads, checks and edits the bridge's config file: the
// TOML structs with their defaults, the checks that name the key and line
// of every problem, and the edits `bridge login` and `bridge logout` make
// while keeping the file's comments and layout.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"

	"github.com/BurntSushi/toml"

	"github.com/mailbridge/bridge/tlsutil"
)

// Config is the bridge's configuration file. config.example.toml documents
// every key with its default; the zero value of each field is described on
// the field.
type Config struct {
	// Path is the file the config was loaded from; empty for a config made
	// in code.
	Path string `toml:"-"`
	// Listen holds the local listeners.
	Listen Listen `toml:"listen"`
	// Store says where tokens and local passwords are kept.
	Store Store `toml:"store"`
	// TLS holds the local certificate and extra upstream roots.
	TLS TLS `toml:"tls"`
	// Notify runs a command when an account needs attention.
	Notify Notify `toml:"notify"`
	// Log sets the log level and the pre-login wire trace.
	Log Log `toml:"log"`
	// Network says how the upstream servers are reached.
	Network Network `toml:"network"`
	// Accounts are the mailboxes clients can log in to, in file order.
	Accounts []Account `toml:"account"`

	// lines maps a key path ("listen.imap", "account[1].client_id",
	// "account[1]") to its 1-based line in the file, for error messages.
	lines map[string]int
}

// Listen holds the local listen addresses as host:port. An empty
// address turns that listener off.
type Listen struct {
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
	// LoopbackTwin makes a listener on 127.0.0.1 also listen on [::1] at
	// the same port, and one on [::1] also on 127.0.0.1, wherever the
	// machine has that loopback; both must bind. A client told "localhost"
	// may connect to either, and a twin port left free would let another
	// local program take it and collect the passwords sent there. false
	// listens on the address as written alone. Default true.
	LoopbackTwin bool `toml:"loopback_twin"`
	// MaxConnections caps the client connections of all listeners
	// together. At the cap, a new client makes room by closing the oldest
	// connection that has not logged in and has no login under way; when
	// every one has, the newcomer gets the protocol's "too many
	// connections" reply. 0 derives the cap from the process's file
	// descriptor limit: (limit - 256) / 2, since a relayed session holds two
	// descriptors and logins need some spare.
	MaxConnections int `toml:"max_connections"`
	// MaxConnectionsPerPeer caps the connections from one client address;
	// a client over it gets the "too many connections" reply. 0 means 1000
	// with AllowRemote and no cap without it (every local client shares the
	// loopback address, so only MaxConnections applies).
	MaxConnectionsPerPeer int `toml:"max_connections_per_peer"`
}

// Store chooses the token store.
type Store struct {
	// Backend is "keyring" (the OS keyring) or "file"; empty means keyring.
	Backend string `toml:"backend"`
	// Path is the file store's location; empty means a default under the
	// user state directory. Ignored by the keyring backend.
	Path string `toml:"path"`
}

// TLS holds certificate settings for both legs.
type TLS struct {
	// CertFile and KeyFile are the local listeners' certificate and key
	// (PEM); both empty means a certificate is generated on first use.
	CertFile string `toml:"cert_file"`
	KeyFile  string `toml:"key_file"`
	// UpstreamCAFile adds PEM roots trusted for the upstream servers (tests,
	// TLS-inspecting proxies); empty means the system roots alone.
	UpstreamCAFile string `toml:"upstream_ca_file"`
	// LocalMinVersion is the oldest TLS version the local listeners accept:
	// "1.0", "1.1", "1.2" or "1.3"; empty means "1.2". Legacy clients (PHP's
	// imap extension, old Outlook, scanners) need "1.0". The upstream leg
	// always requires 1.2 or newer.
	LocalMinVersion string `toml:"local_min_version"`
}

// LocalMin is LocalMinVersion as a crypto/tls version; 0 (the default) when
// empty or not valid, which Validate reports.
func (t TLS) LocalMin() uint16 {
	v, _ := tlsutil.ParseVersion(t.LocalMinVersion)
	return v
}

// Notify runs a command when an account needs attention (a new
// `bridge login`, or a switch an admin must turn on).
type Notify struct {
	// Command is run through the shell with BRIDGE_ACCOUNT (the email),
	// BRIDGE_ID (the diagnosis id) and BRIDGE_TEXT (a sentence for people)
	// in its environment; empty means no command.
	Command string `toml:"command"`
}

// Log controls logging.
type Log struct {
	// Level is debug, info, warn or error; empty means info.
	Level string `toml:"level"`
	// Trace logs the pre-login part of each connection at debug level,
	// with every line of a login and any unknown command redacted; false
	// logs no wire lines.
	Trace bool `toml:"trace"`
}

// Network says how the bridge reaches the mail servers and the identity
// platform.
type Network struct {
	// Proxy is the proxy every account's upstream connections (IMAP, POP3,
	// SMTP) and token requests go through: "http://[user@]host:port" for
	// an HTTP proxy (CONNECT) or "socks5://[user@]host:port". The password
	// of a user named without one is kept in the token store (`bridge
	// proxy-password`). "direct" uses no proxy, not even for token
	// requests. Empty means mail connections go direct and token requests
	// follow HTTPS_PROXY and NO_PROXY from the environment.
	Proxy string `toml:"proxy"`
}

// Account is one [[account]] block as written in the file. Empty
// fields take the provider's defaults.
type Account struct {
	// Email is the name the mail client logs in with; required.
	Email string `toml:"email"`
	// Provider is microsoft, gmail or custom; empty means microsoft.
	Provider string `toml:"provider"`
	// Tenant is common, organizations, consumers or a tenant id; empty
	// means common. Only microsoft uses it.
	Tenant string `toml:"tenant"`
	// Cloud is the Microsoft cloud the tenant lives in: global, usgov
	// (Microsoft 365 GCC High and DoD) or china (21Vianet); empty means
	// global. It sets the sign-in endpoints, the scopes and the mail
	// servers together. Only microsoft uses it.
	Cloud string `toml:"cloud"`
	// ClientID is the app registration to sign in with.
	ClientID string `toml:"client_id"`
	// ClientSecret is only for confidential apps (gmail needs one).
	ClientSecret string `toml:"client_secret"`
	// Auth is how the account gets its tokens: "delegated" (a person
	// signs in once, the bridge refreshes) or "app" (app-only: the app
	// registration's own secret or certificate, kept in the token store,
	// with the client credentials grant, for a mailbox nobody signs in
	// to, such as a scanner's); empty means delegated.
	Auth string `toml:"auth"`
	// Mailbox is the XOAUTH2 user= for IMAP and POP3; empty means Email.
	Mailbox string `toml:"mailbox"`
	// TokenFrom names another account whose tokens this one uses (the
	// delegate of a shared mailbox); empty means its own.
	TokenFrom string `toml:"token_from"`
	// IMAP, SMTP and POP3 override the provider's servers (host:port).
	IMAP string `toml:"imap"`
	SMTP string `toml:"smtp"`
	POP3 string `toml:"pop3"`
	// SMTPTLS is how SMTP upstream starts TLS: "implicit" (TLS from the
	// first byte, RFC 8314) or "starttls" (RFC 3207); empty means implicit
	// on port 465 and STARTTLS on any other.
	SMTPTLS string `toml:"smtp_tls"`
	// AuthURL, TokenURL and DeviceURL override the OAuth endpoints.
	AuthURL   string `toml:"auth_url"`
	TokenURL  string `toml:"token_url"`
	DeviceURL string `toml:"device_url"`
	// Scopes replaces the provider's scopes; empty means the defaults.
	Scopes []string `toml:"scopes"`
	// SMTPVia is how the account's outgoing mail leaves: "smtp" (empty
	// means it) relays to the provider's SMTP server; "graph" submits
	// each message through Microsoft Graph's sendMail; "auto" uses SMTP
	// until Exchange says authenticated SMTP is switched off, then Graph.
	SMTPVia string `toml:"smtp_via"`
	// GraphURL overrides the Microsoft Graph endpoint; empty means
	// https://graph.microsoft.com/v1.0.
	GraphURL string `toml:"graph_url"`
	// Proxy replaces [network] proxy for this account: a proxy URL, or
	// "direct" for none. Empty means [network] proxy.
	Proxy string `toml:"proxy"`
	// SignInAs is the name the account signs in to the identity platform
	// with, when it is not Email (an alias, or a user name on another
	// domain); `bridge login --sign-in-as` records it. Empty means Email.
	SignInAs string `toml:"sign_in_as"`
}

// Error is a problem in the config file. File and Line say where (Line
// is 0 when unknown), Key names the setting, such as "account[1].client_id"
// (accounts are counted from 0 in file order).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

func (e *Error) Error() string {
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

// ErrorAt returns an *Error for key in this config, with the line of the
// key (or of the nearest enclosing table the file has) when it came from a
// file.
func (c *Config) ErrorAt(key, msg string) *Error {
	return &Error{File: c.Path, Line: c.lineOf(key), Key: key, Msg: msg}
}

// Default returns the configuration used when there is no file: the three
// plain listeners on loopback (with their loopback twins), the keyring
// store, info logging, no accounts.
// It does no I/O.
func Default() *Config {
	return &Config{
		Listen: Listen{
			IMAP: "127.0.0.1:1143",
			SMTP: "127.0.0.1:1587",
			POP3: "127.0.0.1:1110",

			LoopbackTwin: true,
		},
		Store: Store{Backend: "keyring"},
		TLS:   TLS{LocalMinVersion: "1.2"},
		Log:   Log{Level: "info"},
	}
}

// DefaultPath returns $BRIDGE_CONFIG, or else config.toml in the
// bridge directory under the user config directory.
func DefaultPath() (string, error) {
	if p := os.Getenv("BRIDGE_CONFIG"); p != "" {
		return p, nil
	}
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("bridge: finding the config directory: %w (set BRIDGE_CONFIG)", err)
	}
	return filepath.Join(dir, "bridge", "config.toml"), nil
}

// Load reads and validates the file at path. A missing file gives
// Default() with Path set and no error, so `bridge login` can create it.
// Problems in the file come back as one or more *Error (joined), each
// naming the file, the key and the line.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		c := Default()
		c.Path = path
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("bridge: reading config: %w", err)
	}
	return parse(path, data)
}

// parse decodes and validates the text of a config file. It checks
// the raw TOML against the struct first, so an unknown key or a wrong type
// is reported with its exact place ("account[1].scopes", line 14) rather
// than the decoder's last-key guess.
func parse(path string, data []byte) (*Config, error) {
	text := string(data)
	var raw map[string]any
	if _, err := toml.Decode(text, &raw); err != nil {
		var pe toml.ParseError
		if errors.As(err, &pe) {
			return nil, &Error{File: path, Line: pe.Position.Line, Key: pe.LastKey, Msg: pe.Message}
		}
		return nil, &Error{File: path, Msg: err.Error()}
	}
	lines := keyLines(text)
	errs := checkTable(path, lines, "", raw, reflect.TypeFor[Config]())
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	c := Default()
	md, err := toml.Decode(text, c)
	if err != nil {
		return nil, &Error{File: path, Msg: err.Error()}
	}
	// checkTable has already named every unknown key; this only guards
	// against the two disagreeing.
	for _, k := range md.Undecoded() {
		errs = append(errs, &Error{File: path, Key: k.String(), Msg: "unknown key"})
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
		a, b := errs[i].(*Error), errs[j].(*Error)
		return a.Line < b.Line
	})
	return errors.Join(errs...)
}

// Account returns the account whose email matches (ignoring case) and its
// index in Accounts, or nil and -1.
func (c *Config) Account(email string) (*Account, int) {
	for i := range c.Accounts {
		if strings.EqualFold(c.Accounts[i].Email, email) {
			return &c.Accounts[i], i
		}
	}
	return nil, -1
}

// SlogLevel returns the configured log level; info when empty or unknown
// (Validate refuses unknown levels).
func (l Log) SlogLevel() slog.Level {
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
