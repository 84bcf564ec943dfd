package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/tokens"
)

// statusDoc is `bridge status --json`. FormatVersion changes only when a
// field changes meaning or goes away.
type statusDoc struct {
	FormatVersion int             `json:"format_version"`
	Config        string          `json:"config"`
	Store         string          `json:"store"`
	Server        *bridge.Status  `json:"server,omitempty"`
	Accounts      []accountStatus `json:"accounts"`
}

type accountStatus struct {
	Email        string    `json:"email"`
	Mailbox      string    `json:"mailbox,omitempty"`
	TokenFrom    string    `json:"token_from,omitempty"`
	SignedIn     bool      `json:"signed_in"`
	HasPassword  bool      `json:"has_password"`
	TokenUpdated time.Time `json:"token_updated,omitzero"`
	NeedsLogin   string    `json:"needs_login,omitempty"`
	AccessExpiry time.Time `json:"access_token_expiry,omitzero"`
	StoreError   string    `json:"store_error,omitempty"`
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
	doc.Server = liveStatus(ctx, cfg)
	for _, ac := range cfg.Accounts {
		as := accountStatus{Email: ac.Email, Mailbox: ac.Mailbox, TokenFrom: ac.TokenFrom}
		ent, err := st.Get(ac.Email)
		switch {
		case errors.Is(err, tokens.ErrNotFound):
		case err != nil:
			as.StoreError = err.Error()
		default:
			as.HasPassword = ent.Password != ""
			as.SignedIn = ent.RefreshToken != "" && ent.NeedsLogin == ""
			as.TokenUpdated, as.NeedsLogin = ent.Updated, ent.NeedsLogin
		}
		if doc.Server != nil {
			for _, ls := range doc.Server.Accounts {
				if ls.Email == as.Email {
					as.AccessExpiry = ls.Token.AccessExpiry
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
	printStatus(e.stdout, doc)
	return nil
}

// liveStatus asks a running server, if any, for its state; nil when none
// runs. Set by the control socket client.
var liveStatus = func(ctx context.Context, cfg *bridge.Config) *bridge.Status { return nil }

func printStatus(w io.Writer, doc statusDoc) {
	fmt.Fprintf(w, "config  %s\nstore   %s\n", doc.Config, doc.Store)
	if doc.Server != nil {
		fmt.Fprintf(w, "server  running; sessions imap %d, pop3 %d, smtp %d\n",
			doc.Server.Sessions[bridge.IMAP], doc.Server.Sessions[bridge.POP3], doc.Server.Sessions[bridge.SMTP])
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
		case a.NeedsLogin != "":
			fmt.Fprintf(w, "  token          NEEDS SIGN-IN: %s\n                 run `bridge login %s`\n", a.NeedsLogin, a.Email)
		case a.SignedIn:
			fmt.Fprintf(w, "  token          signed in; refresh token saved %s\n", a.TokenUpdated.Local().Format(time.DateTime))
		default:
			fmt.Fprintf(w, "  token          not signed in; run `bridge login %s`\n", a.Email)
		}
		if !a.AccessExpiry.IsZero() {
			fmt.Fprintf(w, "  access token   expires %s\n", a.AccessExpiry.Local().Format(time.DateTime))
		}
		if !a.HasPassword && a.StoreError == "" {
			fmt.Fprintf(w, "  local password none; run `bridge password %s`\n", a.Email)
		}
	}
}
