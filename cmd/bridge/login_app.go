package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// loginApp is `bridge login EMAIL --app [--certificate FILE]`: an app-only
// account. The app's client secret comes from the terminal (or, when stdin
// is not one, its first line, for scripts), or its certificate and key
// from FILE; a first token proves it works before the store keeps it
// (never the config). The local password and the client settings are
// printed as for a person's sign-in. cfg is loaded from path; ac is the
// account as it will be written, auth = "app" already set.
func loginApp(ctx context.Context, e *env, path string, cfg *config.Config, ac config.Account, certFile string) error {
	if ac.ClientID == "" || ac.Tenant == "" {
		fmt.Fprint(e.stderr, appRegisterHelp(ac.Email))
		return &exitError{2}
	}
	_, acct, err := resolveEdited(cfg, ac)
	if err != nil {
		return err
	}
	cred, stored, err := appCredential(e, acct, certFile)
	if err != nil {
		return err
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	if _, err := st.Get(ac.Email); err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	tok, err := tokens.AppToken(ctx, tokens.AppTokenOptions{Account: acct.Email, Provider: acct.Provider, ClientID: acct.ClientID, Credential: cred})
	if err != nil {
		return signInError(acct, err)
	}
	if err := config.UpsertAccount(path, ac); err != nil {
		return err
	}
	var password string
	err = tokens.Update(st, ac.Email, func(ent *tokens.Entry) error {
		ent.AppCredential, ent.RefreshToken, ent.Updated, ent.NeedsLogin = stored, "", time.Now().UTC(), ""
		var err error
		password, err = ensurePassword(ent)
		return err
	})
	if err != nil {
		return err
	}
	what := "its client secret"
	if cred.Cert != nil {
		what = "its certificate (thumbprint " + cred.Thumbprint() + ", valid until " + cred.Cert.NotAfter.Local().Format(time.DateOnly) + ")"
	}
	fmt.Fprintf(e.stdout, "App %s got a token for %s with %s; the %s store keeps it.\n", acct.ClientID, ac.Email, what, st.Name())
	printRoles(e.stdout, ac.Email, tok.AccessToken)
	printSettings(e.stdout, cfg, ac.Email, password)
	tellServer(ctx, e, path)
	return nil
}

// appCredential reads the app's certificate and key from certFile, or its
// client secret from the terminal or stdin, and returns it with its text
// for the store.
func appCredential(e *env, acct *bridge.Account, certFile string) (*tokens.AppCredential, string, error) {
	if certFile != "" {
		data, err := os.ReadFile(certFile)
		if err != nil {
			return nil, "", fmt.Errorf("reading the certificate: %w", err)
		}
		cred, stored, err := tokens.CertificateCredential(data)
		if err != nil {
			return nil, "", fmt.Errorf("%s: %w", certFile, err)
		}
		return cred, stored, nil
	}
	secret, err := readSecret(e, "Client secret of app "+acct.ClientID+" (its Value, not its Secret ID): ")
	secret = strings.TrimSpace(secret)
	if err != nil {
		return nil, "", err
	}
	if secret == "" {
		return nil, "", usagef("no client secret given; type or pipe the secret's Value, or use --certificate FILE")
	}
	return &tokens.AppCredential{Secret: secret}, secret, nil
}

// readSecret reads one line without echo from a terminal on stdin, with
// prompt on stderr; from anything else (a pipe, a file) it reads the
// first line silently. Only the line end is taken off: a password may
// end in a space.
func readSecret(e *env, prompt string) (string, error) {
	if f, ok := e.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprint(e.stderr, prompt)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(e.stderr)
		if err != nil {
			return "", fmt.Errorf("reading the secret: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	}
	if e.stdin == nil {
		return "", nil
	}
	line, err := bufio.NewReader(io.LimitReader(e.stdin, 64<<10)).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading the secret from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// printRoles says which mail permissions the app's token carries, and
// which it lacks (Exchange refuses that protocol until an administrator
// grants it and consents).
func printRoles(w io.Writer, email, access string) {
	g, ok := tokens.ReadAppGrant(access)
	if !ok {
		return
	}
	var missing []string
	for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
		if r := diag.AppRole(p); !g.HasRole(r) {
			missing = append(missing, r)
		}
	}
	have := strings.Join(g.Roles, ", ")
	if have == "" {
		have = "none"
	}
	fmt.Fprintf(w, "Its token's mail permissions (roles): %s.\n", have)
	if len(missing) > 0 {
		fmt.Fprintf(w, "Not granted: %s; those protocols are refused until an administrator adds them and consents (`bridge doctor %s` shows how).\n",
			strings.Join(missing, ", "), email)
	}
	fmt.Fprintf(w, "Exchange must also know the app: its service principal %s, with Full Access to %s (README, \"App-only accounts\"; `bridge doctor %s` checks).\n",
		g.ServicePrincipal, email, email)
}

// appRegisterHelp explains the app registration an app-only account needs.
func appRegisterHelp(email string) string {
	return `An app-only account needs the app registration's tenant and client id:
  bridge login ` + email + ` --app --tenant <Directory (tenant) ID> --client-id <Application (client) ID> [--certificate FILE]
Register the app (Microsoft Entra admin centre > App registrations > New registration, "this organizational directory only"), then:
  1. API permissions > Add a permission > APIs my organization uses > Office 365 Exchange Online > Application permissions:
     IMAP.AccessAsApp, POP.AccessAsApp, SMTP.SendAsApp (those you need), and "Grant admin consent".
  2. Certificates & secrets: upload a certificate (preferred; give its PEM with the key to --certificate)
     or make a client secret (its Value is asked for).
  3. In Exchange Online PowerShell, with the Object ID from Enterprise applications > the app (not App registrations):
     New-ServicePrincipal -AppId <client id> -ObjectId <enterprise application object id>
     Add-MailboxPermission -Identity ` + email + ` -User <enterprise application object id> -AccessRights FullAccess
The README's "App-only accounts" section has the details.
`
}
