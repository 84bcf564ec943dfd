package main

import (
	"context"
	"fmt"

	"github.com/mailbridge/bridge/bridge"
)

func runCheckConfig(ctx context.Context, e *env, args []string) error {
	if pos, err := parseFlags(newFlags("check-config"), args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge check-config")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	if _, err := bridge.ResolveAccounts(cfg); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "%s: ok (%d accounts)\n", cfg.Path, len(cfg.Accounts))
	return nil
}
