package bridge

import (
	"context"
	"crypto/tls"
	"errors"
	"net"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/proxy"
	"github.com/mailbridge/bridge/tlsutil"
)

// keepAlive is the TCP keepalive period on both legs; it finds dead peers
// under long IDLEs without sending protocol bytes.
const keepAlive = 60 * time.Second

// UpstreamTLS returns the TLS settings for the upstream server at hostport
// (tlsutil.UpstreamConfig with the configured roots). The certificate is
// always verified; a hostport without a host is an error.
func (b *Bridge) UpstreamTLS(hostport string) (*tls.Config, error) {
	return tlsutil.UpstreamConfig(hostport, b.opts.UpstreamRoots)
}

// Server returns the upstream host:port of proto for a.
func (a *Account) Server(p Proto) string {
	switch p {
	case IMAP:
		return a.Provider.IMAP
	case POP3:
		return a.Provider.POP3
	}
	return a.Provider.SMTP
}

// SMTPImplicitTLS reports whether an SMTP server at hostport speaks TLS
// from the first byte: on port 465, which RFC 8314 section 3.3 gives to
// submission over implicit TLS (smtp.gmail.com:465). Any other port gets
// STARTTLS (RFC 3207), as smtp.office365.com:587 and smtp.gmail.com:587
// want. ResolveAccounts sets Provider.SMTPImplicitTLS by it unless the
// account's smtp_tls says otherwise.
func SMTPImplicitTLS(hostport string) bool {
	_, port, err := net.SplitHostPort(hostport)
	return err == nil && port == "465"
}

// DialUpstream connects to a's server for p, through a's proxy when it
// has one. IMAP, POP3 and SMTP with Provider.SMTPImplicitTLS get a
// handshaken *tls.Conn (implicit TLS); other SMTP servers get the plain TCP
// connection (or tunnel) for STARTTLS. TLS always ends at the mail server,
// whose name the certificate must hold. Failures are a *LoginError for a
// wrapping a *diag.Failure with Stage StageProxy (the proxy failed, a
// *proxy.Error), StageDial or StageTLS.
func (b *Bridge) DialUpstream(ctx context.Context, a *Account, p Proto) (net.Conn, error) {
	addr := a.Server(p)
	cfg, err := b.UpstreamTLS(addr)
	if err != nil {
		return nil, &LoginError{Account: a, Err: &diag.Failure{Proto: p, Stage: diag.StageTLS, Text: addr, Err: err}}
	}
	ctx, cancel := context.WithTimeout(ctx, b.opts.DialTimeout)
	defer cancel()
	c, err := b.dial(ctx, a, addr)
	if err != nil {
		stage := diag.StageDial
		if pe := (*proxy.Error)(nil); errors.As(err, &pe) {
			stage = diag.StageProxy
		}
		return nil, &LoginError{Account: a, Err: &diag.Failure{Proto: p, Stage: stage, Text: addr, Err: err}}
	}
	if p == SMTP && !a.Provider.SMTPImplicitTLS {
		return c, nil
	}
	tc := tlsutil.Client(c, cfg)
	if err := tc.HandshakeContext(ctx); err != nil {
		c.Close()
		return nil, &LoginError{Account: a, Err: &diag.Failure{Proto: p, Stage: diag.StageTLS, Text: addr, Err: err}}
	}
	return tc, nil
}
