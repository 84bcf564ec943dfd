package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/control"
)

// controlEndpoint is the control socket of the server for cfgPath.
func controlEndpoint(e *env, cfgPath string) (control.Endpoint, error) {
	dir, err := control.DefaultDir(e.getenv)
	if err != nil {
		return control.Endpoint{}, err
	}
	return control.NewEndpoint(dir, cfgPath)
}

// askServer asks the running server for cfg, if any, for its state; nil
// when none runs. Other failures are worth a warning: a server may run that
// we cannot reach.
func askServer(ctx context.Context, e *env, cfg *config.Config) *control.Status {
	ep, err := controlEndpoint(e, cfg.Path)
	if err != nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	st, err := control.NewClient(ep).Status(ctx)
	if err != nil {
		if !errors.Is(err, control.ErrNotRunning) {
			fmt.Fprintf(e.stderr, "warning: cannot ask the running server: %v\n", err)
		}
		return nil
	}
	return st
}

// tellServer asks the running server for cfgPath, if any, to reload, so
// that a sign-in, a logout or a new password takes effect without a
// restart. It says what happened on e.stderr and never fails the command.
func tellServer(ctx context.Context, e *env, cfgPath string) {
	ep, err := controlEndpoint(e, cfgPath)
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	switch err := control.NewClient(ep).Reload(ctx); {
	case err == nil:
		fmt.Fprintln(e.stderr, "The running bridge server reloaded its accounts.")
	case !errors.Is(err, control.ErrNotRunning):
		fmt.Fprintf(e.stderr, "warning: could not tell the running server to reload (%v); send it SIGHUP or restart it\n", err)
	}
}
