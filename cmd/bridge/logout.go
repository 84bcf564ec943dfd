package main

import (
	"context"
	"fmt"

	"github.com/mailbridge/bridge/bridge/config"
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
	if *remove {
		if ac, _ := cfg.Account(email); ac == nil {
			return usagef("no account %s in %s", email, cfg.Path)
		}
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
