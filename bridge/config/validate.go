package config

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

// Validate checks the values: listen addresses, the store, the log level
// and the accounts. It reports every problem it finds, joined, each a
// *Error naming the key.
func (c *Config) Validate() error {
	var errs []error
	bad := func(key, msg string, args ...any) {
		errs = append(errs, c.ErrorAt(key, fmt.Sprintf(msg, args...)))
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
	if _, err := tlsutil.ParseVersion(c.TLS.LocalMinVersion); err != nil {
		bad("tls.local_min_version", "%q is not a TLS version; want \"1.0\", \"1.1\", \"1.2\" or \"1.3\"", c.TLS.LocalMinVersion)
	}
	switch strings.ToLower(c.Log.Level) {
	case "", "debug", "info", "warn", "warning", "error":
	default:
		bad("log.level", "%q is not a level; want debug, info, warn or error", c.Log.Level)
	}
	validateProxy(bad, "network.proxy", c.Network.Proxy)
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
	if l.MaxConnections < 0 {
		bad("listen.max_connections", "%d is negative; want a number of connections, or 0 for the default from the file descriptor limit", l.MaxConnections)
	}
	if l.MaxConnectionsPerPeer < 0 {
		bad("listen.max_connections_per_peer", "%d is negative; want a number of connections, or 0 for the default", l.MaxConnectionsPerPeer)
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
		p, err := tokens.LookupProvider(a.Provider, a.Tenant, "")
		if err != nil {
			bad(key("provider"), "%q is not a provider; want microsoft, gmail or custom", a.Provider)
		} else if p.Name == "custom" {
			for _, need := range []struct{ k, v string }{{"imap", a.IMAP}, {"smtp", a.SMTP}, {"auth_url", a.AuthURL}, {"token_url", a.TokenURL}} {
				if need.v == "" {
					bad(key(need.k), "a custom provider has no default; set %s", need.k)
				}
			}
		}
		if a.Cloud != "" {
			switch cloud := strings.ToLower(a.Cloud); {
			case !slices.Contains(tokens.Clouds(), cloud):
				bad(key("cloud"), "%q is not a cloud; want %s", a.Cloud, strings.Join(tokens.Clouds(), ", "))
			case err == nil && p.Name != "microsoft":
				bad(key("cloud"), "cloud applies to microsoft accounts only; %s has none", p.Name)
			case cloud != "global" && strings.EqualFold(a.Tenant, "consumers"):
				bad(key("tenant"), "personal accounts (consumers) exist only in the global cloud; use organizations or the tenant id")
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
		switch a.SMTPTLS {
		case "", "implicit", "starttls":
		default:
			bad(key("smtp_tls"), "%q is not a way to start TLS; want \"implicit\" or \"starttls\", or leave it empty for implicit TLS on port 465 and STARTTLS elsewhere", a.SMTPTLS)
		}
		switch strings.ToLower(a.SMTPVia) {
		case "", "smtp":
		case "graph", "auto":
			if err == nil && p.Name != "microsoft" && a.GraphURL == "" {
				bad(key("smtp_via"), "%q sends through Microsoft Graph, which a %s account does not have; use \"smtp\", or set graph_url", a.SMTPVia, p.Name)
			}
		default:
			bad(key("smtp_via"), "%q is not a way to send; want \"smtp\", \"graph\" or \"auto\"", a.SMTPVia)
		}
		for _, u := range []struct{ k, v string }{{"auth_url", a.AuthURL}, {"token_url", a.TokenURL}, {"device_url", a.DeviceURL}, {"graph_url", a.GraphURL}} {
			if u.v == "" {
				continue
			}
			if pu, err := url.Parse(u.v); err != nil || (pu.Scheme != "https" && pu.Scheme != "http") || pu.Host == "" {
				bad(key(u.k), "%q is not an http(s) URL", u.v)
			}
		}
		validateProxy(bad, key("proxy"), a.Proxy)
		if err == nil {
			c.validateAuth(i, a, p.Name, bad)
		}
		if a.SignInAs != "" && !validEmail(a.SignInAs) {
			bad(key("sign_in_as"), "%q does not look like a sign-in name (an address such as me@example.onmicrosoft.com)", a.SignInAs)
		}
		for j, s := range a.Scopes {
			if strings.TrimSpace(s) == "" {
				bad(key("scopes"), "element %d is empty", j)
			}
		}
	}
	c.validateTokenFrom(bad)
}

// AuthApp is Account.Auth for an app-only account.
const AuthApp = "app"

// IsApp reports whether the account is app-only (auth = "app").
func (a *Account) IsApp() bool { return strings.EqualFold(strings.TrimSpace(a.Auth), AuthApp) }

// validateAuth checks auth and, for an app-only account, what the client
// credentials grant needs: a Microsoft tenant's own endpoint (the grant
// is refused at common and consumers, and organizations names no tenant)
// and the app's client id, with its secret or certificate in the token
// store rather than here. account[i] is a, of the provider named pname.
func (c *Config) validateAuth(i int, a Account, pname string, bad func(key, msg string, args ...any)) {
	key := func(k string) string { return fmt.Sprintf("account[%d].%s", i, k) }
	switch strings.ToLower(strings.TrimSpace(a.Auth)) {
	case "", "delegated":
		return
	case AuthApp:
	default:
		bad(key("auth"), "%q is not a way to get tokens; want \"delegated\" (a person signs in) or \"app\" (the app's own secret or certificate)", a.Auth)
		return
	}
	if pname != "microsoft" {
		bad(key("auth"), "app-only access is Microsoft 365's client credentials grant; provider %s has none", pname)
		return
	}
	switch t := strings.ToLower(strings.TrimSpace(a.Tenant)); t {
	case "", "common", "organizations", "consumers":
		what := "is not set"
		if t != "" {
			what = fmt.Sprintf("is %q", a.Tenant)
		}
		bad(key("tenant"), "tenant %s; an app-only account needs its organisation's own tenant: the tenant id (a GUID) or a verified domain such as contoso.onmicrosoft.com", what)
	}
	if a.ClientID == "" {
		bad(key("client_id"), "an app-only account needs the app registration's Application (client) ID")
	}
	if a.ClientSecret != "" {
		bad(key("client_secret"), "an app-only account keeps its secret in the token store, not in the config; remove client_secret and run `bridge login %s --app`", a.Email)
	}
	if a.TokenFrom != "" {
		bad(key("token_from"), "an app-only account uses the app's own tokens; remove token_from (give each mailbox the app serves its own [[account]] with auth = \"app\")")
	}
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
		if d.IsApp() && !a.IsApp() {
			bad(key, "%s (account[%d]) is app-only; a mailbox the app serves gets its own [[account]] with auth = \"app\" instead of token_from", d.Email, j)
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

// validateProxy checks a proxy setting: empty, "direct" or a proxy URL.
func validateProxy(bad func(key, msg string, args ...any), key, v string) {
	if v == "" || v == proxy.Direct {
		return
	}
	if _, err := proxy.Parse(v); err != nil {
		bad(key, "%v, or \"direct\" for none", err)
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
// each side, no spaces, address punctuation or control characters (the
// name reaches protocol replies and logs).
func validEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	if at <= 0 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n\"<>,;") ||
		strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
		return false
	}
	domain := s[at+1:]
	return !strings.Contains(s[:at], "@") && !strings.HasPrefix(domain, ".") && !strings.HasSuffix(domain, ".")
}
