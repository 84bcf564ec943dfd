package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

func runLogin(ctx context.Context, e *env, args []string) error {
	fs := newFlags("login")
	provider := fs.String("provider", "", "microsoft, gmail or custom")
	tenant := fs.String("tenant", "", "common, organizations, consumers or a tenant id")
	clientID := fs.String("client-id", "", "the app registration's client id")
	clientSecret := fs.String("client-secret", "", "client secret (confidential apps only)")
	device := fs.Bool("device", false, "use the device-code flow")
	noBrowser := fs.Bool("no-browser", false, "print the sign-in URL instead of opening a browser")
	port := fs.Int("port", 0, "fixed port for the sign-in redirect listener (for ssh -L)")
	timeout := fs.Duration("timeout", 5*time.Minute, "how long to wait for the sign-in")
	signInAs := fs.String("sign-in-as", "", "the name you sign in with when it is not EMAIL (an alias, a user name on another domain)")
	app := fs.Bool("app", false, "app-only: the app's own client secret (asked for, or read from stdin) instead of a person's sign-in")
	certificate := fs.String("certificate", "", "with --app: a PEM file with the app's certificate and its private key, instead of a secret")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	email, err := oneEmail("login", pos)
	if err != nil {
		return err
	}
	path, err := e.configFile()
	if err != nil {
		return err
	}
	cfg, err := config.Load(path)
	if err != nil {
		return err
	}
	ac := config.Account{Email: email}
	if old, _ := cfg.Account(email); old != nil {
		ac = *old
	}
	set := func(dst *string, v string) {
		if v != "" {
			*dst = v
		}
	}
	set(&ac.Provider, *provider)
	set(&ac.Tenant, *tenant)
	set(&ac.ClientID, *clientID)
	set(&ac.ClientSecret, *clientSecret)
	set(&ac.SignInAs, strings.ToLower(strings.TrimSpace(*signInAs)))
	if *app || *certificate != "" || ac.IsApp() {
		switch {
		case *clientSecret != "":
			return usagef("bridge login --app: give the client secret when asked (or on stdin), not on the command line, where other users may see it")
		case *device || *noBrowser || *port != 0 || *signInAs != "":
			return usagef("bridge login --app: no person signs in for an app-only account; --device, --no-browser, --port and --sign-in-as do not apply")
		}
		ac.Auth = config.AuthApp
		return loginApp(ctx, e, path, cfg, ac, *certificate)
	}
	if ac.TokenFrom == "" && ac.ClientID == "" && ac.AuthURL == "" {
		if strings.EqualFold(ac.Provider, "gmail") {
			fmt.Fprint(e.stderr, gmailRegisterHelp(email))
			return &exitError{2}
		}
		fmt.Fprint(e.stderr, registerHelp(email))
		return &exitError{2}
	}
	// Validate the config as it will be before writing it.
	accts, acct, err := resolveEdited(cfg, ac)
	if err != nil {
		return err
	}
	if *device && acct.TokenFrom == "" && acct.Provider.DeviceRefused != "" {
		fmt.Fprintf(e.stderr, "--device cannot sign %s in: %s.\nOn a machine without a browser, run `bridge login %s --no-browser --port 8400` and forward the port from one with a browser: ssh -L 8400:127.0.0.1:8400 THIS-HOST\n",
			email, acct.Provider.DeviceRefused, email)
		return &exitError{2}
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	if err := config.UpsertAccount(path, ac); err != nil {
		return err
	}
	// Find out before the sign-in that the store can be read.
	if _, err := st.Get(email); err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return err
	}
	var rt string
	var o tokens.LoginOptions
	login := tokens.BrowserLogin
	if *device {
		login = tokens.DeviceLogin
	}
	if acct.TokenFrom == "" {
		o = tokens.LoginOptions{
			Provider: acct.Provider, ClientID: acct.ClientID, ClientSecret: acct.ClientSecret,
			Email: email, Port: *port, NoBrowser: *noBrowser, Out: e.stdout,
			Interactive: isTerminal(e.stdout), Timeout: *timeout,
			HTTPClient: bridge.TokenHTTPClient(nil, acct, bridge.ProxyDial(acct, st)),
		}
		t, err := login(ctx, o)
		if err != nil {
			return signInError(acct, err)
		}
		if err := checkSignedIn(e.stderr, email, ac.SignInAs, tokens.SignedInAs(t)); err != nil {
			return err
		}
		rt = t.RefreshToken
		if rt == "" {
			return fmt.Errorf("the identity platform issued no refresh token for %s: the app must be allowed the offline_access scope", email)
		}
	}
	// One store update, so that a password reset meanwhile stays.
	var password string
	err = tokens.Update(st, email, func(ent *tokens.Entry) error {
		if rt != "" {
			ent.RefreshToken, ent.Updated, ent.NeedsLogin = rt, time.Now().UTC(), ""
		}
		var err error
		password, err = ensurePassword(ent)
		return err
	})
	if err != nil {
		return err
	}
	if acct.TokenFrom != "" {
		fmt.Fprintf(e.stdout, "%s uses the sign-in of %s; run `bridge login %s` if that account is not signed in.\n", email, acct.TokenFrom, acct.TokenFrom)
	} else {
		fmt.Fprintf(e.stdout, "Signed in as %s.\n", email)
	}
	printSettings(e.stdout, cfg, email, password)
	var gerr error
	if acct.TokenFrom == "" {
		gerr = graphConsent(ctx, e, acct, accts, st, login, &o)
	} else {
		gerr = graphConsent(ctx, e, acct, accts, st, login, nil)
	}
	printSentCopyNote(e.stdout, acct.Provider.Name)
	tellServer(ctx, e, path)
	return gerr
}

// signInError words a failed sign-in. A refusal of the identity platform,
// or of the proxy in front of it, gets its diagnosis, fix included (for a
// consent only an administrator can give, the admin-consent address),
// rather than a pointer to `bridge doctor`: the person who must act is
// reading now. Other failures (no
// answer in time, a network error) already say what to do.
func signInError(acct *bridge.Account, err error) error {
	var te *tokens.Error
	var pe *proxy.Error
	if !errors.As(err, &pe) && (!errors.As(err, &te) || te.Temporary()) {
		return err
	}
	return &signInFailure{email: acct.Email, d: diag.Classify(err, acct.Diag(), time.Now()), err: err}
}

// signInFailure is a sign-in the identity platform refused, with its
// diagnosis.
type signInFailure struct {
	email string
	d     diag.Diagnosis
	err   error
}

func (f *signInFailure) Error() string {
	return "sign-in for " + f.email + " failed: " + f.d.Long()
}

func (f *signInFailure) Unwrap() error { return f.err }

// printSettings prints what to type into the mail client. The server is
// the name the local certificate holds (tlsutil.ClientName), so clients
// that use TLS verify it.
func printSettings(w io.Writer, cfg *config.Config, email, password string) {
	certFile := cfg.TLS.CertFile
	if certFile == "" {
		certFile, _, _ = tlsutil.DefaultPaths()
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, "Mail client settings:")
	var renamed []string
	row := func(name, addr, sec string) {
		if addr == "" {
			return
		}
		host, port := splitHostPort(addr)
		server := tlsutil.ClientName(certFile, host)
		if server != host && !slices.Contains(renamed, host) {
			renamed = append(renamed, host)
		}
		fmt.Fprintf(w, "  %-6s server %s  port %s  security %s\n", name, server, port, sec)
	}
	row("IMAP", cfg.Listen.IMAP, "none or STARTTLS")
	row("IMAPS", cfg.Listen.IMAPS, "SSL/TLS")
	row("SMTP", cfg.Listen.SMTP, "none or STARTTLS")
	row("SMTPS", cfg.Listen.SMTPS, "SSL/TLS")
	row("POP3", cfg.Listen.POP3, "none or STARTTLS")
	row("POP3S", cfg.Listen.POP3S, "SSL/TLS")
	fmt.Fprintf(w, "  user name  %s\n", email)
	fmt.Fprintf(w, "  password   %s\n", password)
	fmt.Fprintln(w, "  (normal password authentication; `bridge password "+email+"` shows it again)")
	if len(renamed) > 0 {
		fmt.Fprintf(w, "  (localhost is %s on this machine; with TLS, clients check the certificate against the name)\n", strings.Join(renamed, " and "))
	}
}

func splitHostPort(addr string) (string, string) {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		return addr, ""
	}
	return strings.Trim(addr[:i], "[]"), addr[i+1:]
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(interface{ Fd() uintptr })
	return ok && term.IsTerminal(int(f.Fd()))
}

// registerHelp explains how to register the app the bridge signs in with;
// no third party's client id is built in.
func registerHelp(email string) string {
	return `bridge needs an app registration (a client id) to sign in with; none is built in.
Register one (free, a few minutes) at https://entra.microsoft.com > App registrations > New registration:
  1. Supported account types: "Accounts in any organizational directory and personal Microsoft accounts"
     (or your organisation only; then pass --tenant YOUR-TENANT-ID).
  2. Redirect URI: platform "Public client/native (mobile & desktop)", URI http://localhost
  3. Authentication > Advanced settings > "Allow public client flows": Yes (needed for --device).
  4. API permissions > Add > APIs my organization uses > Office 365 Exchange Online > Delegated:
     IMAP.AccessAsUser.All, POP.AccessAsUser.All, SMTP.Send (and offline_access under Microsoft Graph).
  5. To send through Microsoft Graph where SMTP AUTH stays off (smtp_via = "graph" or "auto"), also
     Microsoft Graph > Delegated: Mail.Send and User.Read (Mail.Send.Shared for a shared mailbox).
Then run:
  bridge login ` + email + ` --client-id <Application (client) ID>
Personal Outlook.com accounts need --tenant consumers (or common with an app that allows personal accounts).
`
}

// checkSignedIn compares who the identity platform says signed in with the
// account (or the sign-in name recorded for it). A browser that is already
// signed in to another account (another profile, a colleague's session)
// signs in as that account without asking; its tokens would open the
// wrong mailbox, or none, and every mail login would then fail with a
// misleading refusal. The stored sign-in stays as it was.
func checkSignedIn(w io.Writer, email, signInAs, who string) error {
	if who == "" {
		fmt.Fprintf(w, "note: the identity platform did not say who signed in; make sure it was %s\n", email)
		return nil
	}
	if strings.EqualFold(who, email) || signInAs != "" && strings.EqualFold(who, signInAs) {
		return nil
	}
	want := email
	if signInAs != "" {
		want = signInAs
	}
	return fmt.Errorf("the sign-in was made as %s, not %s; the stored sign-in of %s is unchanged.\n"+
		"The browser probably used a session of %s: sign out of it there, or sign in from a private window, "+
		"or use `bridge login %s --device` and sign in as %s on the device page.\n"+
		"If %s is how %s signs in (an alias, or a user name on another domain), accept it once with "+
		"`bridge login %s --sign-in-as %s`",
		who, want, email, who, email, want, who, email, email, who)
}

// resolveEdited puts ac into cfg (replacing the account with its email, or
// appending it), validates the config as it will be written and returns
// every resolved account and ac's own.
func resolveEdited(cfg *config.Config, ac config.Account) ([]*bridge.Account, *bridge.Account, error) {
	if _, i := cfg.Account(ac.Email); i >= 0 {
		cfg.Accounts[i] = ac
	} else {
		cfg.Accounts = append(cfg.Accounts, ac)
	}
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		return nil, nil, err
	}
	for _, a := range accts {
		if a.Email == ac.Email {
			return accts, a, nil
		}
	}
	return accts, nil, nil
}

// ensurePassword gives ent a new local password unless it has one, and
// returns the one it has then.
func ensurePassword(ent *tokens.Entry) (string, error) {
	if ent.Password == "" {
		p, err := tokens.NewPassword()
		if err != nil {
			return "", err
		}
		ent.Password = p
	}
	return ent.Password, nil
}
