package bridge

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"time"

	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// ProxyURL returns the proxy a's connections go through, or nil when they
// go direct (no proxy setting, or "direct").
func (a *Account) ProxyURL() *url.URL {
	if a.Proxy == "" || a.Proxy == proxy.Direct {
		return nil
	}
	// ResolveAccounts has checked the setting.
	u, _ := proxy.Parse(a.Proxy)
	return u
}

// ProxyStoreKey is the token store entry whose Password is the password of
// the user named in the proxy URL u: "proxy:USER@HOST:PORT". `bridge
// proxy-password` writes it.
func ProxyStoreKey(u *url.URL) string {
	return "proxy:" + u.User.Username() + "@" + u.Host
}

// ProxyDialer returns a dialer through a's proxy, or nil when a has none.
// When the setting names a user without a password, the password is read
// from st (ProxyStoreKey); a missing one is a *proxy.Error at
// proxy.StepAuth that says how to store it.
func ProxyDialer(a *Account, st tokens.Store) (*proxy.Dialer, error) {
	return proxyDialer(a, storePassword(st))
}

// storePassword reads a proxy password from st; "" when none is stored.
func storePassword(st tokens.Store) func(key string) (string, error) {
	return func(key string) (string, error) {
		if st == nil {
			return "", errors.New("the token store cannot be used")
		}
		e, err := st.Get(key)
		if errors.Is(err, tokens.ErrNotFound) {
			return "", nil
		}
		return e.Password, err
	}
}

// ProxyDial returns a dial function for a's connections outside a Bridge
// (`bridge login`, `bridge doctor`): through a's proxy, with its password
// read from st at each call, or directly. A proxy's failure is a
// *proxy.Error.
func ProxyDial(a *Account, st tokens.Store) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return dialVia(a, storePassword(st))
}

// dialVia returns the dial function for a's connections, with proxy
// passwords read through password.
func dialVia(a *Account, password func(key string) (string, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		d, err := proxyDialer(a, password)
		if err != nil {
			if pe := (*proxy.Error)(nil); errors.As(err, &pe) {
				pe.Target = addr
			}
			return nil, err
		}
		if d == nil {
			nd := net.Dialer{KeepAlive: keepAlive}
			return nd.DialContext(ctx, network, addr)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// proxyDialer is ProxyDialer reading passwords with password, which
// returns "" for none stored.
func proxyDialer(a *Account, password func(key string) (string, error)) (*proxy.Dialer, error) {
	u := a.ProxyURL()
	if u == nil {
		return nil, nil
	}
	if _, inline := u.User.Password(); u.User != nil && !inline {
		// A user named without a password: the password is a secret,
		// kept in the store rather than the config.
		user := u.User.Username()
		pw, err := password(ProxyStoreKey(u))
		if err == nil && pw == "" {
			err = fmt.Errorf("no password is stored for the proxy user %s: run `bridge proxy-password %s`", user, a.Email)
		} else if err != nil {
			err = fmt.Errorf("reading the password of the proxy user %s: %w", user, err)
		}
		if err != nil {
			return nil, &proxy.Error{Scheme: u.Scheme, Proxy: u.Host, Step: proxy.StepAuth, Err: err}
		}
		u.User = url.UserPassword(user, pw)
	}
	return &proxy.Dialer{URL: u, Forward: &net.Dialer{KeepAlive: keepAlive}}, nil
}

// dial opens a TCP connection to addr for a: through its proxy, or
// directly. A proxy's failure is a *proxy.Error.
func (b *Bridge) dial(ctx context.Context, a *Account, addr string) (net.Conn, error) {
	return dialVia(a, b.proxyPassword)(ctx, "tcp", addr)
}

// proxyPassword returns the stored proxy password under key, read from
// the store once and kept until the next reload; "" when none is stored,
// which is not kept, so that one stored meanwhile is found.
func (b *Bridge) proxyPassword(key string) (string, error) {
	b.mu.RLock()
	pw, ok := b.secrets[key]
	gen := b.secretsGen
	b.mu.RUnlock()
	if ok {
		return pw, nil
	}
	e, err := b.opts.Store.Get(key)
	if errors.Is(err, tokens.ErrNotFound) || err == nil && e.Password == "" {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	b.mu.Lock()
	if b.secretsGen == gen {
		b.secrets[key] = e.Password
	}
	b.mu.Unlock()
	return e.Password, nil
}

// TokenHTTPClient returns the client for a's token requests: base (nil
// means one with a 30 s timeout) with its transport dialing through dial
// when a has a proxy, and with no proxy at all when a's setting is
// "direct". Without a setting it is base itself, whose default transport
// follows HTTPS_PROXY, HTTP_PROXY and NO_PROXY (http.ProxyFromEnvironment).
// A base whose Transport is not an *http.Transport is returned as it is.
func TokenHTTPClient(base *http.Client, a *Account, dial func(ctx context.Context, network, addr string) (net.Conn, error)) *http.Client {
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	if a.Proxy == "" {
		return base
	}
	t, ok := base.Transport.(*http.Transport)
	if base.Transport == nil {
		t, ok = http.DefaultTransport.(*http.Transport), true
	}
	if !ok {
		return base
	}
	t = t.Clone()
	t.Proxy = nil
	if a.ProxyURL() != nil {
		t.DialContext = dial
	}
	c := *base
	c.Transport = t
	return &c
}

// tokenClient is TokenHTTPClient for the bridge's own token requests for
// a, through the proxy dialer every upstream connection uses.
func (b *Bridge) tokenClient(a *Account) *http.Client {
	return TokenHTTPClient(b.opts.HTTPClient, a, func(ctx context.Context, _, addr string) (net.Conn, error) {
		return b.dial(ctx, a, addr)
	})
}
