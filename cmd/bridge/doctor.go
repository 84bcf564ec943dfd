package main

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/doctor"
)

// runDoctor runs `bridge doctor [EMAIL] [--json]`: every check of package
// doctor, printed for a person or as JSON. Exit 0 when all pass, 1 when a
// check fails, 2 when the config itself is broken.
func runDoctor(ctx context.Context, e *env, args []string) error {
	fs := newFlags("doctor")
	asJSON := fs.Bool("json", false, "print JSON")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || (len(pos) == 1 && !strings.Contains(pos[0], "@")) {
		return usagef("usage: bridge doctor [EMAIL] [--json]")
	}
	var o doctor.Options
	if len(pos) == 1 {
		o.Account = strings.ToLower(pos[0])
	}
	o.ConfigPath, _ = e.configFile()
	cfg, cfgErr := e.loadConfig()
	if cfgErr != nil {
		o.ConfigErr = cfgErr
	} else {
		o.Config = cfg
		if st := liveStatus(ctx, e, cfg); st != nil {
			o.Served, o.Live = st.Bound, &st.Status
			o.Token = serverToken(e, cfg)
		}
	}
	rep := doctor.Run(ctx, o)
	if *asJSON {
		err = rep.WriteJSON(e.stdout)
	} else {
		err = rep.WriteText(e.stdout)
	}
	switch {
	case err != nil:
		return err
	case cfgErr != nil:
		return &exitError{2}
	case !rep.OK():
		return &exitError{1}
	}
	return nil
}

// serverToken takes access tokens from the running server for cfg, over
// its control socket. When the server has stopped meanwhile, or does not
// know the account, doctor refreshes itself.
func serverToken(e *env, cfg *config.Config) func(context.Context, string) (*oauth2.Token, error) {
	return func(ctx context.Context, email string) (*oauth2.Token, error) {
		ep, err := controlEndpoint(e, cfg.Path)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", doctor.ErrRefreshHere, err)
		}
		t, err := control.NewClient(ep).Token(ctx, email)
		if errors.Is(err, control.ErrNotRunning) || errors.Is(err, bridge.ErrNoAccount) {
			return nil, fmt.Errorf("%w: %w", doctor.ErrRefreshHere, err)
		}
		if err != nil {
			return nil, err
		}
		return &oauth2.Token{AccessToken: t.AccessToken, TokenType: "Bearer", Expiry: t.Expiry}, nil
	}
}
