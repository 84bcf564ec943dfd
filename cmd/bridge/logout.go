package main

import (
	"context"
	"fmt"
)

func runLogout(ctx context.Context, e *env, args []string) error {
	pos, err := parseFlags(newFlags("logout"), args)
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
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	if err := st.Delete(email); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Forgot the tokens and local password of %s (the [[account]] block stays in %s).\n", email, cfg.Path)
	tellServer(ctx, e, cfg.Path)
	return nil
}
