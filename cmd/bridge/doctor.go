package main

import (
	"context"
	"strings"

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
