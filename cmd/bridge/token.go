package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens"
)

// tokenDoc is `bridge token --json`.
type tokenDoc struct {
	Account string    `json:"account"`
	Token   string    `json:"token"`
	Expiry  time.Time `json:"expiry"`
	// User is the XOAUTH2 user= the bridge itself sends for IMAP and POP3.
	User string `json:"user"`
}

// runToken is `bridge token EMAIL [--xoauth2] [--json]`: a fresh access
// token of the account on stdout, alone on one line, for mail clients
// that speak XOAUTH2 themselves (msmtp, mutt, isync, curl). With a server
// running for the same config, the server hands out its own token (one
// refresher per account, so a rotating refresh token is never used
// twice); otherwise this process refreshes, under the store's lock. The
// token goes to stdout only, never to a log or an error.
func runToken(ctx context.Context, e *env, args []string) error {
	fs := newFlags("token")
	asXOAUTH2 := fs.Bool("xoauth2", false, "print the base64 SASL XOAUTH2 initial response (user= the mailbox) instead of the token")
	asJSON := fs.Bool("json", false, "print JSON: account, token, expiry and the XOAUTH2 user")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	email, err := oneEmail("token", pos)
	if err != nil {
		return err
	}
	if *asXOAUTH2 && *asJSON {
		return usagef("bridge token: --xoauth2 and --json do not go together")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		return err
	}
	var acct, owner *bridge.Account
	for _, a := range accts {
		if a.Email == email {
			acct = a
		}
	}
	if acct == nil {
		return fmt.Errorf("%w: %s is not an account in %s (add it with `bridge login %s`)", errConfig, email, cfg.Path, email)
	}
	for _, a := range accts {
		if a.Email == acct.TokenAccount() {
			owner = a
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	tok, err := serverAccessToken(ctx, e, cfg.Path, email)
	if errors.Is(err, control.ErrNotRunning) || errors.Is(err, bridge.ErrNoAccount) {
		tok, err = localAccessToken(ctx, e, cfg, owner)
	}
	if err != nil {
		return tokenError(acct, err)
	}
	user := acct.UpstreamUser(bridge.IMAP)
	switch {
	case *asJSON:
		enc := json.NewEncoder(e.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(tokenDoc{Account: email, Token: tok.AccessToken, Expiry: tok.Expiry, User: user})
	case *asXOAUTH2:
		_, err = fmt.Fprintf(e.stdout, "%s\n", xoauth2.Encoded(user, tok.AccessToken))
	default:
		_, err = fmt.Fprintln(e.stdout, tok.AccessToken)
	}
	return err
}

// serverAccessToken asks the server running for the config at cfgPath for
// the account's token. A server that is not running, or does not know
// the account (its config is older), gives an error wrapping
// control.ErrNotRunning or bridge.ErrNoAccount.
func serverAccessToken(ctx context.Context, e *env, cfgPath, email string) (*oauth2.Token, error) {
	ep, err := controlEndpoint(e, cfgPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", control.ErrNotRunning, err)
	}
	t, err := control.NewClient(ep).Token(ctx, email)
	if err != nil {
		return nil, err
	}
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: t.Expiry}, nil
}

// localAccessToken gets a token in this process, from the account whose
// tokens owner's are: a refresh (its rotated refresh token saved under the
// store's lock), or an app-only account's client credentials request.
func localAccessToken(ctx context.Context, e *env, cfg *config.Config, owner *bridge.Account) (*oauth2.Token, error) {
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return nil, err
	}
	so := owner.SourceOptions()
	so.Store = st
	src := tokens.NewSource(so)
	defer src.Flush()
	return src.Token(ctx)
}

// tokenError words a failure to get a token with its diagnosis: the
// person (or the script's log) reading stderr learns what to do.
func tokenError(a *bridge.Account, err error) error {
	var te *tokens.Error
	if !errors.Is(err, tokens.ErrNeedsLogin) && !errors.As(err, &te) {
		return err
	}
	d := diag.Classify(err, a.Diag(), time.Now())
	return fmt.Errorf("bridge token: no token for %s: %s\n  Fix: %s\n  Raw: %s", a.Email, d.Title,
		strings.ReplaceAll(d.Fix, "\n", "\n       "), d.Raw)
}
