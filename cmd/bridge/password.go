package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

func runPassword(ctx context.Context, e *env, args []string) error {
	fs := newFlags("password")
	reset := fs.Bool("reset", false, "make a new local password")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	email, err := oneEmail("password", pos)
	if err != nil {
		return err
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	ac, _ := cfg.Account(email)
	if ac == nil {
		return usagef("no account %s in %s (run `bridge login %s`)", email, cfg.Path, email)
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	ent, err := st.Get(email)
	if err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return err
	}
	notSignedIn, err := missingSignIn(st, ac, ent)
	if err != nil {
		return err
	}
	// A password is made when asked for (--reset), or when none is stored
	// for an account that can sign in upstream (a shared mailbox's account
	// added by hand). An account that cannot is sent to `bridge login`,
	// which signs it in and prints its password, rather than given a
	// password that does not work yet.
	if ent.Password == "" && !*reset && notSignedIn != "" {
		return errors.New(notSignedIn + " (`bridge password " + email + " --reset` makes a password without signing in)")
	}
	// One store update, so that a server saving a rotated refresh token
	// meanwhile keeps it.
	var password string
	made := false
	err = tokens.Update(st, email, func(ent *tokens.Entry) error {
		if *reset {
			ent.Password = ""
		}
		made = ent.Password == ""
		var err error
		password, err = ensurePassword(ent)
		return err
	})
	if err != nil {
		return err
	}
	switch {
	case *reset && notSignedIn != "":
		fmt.Fprintf(e.stderr, "made a new local password; mail clients get in with it once signed in: %s\n", notSignedIn)
	case made && !*reset:
		fmt.Fprintf(e.stderr, "no local password was stored for %s; made one\n", email)
	}
	fmt.Fprintln(e.stdout, password)
	if made {
		tellServer(ctx, e, cfg.Path)
	}
	return nil
}

// missingSignIn says which sign-in account ac lacks, or "" when it has
// one: its own refresh token (in ent), an app-only account's secret or
// certificate, or, with token_from, the one it borrows.
func missingSignIn(st tokens.Store, ac *config.Account, ent tokens.Entry) (string, error) {
	email, from := strings.ToLower(ac.Email), strings.ToLower(ac.TokenFrom)
	if ac.IsApp() {
		if ent.AppCredential != "" {
			return "", nil
		}
		return fmt.Sprintf("%s has no app secret or certificate stored: `bridge login %s --app` stores one and prints its local password", email, email), nil
	}
	if from == "" {
		if ent.RefreshToken != "" {
			return "", nil
		}
		return fmt.Sprintf("%s is not signed in: `bridge login %s` signs it in and prints its local password", email, email), nil
	}
	d, err := st.Get(from)
	if err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return "", err
	}
	if d.RefreshToken != "" {
		return "", nil
	}
	return fmt.Sprintf("%s uses the sign-in of %s, which is not signed in: run `bridge login %s` first", email, from, from), nil
}
