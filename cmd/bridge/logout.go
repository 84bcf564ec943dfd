package main

import (
	"context"
	"fmt"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tokens"
)

func runLogout(ctx context.Context, e *env, args []string) error {
	fs := newFlags("logout")
	remove := fs.Bool("remove", false, "also remove the account's [[account]] block from the config")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	email, err := oneEmail("logout", pos)
	if err != nil {
		return err
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if ac, _ := cfg.Account(email); ac == nil {
		return forgetLeftover(e, cfg, email, *remove)
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	// The block goes first: a removal the config refuses (another account
	// borrows this one's tokens) leaves the tokens in place too.
	if *remove {
		if err := config.RemoveAccount(cfg.Path, email); err != nil {
			return err
		}
	}
	if err := st.Delete(email); err != nil {
		return err
	}
	if *remove {
		fmt.Fprintf(e.stdout, "Forgot the tokens and local password of %s and removed its [[account]] block from %s.\n", email, cfg.Path)
	} else {
		fmt.Fprintf(e.stdout, "Forgot the tokens and local password of %s (the [[account]] block stays in %s; --remove deletes it).\n", email, cfg.Path)
	}
	tellServer(ctx, e, cfg.Path)
	return nil
}

// forgetLeftover handles `logout` of an email that has no [[account]]
// block: tokens left behind by a block removed by hand are forgotten all
// the same, but a name with nothing to forget is a mistake (exit 2).
func forgetLeftover(e *env, cfg *config.Config, email string, remove bool) error {
	missing := usagef("no account %s in %s", email, cfg.Path)
	if remove {
		return missing
	}
	st, err := tokens.OpenStore(cfg.Store.Backend, cfg.Store.Path)
	if err != nil {
		return missing
	}
	if _, err := st.Get(email); err != nil {
		return missing
	}
	if err := st.Delete(email); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s is not in %s; forgot the tokens and local password still stored for it.\n", email, cfg.Path)
	return nil
}
