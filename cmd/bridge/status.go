package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// statusDoc is `bridge status --json`. FormatVersion changes only when a
// field changes meaning or goes away.
type statusDoc struct {
	FormatVersion int             `json:"format_version"`
	Config        string          `json:"config"`
	Store         string          `json:"store"`
	Server        *control.Status `json:"server,omitempty"`
	Accounts      []accountStatus `json:"accounts"`
}

type accountStatus struct {
	Email     string `json:"email"`
	Mailbox   string `json:"mailbox,omitempty"`
	TokenFrom string `json:"token_from,omitempty"`
	// App is "secret" or "certificate" for an app-only account whose
	// credential is stored, "none" for one without; empty otherwise.
	App          string    `json:"app,omitempty"`
	SignedIn     bool      `json:"signed_in"`
	HasPassword  bool      `json:"has_password"`
	TokenUpdated time.Time `json:"token_updated,omitzero"`
	NeedsLogin   string    `json:"needs_login,omitempty"`
	AccessExpiry time.Time `json:"access_token_expiry,omitzero"`
	// NotSaved, from the running server, says why the newest refresh
	// token is in its memory only (the store refused it).
	NotSaved   string `json:"refresh_token_not_saved,omitempty"`
	StoreError string `json:"store_error,omitempty"`
	// LastDiagnosis and LastOK come from the running server: the last
	// refusal and the last good upstream login per protocol.
	LastDiagnosis map[bridge.Proto]diag.Diagnosis `json:"last_diagnosis,omitempty"`
	LastOK        map[bridge.Proto]time.Time      `json:"last_ok,omitempty"`
	// RefusedLogins, from the running server, are the recent wrong local
	// passwords given for the account.
	RefusedLogins *bridge.RefusedLogins `json:"refused_logins,omitempty"`
	// SMTPVia is the config's smtp_via when it is not "smtp"; Graph,
	// from the running server, says that and why it sends the account's
	// mail through Microsoft Graph now.
	SMTPVia string           `json:"smtp_via,omitempty"`
	Graph   *bridge.GraphUse `json:"graph,omitempty"`
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags("status")
	asJSON := fs.Bool("json", false, "print JSON")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge status [--json]")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	doc := statusDoc{FormatVersion: 1, Config: cfg.Path, Store: st.Name()}
	doc.Server = liveStatus(ctx, e, cfg)
	for _, ac := range cfg.Accounts {
		as := accountStatus{Email: ac.Email, Mailbox: ac.Mailbox, TokenFrom: ac.TokenFrom}
		if ac.IsApp() {
			as.App = "none"
		}
		if v := strings.ToLower(ac.SMTPVia); v != "" && v != "smtp" {
			as.SMTPVia = v
		}
		ent, err := st.Get(ac.Email)
		switch {
		case errors.Is(err, tokens.ErrNotFound):
		case err != nil:
			as.StoreError = err.Error()
		default:
			as.HasPassword = ent.Password != ""
			as.SignedIn = ent.RefreshToken != "" && ent.NeedsLogin == ""
			as.TokenUpdated, as.NeedsLogin = ent.Updated, ent.NeedsLogin
			if ac.IsApp() {
				as.SignedIn = ent.AppCredential != "" && ent.NeedsLogin == ""
				if c, err := tokens.ParseAppCredential(ent.AppCredential); err == nil {
					as.App = "secret"
					if c.Cert != nil {
						as.App = "certificate"
					}
				}
			}
		}
		if doc.Server != nil {
			for _, ls := range doc.Server.Accounts {
				if ls.Email == as.Email {
					as.AccessExpiry, as.NotSaved = ls.Token.AccessExpiry, ls.Token.NotSaved
					as.LastDiagnosis, as.LastOK, as.RefusedLogins = ls.Last, ls.LastOK, ls.Refused
					as.Graph = ls.Graph
					if ls.Token.NeedsLogin != "" && as.NeedsLogin == "" {
						as.NeedsLogin = ls.Token.NeedsLogin
					}
				}
			}
		}
		doc.Accounts = append(doc.Accounts, as)
	}
	if *asJSON {
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	}
	printStatus(e.stdout, doc, time.Now())
	return nil
}

// liveStatus asks a running server, if any, for its state over the control
// socket; nil when none runs.
var liveStatus = askServer

// printStatus prints doc for people, with times in one format (stamp)
// and the access token's expiry said in the past tense once now is past it.
func printStatus(w io.Writer, doc statusDoc, now time.Time) {
	fmt.Fprintf(w, "config  %s\nstore   %s\n", doc.Config, doc.Store)
	if doc.Server != nil {
		fmt.Fprintf(w, "server  running (pid %d); sessions imap %d, pop3 %d, smtp %d\n", doc.Server.PID,
			doc.Server.Sessions[bridge.IMAP], doc.Server.Sessions[bridge.POP3], doc.Server.Sessions[bridge.SMTP])
		keys := slices.Sorted(maps.Keys(doc.Server.Listeners))
		for _, k := range keys {
			fmt.Fprintf(w, "        %-13s %s\n", k, doc.Server.Listeners[k])
		}
	} else {
		fmt.Fprintln(w, "server  not running")
	}
	if len(doc.Accounts) == 0 {
		fmt.Fprintln(w, "\nno accounts; run `bridge login EMAIL`")
	}
	for _, a := range doc.Accounts {
		fmt.Fprintf(w, "\n%s\n", a.Email)
		if a.Mailbox != "" {
			fmt.Fprintf(w, "  mailbox        %s\n", a.Mailbox)
		}
		switch {
		case a.StoreError != "":
			fmt.Fprintf(w, "  token          unreadable: %s\n", a.StoreError)
		case a.TokenFrom != "":
			fmt.Fprintf(w, "  token          uses the sign-in of %s\n", a.TokenFrom)
		case a.App != "" && a.NeedsLogin != "":
			fmt.Fprintf(w, "  token          APP CREDENTIAL REFUSED: %s\n                 run `bridge login %s --app`\n", needsLoginText(a.NeedsLogin), a.Email)
		case a.App == "none":
			fmt.Fprintf(w, "  token          app-only, no secret or certificate stored; run `bridge login %s --app`\n", a.Email)
		case a.App == "secret":
			fmt.Fprintf(w, "  token          app-only, client secret saved %s\n", stamp(a.TokenUpdated))
		case a.App != "":
			fmt.Fprintf(w, "  token          app-only, %s saved %s\n", a.App, stamp(a.TokenUpdated))
		case a.NeedsLogin != "":
			fmt.Fprintf(w, "  token          NEEDS SIGN-IN: %s\n                 run `bridge login %s`\n", needsLoginText(a.NeedsLogin), a.Email)
		case a.SignedIn:
			fmt.Fprintf(w, "  token          signed in; refresh token saved %s\n", stamp(a.TokenUpdated))
		default:
			fmt.Fprintf(w, "  token          not signed in; run `bridge login %s`\n", a.Email)
		}
		switch {
		case a.AccessExpiry.IsZero():
		case a.AccessExpiry.After(now):
			fmt.Fprintf(w, "  access token   expires %s\n", stamp(a.AccessExpiry))
		default:
			fmt.Fprintf(w, "  access token   expired %s (the next login fetches a new one)\n", stamp(a.AccessExpiry))
		}
		if a.NotSaved != "" {
			fmt.Fprintf(w, "  refresh token  NOT SAVED: %s\n                 the running bridge keeps it and tries again; free the store before it stops\n", a.NotSaved)
		}
		for _, p := range []bridge.Proto{bridge.IMAP, bridge.POP3, bridge.SMTP} {
			if d, ok := a.LastDiagnosis[p]; ok {
				fmt.Fprintf(w, "  %-14s REFUSED %s: %s [%s]\n                 %s\n", p, stamp(d.At), d.Title, d.ID,
					strings.ReplaceAll(d.Fix, "\n", "\n                 "))
			} else if t, ok := a.LastOK[p]; ok {
				fmt.Fprintf(w, "  %-14s ok, last login %s\n", p, stamp(t))
			}
		}
		printSending(w, a)
		if r := a.RefusedLogins; r != nil {
			fmt.Fprintf(w, "  local logins   %s\n                 %s\n", r.Text(), r.Fix(a.Email))
		}
		if !a.HasPassword && a.StoreError == "" {
			fmt.Fprintf(w, "  local password none; run `bridge password %s`\n", a.Email)
		}
	}
}

// printSending says how the account's outgoing mail leaves when that is
// not plain SMTP.
func printSending(w io.Writer, a accountStatus) {
	switch g := a.Graph; {
	case g != nil && g.RetrySMTP.IsZero():
		fmt.Fprintf(w, "  sending        through Microsoft Graph (smtp_via = %q)\n", a.SMTPVia)
	case g != nil:
		fmt.Fprintf(w, "  sending        through Microsoft Graph since %s: SMTP AUTH is off [%s]\n"+
			"                 SMTP is tried again at the first login after %s\n", stamp(g.Since), g.Reason, stamp(g.RetrySMTP))
	case a.SMTPVia == "auto":
		fmt.Fprintln(w, "  sending        through SMTP; through Microsoft Graph while SMTP AUTH is off (smtp_via = \"auto\")")
	case a.SMTPVia == "graph":
		fmt.Fprintln(w, "  sending        through Microsoft Graph (smtp_via = \"graph\")")
	}
}

// stamp is how status shows a time: local, to the second.
func stamp(t time.Time) string { return t.Local().Format(time.DateTime) }

// needsLoginText is the stored needs-login reason with its ", refused
// <RFC 3339 UTC>" ending in stamp's format, so that the page has one.
func needsLoginText(reason string) string {
	const mark = ", refused "
	i := strings.LastIndex(reason, mark)
	if i < 0 {
		return reason
	}
	t, err := time.Parse(time.RFC3339, reason[i+len(mark):])
	if err != nil {
		return reason
	}
	return reason[:i+len(mark)] + stamp(t)
}
