package main

import (
	"context"
	"fmt"

	"github.com/mailbridge/bridge/tlsutil"
)

func runCert(ctx context.Context, e *env, args []string) error {
	if pos, err := parseFlags(newFlags("cert"), args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge cert")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	certFile, keyFile := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if certFile == "" && keyFile == "" {
		if certFile, keyFile, err = tlsutil.DefaultPaths(); err != nil {
			return err
		}
	}
	_, info, err := tlsutil.LoadOrCreate(certFile, keyFile)
	if err != nil {
		return err
	}
	if info.Generated {
		fmt.Fprintln(e.stdout, "Generated a new local certificate.")
	}
	fmt.Fprintf(e.stdout, "certificate  %s\nkey          %s\nSHA-256      %s\nexpires      %s\n\n%s",
		info.CertFile, info.KeyFile, info.SHA256, info.NotAfter.Format("2006-01-02"), tlsutil.TrustHint(info.CertFile))
	return nil
}
