package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tlsutil"
)

// maxShownIPs bounds the addresses a name resolution step lists.
const maxShownIPs = 4

// reach resolves the host of addr (unless it is an address already) and
// opens a TCP connection, timing both; through a proxy, the proxy does both
// (tunnel). The connection is nil when the step failed.
func (p *probe) reach(ctx context.Context) (net.Conn, Step) {
	if p.hop != nil {
		return p.tunnel(ctx)
	}
	var conn net.Conn
	st := timed(string(p.proto)+"-reach", p.label+" server reachable", func() Step {
		host, port, err := net.SplitHostPort(p.addr)
		if err != nil {
			return fail(keyProblem(p.key(), err.Error(), "Write the server as host:port, for example outlook.office365.com:993."),
				"%q is not host:port: %v", p.addr, err)
		}
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		var resolved string
		if net.ParseIP(host) == nil {
			start := time.Now()
			ips, err := net.DefaultResolver.LookupHost(ctx, host)
			if err != nil {
				return fail(p.classify(diag.StageDial, err), "cannot resolve %s after %s: %v; "+
					"check the name, the DNS settings, and whether a firewall or proxy blocks name lookups", host, since(start), err)
			}
			if len(ips) > maxShownIPs {
				ips = append(ips[:maxShownIPs], "...")
			}
			resolved = fmt.Sprintf("%s resolves to %s in %s; ", host, strings.Join(ips, ", "), since(start))
		}
		start := time.Now()
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", p.addr)
		if err != nil {
			return fail(p.classify(diag.StageDial, err), "%scannot connect to %s on TCP port %s after %s: %v; "+
				"a firewall or proxy may block it", resolved, host, port, since(start), err)
		}
		conn = c
		return pass("%sTCP connection to %s in %s", resolved, c.RemoteAddr(), since(start))
	})
	return conn, st
}

// handshake runs the TLS handshake on conn and describes the server's
// certificate. The certificate is always verified, against the same roots
// the bridge uses.
func (p *probe) handshake(ctx context.Context, conn net.Conn) (*tls.Conn, Step) {
	var tc *tls.Conn
	st := timed(string(p.proto)+"-tls", p.label+" TLS and certificate", func() Step {
		ctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		cfg, err := p.tlsConfig()
		if err != nil {
			return p.tlsFailed(err)
		}
		c := tls.Client(conn, cfg)
		if err := c.HandshakeContext(ctx); err != nil {
			return p.tlsFailed(err)
		}
		tc = c
		return pass("%s", describeTLS(c.ConnectionState()))
	})
	return tc, st
}

// tlsFailed explains a failed handshake, naming the certificate that was
// presented when verification refused it: a TLS-inspecting proxy shows up
// there by its own issuer name.
func (p *probe) tlsFailed(err error) Step {
	detail := fmt.Sprintf("TLS handshake with %s failed: %v", p.addr, err)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		detail = fmt.Sprintf("%s accepted the connection but did not answer the TLS handshake within %s: %v; "+
			"a firewall or proxy may hold the connection, or the port does not speak TLS", p.addr, ms(p.timeout), err)
	}
	var ve *tls.CertificateVerificationError
	if errors.As(err, &ve) && len(ve.UnverifiedCertificates) > 0 {
		detail += "; the server presented " + describeCert(ve.UnverifiedCertificates[0])
	}
	return fail(p.classify(diag.StageTLS, err), "%s", detail)
}

// key names the account setting that holds the server, for messages.
func (p *probe) key() string {
	return string(p.proto) + " in the account " + p.diag.Email
}

// tlsConfig is what Bridge.UpstreamTLS builds (tlsutil.UpstreamConfig):
// the configured roots, TLS 1.2 or newer, SNI set to the host.
func (p *probe) tlsConfig() (*tls.Config, error) {
	return tlsutil.UpstreamConfig(p.addr, p.roots)
}

func describeTLS(cs tls.ConnectionState) string {
	s := tls.VersionName(cs.Version)
	if len(cs.PeerCertificates) > 0 {
		s += "; certificate " + describeCert(cs.PeerCertificates[0])
	}
	return s
}

func describeCert(c *x509.Certificate) string {
	return fmt.Sprintf("for %q issued by %q, valid until %s", certName(c), c.Issuer.CommonName, c.NotAfter.UTC().Format(time.DateOnly))
}

// certName is the subject's common name, or its first DNS name when the
// common name is empty, as it is in many modern certificates.
func certName(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return c.Subject.CommonName
	}
	if len(c.DNSNames) > 0 {
		return c.DNSNames[0]
	}
	return c.Subject.String()
}

// since formats the time since start for people: "12 ms", "1.4 s".
func since(start time.Time) string {
	return ms(time.Since(start))
}

func ms(d time.Duration) string {
	if d < time.Second {
		return fmt.Sprintf("%d ms", d.Milliseconds())
	}
	return fmt.Sprintf("%.1f s", d.Seconds())
}

// classify explains a failure of this probe with the diagnosis table.
func (p *probe) classify(stage diag.Stage, err error) *Diagnosis {
	var f *diag.Failure
	if !errors.As(err, &f) {
		f = &diag.Failure{Proto: p.proto, Stage: stage, Text: p.addr, Err: err}
	}
	return fromDiag(diag.Classify(f, p.diag, p.now()))
}

// upstreamFailed turns an error of an upstream login step (the bridge's
// own, see bridge.IMAPUpstreamLogin) into a step: a refusal, a
// *diag.Failure holding the server's words, shows them; anything else is
// a transport failure at stage.
func (p *probe) upstreamFailed(stage diag.Stage, err error) Step {
	var f *diag.Failure
	switch {
	case errors.As(err, &f) && f.Err == nil:
		return fail(p.classify(f.Stage, f), "the server answered %s", diag.ReplyText(replyText(f), 300))
	case f != nil:
		return fail(p.classify(f.Stage, f), "%s failed: %v", stageName(f.Stage), f.Err)
	}
	return fail(p.classify(stage, &diag.Failure{Proto: p.proto, Stage: stage, Text: p.addr, Err: err}),
		"%s failed: %v", stageName(stage), err)
}

// replyText puts a refusal's reply back together for people: "535 5.7.139
// text", "[AUTHENTICATIONFAILED] text", or the POP3 line.
func replyText(f *diag.Failure) string {
	switch {
	case f.Code != 0:
		return strings.Join(strings.Fields(fmt.Sprintf("%d %s %s", f.Code, f.Enhanced, f.Text)), " ")
	case f.RespCode != "":
		return "[" + f.RespCode + "] " + f.Text
	}
	return f.Text
}
