package main

import (
	"context"
	"fmt"

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
	if ac, _ := cfg.Account(email); ac == nil {
		return usagef("no account %s in %s (run `bridge login %s`)", email, cfg.Path, email)
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	// One store update, so that a server saving a rotated refresh token
	// meanwhile keeps it.
	var password string
	made := false
	err = tokens.Update(st, email, func(ent *tokens.Entry) error {
		if *reset || ent.Password == "" {
			p, err := tokens.NewPassword()
			if err != nil {
				return err
			}
			ent.Password, made = p, true
		}
		password = ent.Password
		return nil
	})
	if err != nil {
		return err
	}
	if made && !*reset {
		fmt.Fprintf(e.stderr, "no local password was stored for %s; made a new one\n", email)
	}
	fmt.Fprintln(e.stdout, password)
	if *reset {
		tellServer(ctx, e, cfg.Path)
	}
	return nil
}
