package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

func runServe(ctx context.Context, e *env, args []string) error {
	fs := newFlags("serve")
	grace := fs.Duration("grace", 10*time.Second, "how long live sessions may take to end at shutdown")
	if pos, err := parseFlags(fs, args); err != nil {
		return err
	} else if len(pos) != 0 {
		return usagef("usage: bridge serve [--grace 10s]")
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	warnings, err := checkConfig(cfg)
	if err != nil {
		return err
	}
	// A LevelVar, so that a reload applies [log] level.
	level := new(slog.LevelVar)
	level.Set(cfg.Log.SlogLevel())
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: level}))
	logWarnings(log, warnings)
	// The control socket's lock comes first: a second server for the same
	// config must say who runs, not fail on a busy port.
	ep, err := controlEndpoint(e, cfg.Path)
	if err != nil {
		return err
	}
	ctl, err := control.Listen(ep)
	if err != nil {
		return err
	}
	defer ctl.Close()
	notifier := bridge.NewNotifier(bridge.NotifyOptions{Command: cfg.Notify.Command, Logger: log})
	defer notifier.Close()
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	// Find out now, not at the first login, that the keyring does not
	// answer (the error names the file backend as the way out), or that an
	// encrypted token file lacks its passphrase (the error names
	// BRIDGE_STORE_PASSPHRASE).
	if p, ok := st.(interface{ Ping() error }); ok {
		if err := p.Ping(); err != nil {
			return err
		}
	}
	if c, ok := st.(interface{ Check() error }); ok {
		if err := c.Check(); err != nil {
			return err
		}
	}
	srv, err := newServer(cfg, st, log, func(ev bridge.Event) {
		ctl.Publish(ev)
		notifier.Notify(ev)
	})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	var reloadMu sync.Mutex
	reloadNow := func() error {
		reloadMu.Lock()
		defer reloadMu.Unlock()
		cfg, err := reload(e, srv, log, level)
		if err == nil {
			notifier.SetCommand(cfg.Notify.Command)
		}
		return err
	}
	served := make(chan error, 1)
	go func() { served <- ctl.Serve(control.Options{Server: srv, Reload: reloadNow, Logger: log}) }()
	defer func() {
		ctl.Close()
		if err := <-served; err != nil {
			log.Error("control socket failed", "err", err)
		}
	}()
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				reloadNow()
			}
		}
	}()
	log.Info("bridge serving", "config", cfg.Path, "accounts", len(cfg.Accounts))
	ran := make(chan struct{})
	go hurryOnSecondSignal(ctx, ran, srv, log)
	err = srv.Run(ctx, *grace)
	close(ran)
	srv.Bridge().Flush()
	log.Info("bridge stopped")
	return err
}

// hurryOnSecondSignal waits, once the first SIGINT or SIGTERM has started
// the stop (ctx), for another one, which closes every session at once
// instead of waiting out the grace period. It returns when ran is closed.
func hurryOnSecondSignal(ctx context.Context, ran <-chan struct{}, srv *bridge.Server, log *slog.Logger) {
	select {
	case <-ctx.Done():
	case <-ran:
		return
	}
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	select {
	case <-again:
		log.Warn("second signal: closing every session now")
		srv.Hurry()
	case <-ran:
	}
}

// newServer builds the bridge and its listeners from cfg, with the token
// store st; `bridge serve` and `bridge demo` both start through it.
func newServer(cfg *config.Config, st tokens.Store, log *slog.Logger, onEvent func(bridge.Event)) (*bridge.Server, error) {
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		return nil, err
	}
	roots, err := upstreamRoots(cfg)
	if err != nil {
		return nil, err
	}
	local, err := localTLS(cfg)
	if err != nil {
		return nil, err
	}
	b, err := bridge.New(bridge.Options{Accounts: accts, Store: st, UpstreamRoots: roots, Logger: log, OnEvent: onEvent})
	if err != nil {
		return nil, err
	}
	return bridge.NewServer(cfg, b, local), nil
}

// localTLS loads (or makes, on first use) the local certificate.
func localTLS(cfg *config.Config) (*tls.Config, error) {
	certFile, keyFile := cfg.TLS.CertFile, cfg.TLS.KeyFile
	if certFile == "" && keyFile == "" {
		var err error
		if certFile, keyFile, err = tlsutil.DefaultPaths(); err != nil {
			return nil, err
		}
	}
	cert, _, err := tlsutil.LoadOrCreate(certFile, keyFile)
	if err != nil {
		return nil, err
	}
	return tlsutil.ServerConfig(cert, cfg.TLS.LocalMin()), nil
}

// reload re-reads the config (SIGHUP, or POST /reload on the control
// socket) and applies its accounts, [log] level and trace; a config that
// `bridge serve` would refuse keeps the old one, and the log says why.
func reload(e *env, srv *bridge.Server, log *slog.Logger, level *slog.LevelVar) (*config.Config, error) {
	cfg, err := e.loadConfig()
	var warnings []*config.Error
	if err == nil {
		warnings, err = checkConfig(cfg)
	}
	if err == nil {
		err = srv.Reload(cfg)
	}
	if err != nil {
		log.Error("config reload failed; keeping the previous config", "err", err)
		return nil, err
	}
	level.Set(cfg.Log.SlogLevel())
	logWarnings(log, warnings)
	log.Info("config reloaded", "accounts", len(cfg.Accounts), "log_level", level.Level(), "trace", cfg.Log.Trace)
	return cfg, nil
}

// logWarnings logs what checkConfig warned about.
func logWarnings(log *slog.Logger, warnings []*config.Error) {
	for _, w := range warnings {
		log.Warn("config: "+w.Msg, "file", w.File, "line", w.Line, "key", w.Key)
	}
}
