package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// runProxyPassword stores the password of the proxy user named in
// [network] proxy, or in the proxy EMAIL's account uses, in the token
// store, where the bridge reads it (bridge.ProxyStoreKey). The password is
// read from the terminal without echo, or as one line of standard input.
func runProxyPassword(ctx context.Context, e *env, args []string) error {
	fs := newFlags("proxy-password")
	forget := fs.Bool("forget", false, "delete the stored password instead")
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 1 || len(pos) == 1 && !strings.Contains(pos[0], "@") {
		return usagef("usage: bridge %s", usageLine("proxy-password"))
	}
	cfg, err := e.loadConfig()
	if err != nil {
		return err
	}
	setting, key := cfg.Network.Proxy, "[network] proxy"
	if len(pos) == 1 {
		accts, err := bridge.ResolveAccounts(cfg)
		if err != nil {
			return err
		}
		var acct *bridge.Account
		for _, a := range accts {
			if strings.EqualFold(a.Email, pos[0]) {
				acct = a
			}
		}
		if acct == nil {
			return usagef("no account %s in %s", pos[0], cfg.Path)
		}
		setting, key = acct.Proxy, "the proxy of "+acct.Email
	}
	u, err := proxyUser(setting, key, cfg.Path)
	if err != nil {
		return err
	}
	st, err := openStore(cfg, e.stderr)
	if err != nil {
		return err
	}
	who := fmt.Sprintf("proxy user %s at %s", u.User.Username(), u.Host)
	if *forget {
		if err := st.Delete(bridge.ProxyStoreKey(u)); err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "Forgot the password of %s.\n", who)
		tellServer(ctx, e, cfg.Path)
		return nil
	}
	pw, err := readSecret(e, "Password of "+who+": ")
	if err == nil {
		pw, err = nonEmpty(pw)
	}
	if err != nil {
		return err
	}
	err = tokens.Update(st, bridge.ProxyStoreKey(u), func(ent *tokens.Entry) error {
		ent.Password = pw
		return nil
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "Stored the password of %s in the %s store.\n", who, st.Name())
	tellServer(ctx, e, cfg.Path)
	return nil
}

// proxyUser parses a proxy setting that must name a user whose password
// is kept in the store.
func proxyUser(setting, key, path string) (*url.URL, error) {
	if setting == "" || setting == proxy.Direct {
		return nil, usagef("%s in %s names no proxy; set it to http://USER@HOST:PORT or socks5://USER@HOST:PORT first", key, path)
	}
	u, err := proxy.Parse(setting)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", errConfig, key, err)
	}
	if u.User == nil {
		return nil, usagef("%s (%s) names no user; write it as %s://USER@%s", key, setting, u.Scheme, u.Host)
	}
	if _, inline := u.User.Password(); inline {
		return nil, usagef("%s has its password written in %s, which is used as it is; "+
			"remove it there (keep %s://%s@%s) to use a stored one", key, path, u.Scheme, u.User.Username(), u.Host)
	}
	return u, nil
}

func nonEmpty(pw string) (string, error) {
	if pw == "" {
		return "", errors.New("no password given")
	}
	return pw, nil
}

// proxyPasswordWarnings are check-config's warnings for proxy settings
// with the password written in them: the config file is not the place
// for a secret.
func proxyPasswordWarnings(cfg *config.Config) []*config.Error {
	var out []*config.Error
	check := func(key, v, cmd string) {
		if v == "" || v == proxy.Direct {
			return
		}
		u, err := proxy.Parse(v)
		if err != nil || u.User == nil {
			return
		}
		if _, inline := u.User.Password(); inline {
			out = append(out, cfg.ErrorAt(key, fmt.Sprintf("the proxy password is written in the config; keep %s://%s@%s here and store the password with `%s`",
				u.Scheme, u.User.Username(), u.Host, cmd)))
		}
	}
	check("network.proxy", cfg.Network.Proxy, "bridge proxy-password")
	for i, a := range cfg.Accounts {
		check(fmt.Sprintf("account[%d].proxy", i), a.Proxy, "bridge proxy-password "+a.Email)
	}
	return out
}
