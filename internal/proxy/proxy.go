// Package proxy opens TCP connections through a proxy: an HTTP proxy with
// CONNECT (RFC 9110 section 9.3.6) or a SOCKS5 proxy (RFC 1928, with the
// user name and password of RFC 1929). The connection it returns is a
// plain tunnel to the target; TLS, when wanted, runs over it end to end,
// so the proxy never sees the mail server's certificate or the bytes
// inside.
package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Direct is the proxy setting that asks for no proxy at all.
const Direct = "direct"

// Parse reads a proxy setting: "http://[user[:password]@]host:port" or
// "socks5://[user[:password]@]host:port". The port is required; nothing
// may follow it but a "/".
func Parse(raw string) (*url.URL, error) {
	shown := Redact(raw)
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil || u.Opaque != "" || u.Host == "" {
		return nil, fmt.Errorf("%q is not a proxy URL; want http://host:port or socks5://host:port", shown)
	}
	u.Scheme = strings.ToLower(u.Scheme)
	switch u.Scheme {
	case "http", "socks5":
	case "https":
		return nil, fmt.Errorf("%q: a proxy spoken to over TLS is not supported; want http://host:port (CONNECT) or socks5://host:port", shown)
	default:
		return nil, fmt.Errorf("%q: the scheme %q is not a proxy the bridge speaks; want http:// (CONNECT) or socks5://", shown, u.Scheme)
	}
	if (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("%q: a proxy URL ends after host:port", shown)
	}
	host, port, err := net.SplitHostPort(u.Host)
	if err != nil || host == "" {
		return nil, fmt.Errorf("%q: the proxy needs a host and a port, such as %s://proxy.example.com:%s", shown, u.Scheme, defaultPort(u.Scheme))
	}
	if n, err := strconv.ParseUint(port, 10, 16); err != nil || n == 0 {
		return nil, fmt.Errorf("%q: port %q is not a number from 1 to 65535", shown, port)
	}
	if u.User != nil && u.User.Username() == "" {
		return nil, fmt.Errorf("%q: the user name before @ is empty", shown)
	}
	u.Path = ""
	return u, nil
}

// Redact returns the proxy setting raw with its password, if any, replaced
// by "xxxxx", for messages; it works on text that is not a valid URL too.
func Redact(raw string) string {
	at := strings.LastIndexByte(raw, '@')
	if at < 0 {
		return raw
	}
	start := strings.Index(raw, "://")
	if start < 0 || start > at {
		start = 0
	} else {
		start += 3
	}
	user, _, hasPass := strings.Cut(raw[start:at], ":")
	if !hasPass {
		return raw
	}
	return raw[:start] + user + ":xxxxx" + raw[at:]
}

func defaultPort(scheme string) string {
	if scheme == "socks5" {
		return "1080"
	}
	return "3128"
}

// Dialer opens connections through one proxy.
type Dialer struct {
	// URL is the proxy, as Parse returns it: scheme "http" or "socks5",
	// host:port, and the user name and password to give it, if any.
	URL *url.URL
	// Forward connects to the proxy itself; nil uses a zero net.Dialer.
	Forward *net.Dialer
}

// DialContext connects to addr (host:port) through the proxy. network must
// be a TCP network. A failure is an *Error. ctx bounds the connection to
// the proxy and its answer, not the tunnel's later use.
func (d *Dialer) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	c, _, err := d.Tunnel(ctx, network, addr)
	return c, err
}

// Tunnel is DialContext that also returns the proxy's answer, for people:
// "HTTP/1.1 200 Connection established", or "SOCKS5 reply 0 (succeeded)".
func (d *Dialer) Tunnel(ctx context.Context, network, addr string) (net.Conn, string, error) {
	e := &Error{Scheme: d.URL.Scheme, Proxy: d.URL.Host, Target: addr}
	switch network {
	case "tcp", "tcp4", "tcp6":
	default:
		e.Step, e.Err = StepReach, fmt.Errorf("network %q is not TCP", network)
		return nil, "", e
	}
	fwd := d.Forward
	if fwd == nil {
		fwd = &net.Dialer{}
	}
	c, err := fwd.DialContext(ctx, "tcp", d.URL.Host)
	if err != nil {
		e.Step, e.Err = StepReach, err
		return nil, "", e
	}
	// The handshake runs under ctx: its deadline becomes the
	// connection's, and ctx ending interrupts a read or write.
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Unix(1, 0)) })
	var tc net.Conn
	var answer string
	if d.URL.Scheme == "socks5" {
		tc, answer, err = d.socks5(c, addr, e)
	} else {
		tc, answer, err = d.connect(c, addr, e)
	}
	if !stop() && err == nil {
		err = ctx.Err()
	}
	if err != nil {
		c.Close()
		if err != error(e) {
			// No answer of the proxy's own: it is not reachable as a
			// proxy, whatever the TCP connection did.
			e.Step, e.Err = StepReach, err
		}
		return nil, "", e
	}
	c.SetDeadline(time.Time{})
	return tc, answer, nil
}

// Step says where a proxy failed.
type Step int

// The steps of a connection through a proxy.
const (
	// StepReach: the proxy could not be reached, or did not answer as a
	// proxy of its kind (a time-out, a closed connection, bytes that are
	// not its protocol).
	StepReach Step = iota + 1
	// StepAuth: the proxy wants credentials, or other ones (HTTP 407 or 401, no
	// acceptable SOCKS5 method, a refused RFC 1929 user name and
	// password).
	StepAuth
	// StepConnect: the proxy refused to open the tunnel (an HTTP status
	// other than 2xx and 407, a SOCKS5 reply other than "succeeded").
	StepConnect
)

// Error is a connection through a proxy that failed. It never holds the
// proxy's password.
type Error struct {
	// Scheme is "http" or "socks5".
	Scheme string
	// Proxy is the proxy's host:port.
	Proxy string
	// Target is the host:port the tunnel was asked for.
	Target string
	// Step says where it failed.
	Step Step
	// Status is an HTTP proxy's status line without the protocol
	// ("403 Forbidden"), when it answered.
	Status string
	// StatusCode is the number in Status; 0 without an answer.
	StatusCode int
	// Reply is a SOCKS5 proxy's reply code (RFC 1928 section 6) when it
	// refused the CONNECT request; 0 otherwise.
	Reply byte
	// Err is the transport or protocol failure, when there is one.
	Err error
}

func (e *Error) Error() string {
	kind := "HTTP"
	if e.Scheme == "socks5" {
		kind = "SOCKS5"
	}
	p := fmt.Sprintf("proxy: the %s proxy %s", kind, e.Proxy)
	switch {
	case e.Step == StepReach && e.Err != nil:
		return fmt.Sprintf("%s, asked for %s: %v", p, e.Target, e.Err)
	case e.Status != "":
		return fmt.Sprintf("%s answered CONNECT %s with %s", p, e.Target, e.Status)
	case e.Reply != 0:
		return fmt.Sprintf("%s refused to connect to %s: reply %d (%s)", p, e.Target, e.Reply, ReplyMeaning(e.Reply))
	case e.Err != nil:
		return fmt.Sprintf("%s, asked for %s: %v", p, e.Target, e.Err)
	}
	return p + " failed"
}

func (e *Error) Unwrap() error { return e.Err }

// errMalformed marks an answer that is not the proxy's protocol.
var errMalformed = errors.New("the answer is not the proxy protocol; check the scheme (http:// or socks5://) and the port")
