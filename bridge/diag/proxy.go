package diag

import (
	"errors"

	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tokens"
)

// Conditions of a failed proxy (a *proxy.Error anywhere in the error).
const (
	// CondProxyUnreachable: the proxy could not be reached, or did not
	// answer as a proxy of its kind.
	CondProxyUnreachable = "proxy-unreachable"
	// CondProxyAuth: the proxy wants credentials, or other ones (HTTP 407,
	// a SOCKS5 authentication refusal), or none are stored.
	CondProxyAuth = "proxy-auth"
	// CondProxyRefused: an HTTP proxy refused the tunnel (403, 502, ...).
	CondProxyRefused = "proxy-refused"
	// CondSOCKSRefused: a SOCKS5 proxy refused the connection with a
	// reply code (RFC 1928 section 6).
	CondSOCKSRefused = "socks-refused"
)

// fromProxy reads a failure of the proxy in front of an upstream or of
// the token endpoint. The proxy's story is the one to tell: the mail
// server or the identity platform never saw the request. {host} stays
// the server the tunnel was for; {proxy} is the proxy.
func fromProxy(pe *proxy.Error, err error) evidence {
	ev := evidence{stage: StageProxy, text: pe.Error(), raw: pe.Error(), proxy: pe.Proxy, host: pe.Target}
	switch {
	case pe.Step == proxy.StepAuth:
		ev.cond = CondProxyAuth
	case pe.Step == proxy.StepConnect && pe.Scheme == "socks5":
		ev.cond = CondSOCKSRefused
	case pe.Step == proxy.StepConnect:
		ev.cond = CondProxyRefused
	default:
		ev.cond = CondProxyUnreachable
	}
	var f *Failure
	var te *tokens.Error
	switch {
	case errors.As(err, &te):
		ev.proto, ev.account = ProtoToken, te.Account
	case errors.As(err, &f):
		ev.proto = normProto(f.Proto)
		if ev.host == "" {
			ev.host = f.Text
		}
	}
	return ev
}
