package main

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
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
	warnings, err := checkConfig(cfg)
	if err != nil {
		return err
	}
	for _, w := range warnings {
		fmt.Fprintln(e.stderr, warningText(w))
	}
	summary := plural(len(cfg.Accounts), "account")
	if len(warnings) > 0 {
		summary += ", " + plural(len(warnings), "warning")
	}
	fmt.Fprintf(e.stdout, "%s: ok (%s)\n", cfg.Path, summary)
	return nil
}

// checkConfig makes every check of cfg that `bridge serve` makes before it
// binds a port, and changes nothing: the file exists, the accounts
// resolve, the upstream CA file holds certificates, and the local
// certificate and key load (or are both absent, for serve to generate).
// Problems come back as *config.Error values, joined (exit code 2).
// Warnings name what serve starts with but cannot work as set up.
func checkConfig(cfg *config.Config) (warnings []*config.Error, err error) {
	if cfg.Path != "" {
		if _, err := os.Stat(cfg.Path); errors.Is(err, fs.ErrNotExist) {
			return nil, &config.Error{File: cfg.Path, Msg: "no such file; `bridge login EMAIL` creates it (or give another with `bridge --config FILE COMMAND`)"}
		}
	}
	var errs []error
	if _, err := bridge.ResolveAccounts(cfg); err != nil {
		errs = append(errs, err)
	}
	if _, err := upstreamRoots(cfg); err != nil {
		errs = append(errs, err)
	}
	_, info, found, err := tlsutil.LoadLocal(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	switch {
	case err != nil:
		errs = append(errs, fileError(cfg, "tls.cert_file", err))
	case !found && cfg.TLS.CertFile != "":
		warnings = append(warnings, cfg.ErrorAt("tls.cert_file", fmt.Sprintf("%s and %s do not exist yet; `bridge serve` generates a new certificate there", info.CertFile, info.KeyFile)))
	}
	for i, a := range cfg.Accounts {
		if a.ClientID == "" && a.TokenFrom == "" {
			warnings = append(warnings, cfg.ErrorAt(fmt.Sprintf("account[%d].client_id", i),
				fmt.Sprintf("missing, so %s cannot sign in; `bridge login %s --client-id ID` sets it", a.Email, a.Email)))
		}
	}
	warnings = append(warnings, proxyPasswordWarnings(cfg)...)
	return warnings, errors.Join(errs...)
}

// upstreamRoots loads [tls] upstream_ca_file, if set, over the system roots.
func upstreamRoots(cfg *config.Config) (roots *x509.CertPool, err error) {
	roots, err = tlsutil.UpstreamRoots(cfg.TLS.UpstreamCAFile)
	if err != nil {
		return nil, fileError(cfg, "tls.upstream_ca_file", err)
	}
	return roots, nil
}

// fileError is a failure to use a file the config names, as a problem of
// the config at key.
func fileError(cfg *config.Config, key string, err error) *config.Error {
	return cfg.ErrorAt(key, strings.TrimPrefix(err.Error(), "tlsutil: "))
}

// warningText words a config warning for the terminal.
func warningText(w *config.Error) string {
	return "warning: " + strings.TrimPrefix(w.Error(), "bridge: ")
}

// plural is n and noun, with an s unless n is 1: "1 account", "2 accounts".
func plural(n int, noun string) string {
	if n == 1 {
		return "1 " + noun
	}
	return fmt.Sprintf("%d %ss", n, noun)
}
