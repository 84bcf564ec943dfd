package main

import (
	"context"
	"errors"
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
	ent, err := st.Get(email)
	if err != nil && !errors.Is(err, tokens.ErrNotFound) {
		return err
	}
	if *reset || ent.Password == "" {
		if ent.Password, err = tokens.NewPassword(); err != nil {
			return err
		}
		if err := st.Put(email, ent); err != nil {
			return err
		}
		if !*reset {
			fmt.Fprintf(e.stderr, "no local password was stored for %s; made a new one\n", email)
		}
	}
	fmt.Fprintln(e.stdout, ent.Password)
	if *reset {
		tellServer(ctx, e, cfg.Path)
	}
	return nil
}
