package doctor

import (
	"context"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/proxy"
)

// hop is the proxy an account's connections go through, as the probes
// use it.
type hop struct {
	dialer *proxy.Dialer
	// down says why the proxy cannot be used (the proxy step failed);
	// "" when it can.
	down string
}

// checkProxy checks the first hop of an account with a proxy: the setting
// has its password (inline or in the store) and the proxy accepts a TCP
// connection. The probes then ask it for their tunnels. It returns nil
// and no step for an account without a proxy.
func checkProxy(ctx context.Context, o Options, a *bridge.Account) (*hop, []Step) {
	u := a.ProxyURL()
	if u == nil {
		return nil, nil
	}
	h := &hop{}
	st := timed("proxy", "Proxy reachable", func() Step {
		d, err := bridge.ProxyDialer(a, o.Store)
		if err != nil {
			h.down = "the proxy cannot be used (see the proxy step)"
			return fail(fromDiag(diag.Classify(err, a.Diag(), o.Now())), "%v", err)
		}
		h.dialer = d
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		start := time.Now()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", u.Host)
		if err != nil {
			h.down = "the proxy is not reachable (see the proxy step)"
			pe := &proxy.Error{Scheme: u.Scheme, Proxy: u.Host, Step: proxy.StepReach, Err: err}
			return fail(fromDiag(diag.Classify(pe, a.Diag(), o.Now())), "cannot connect to the %s after %s: %v", proxyName(u.Scheme, u.Host), since(start), err)
		}
		c.Close()
		return pass("%s (%s): TCP connection to %s in %s", proxyName(u.Scheme, u.Host), credentials(a), c.RemoteAddr(), since(start))
	})
	return h, []Step{st}
}

// credentials says what the account gives the proxy, never the password.
func credentials(a *bridge.Account) string {
	u := a.ProxyURL()
	if u.User == nil {
		return "no user name"
	}
	if _, inline := u.User.Password(); inline {
		return "user " + u.User.Username() + ", password in the config"
	}
	return "user " + u.User.Username() + ", password from the token store"
}

// proxyName is "the HTTP proxy host:port" or "the SOCKS5 proxy host:port".
func proxyName(scheme, hostport string) string {
	kind := "HTTP"
	if scheme == "socks5" {
		kind = "SOCKS5"
	}
	return fmt.Sprintf("the %s proxy %s", kind, hostport)
}

// tunnel is reach through the proxy: it asks the proxy for a tunnel to
// the server (CONNECT, or the SOCKS5 request) and shows its answer. The
// proxy resolves the server's name; TLS then runs inside the tunnel.
func (p *probe) tunnel(ctx context.Context) (net.Conn, Step) {
	name, title := string(p.proto)+"-reach", p.label+" server reachable through the proxy"
	if p.hop.down != "" {
		return nil, skip(name, title, p.hop.down)
	}
	var conn net.Conn
	st := timed(name, title, func() Step {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		start := time.Now()
		u := p.hop.dialer.URL
		c, answer, err := p.hop.dialer.Tunnel(ctx, "tcp", p.addr)
		if err != nil {
			return fail(p.classify(diag.StageProxy, err), "%s", strings.TrimPrefix(err.Error(), "proxy: "))
		}
		conn = c
		return pass("%s opened a tunnel to %s in %s: %q", proxyName(u.Scheme, u.Host), p.addr, since(start), answer)
	})
	return conn, st
}
