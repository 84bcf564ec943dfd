package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tlsutil"
)

// listenTimeout bounds one local listener check: a loopback peer that
// has not greeted in this long is not the bridge.
const listenTimeout = 3 * time.Second

// listener is one listen key of the config.
type listener struct {
	key      string
	proto    bridge.Proto
	implicit bool
	addr     string
}

func listeners(l config.Listen) []listener {
	all := []listener{
		{"listen.imap", bridge.IMAP, false, l.IMAP}, {"listen.imaps", bridge.IMAP, true, l.IMAPS},
		{"listen.pop3", bridge.POP3, false, l.POP3}, {"listen.pop3s", bridge.POP3, true, l.POP3S},
		{"listen.smtp", bridge.SMTP, false, l.SMTP}, {"listen.smtps", bridge.SMTP, true, l.SMTPS},
	}
	var on []listener
	for _, x := range all {
		if x.addr != "" {
			on = append(on, x)
		}
	}
	return on
}

// checkListeners looks at each configured listen address: free (nothing
// answers), served by this bridge (the running server reports it, or the
// greeting is the bridge's), or taken by another program.
func checkListeners(ctx context.Context, cfg *config.Config, o Options) []Step {
	var steps []Step
	for _, l := range listeners(cfg.Listen) {
		title := "Local " + strings.ToUpper(string(l.proto)) + " listener"
		if l.implicit {
			title += " (TLS)"
		}
		steps = append(steps, timed(l.key, title, func() Step { return checkListener(ctx, l, o.Served, localRoots(cfg)) }))
	}
	return steps
}

// localRoots trusts the bridge's own local certificate, so the probe of an
// implicit-TLS listener verifies who answers; nil when there is none yet
// (the handshake then fails, and the port is reported as someone else's).
func localRoots(cfg *config.Config) *x509.CertPool {
	certFile := cfg.TLS.CertFile
	if certFile == "" {
		var err error
		if certFile, _, err = tlsutil.DefaultPaths(); err != nil {
			return nil
		}
	}
	pem, err := os.ReadFile(certFile)
	if err != nil {
		return nil
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return pool
}

func checkListener(ctx context.Context, l listener, served map[string]string, roots *x509.CertPool) Step {
	_, port, err := net.SplitHostPort(l.addr)
	if err != nil {
		return fail(keyProblem(l.key, err.Error(), "Write it as host:port, for example 127.0.0.1:1143."), "%q is not host:port", l.addr)
	}
	if got, ok := served[l.key]; ok && (got == l.addr || port == "0") {
		return pass("%s is served by the running bridge", got)
	}
	if port == "0" {
		return pass("port 0: the system picks a free port when the bridge starts")
	}
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", l.addr)
	switch {
	case err != nil && isRefused(err):
		return pass("%s is free (nothing listens there yet); `bridge serve` will use it", l.addr)
	case err != nil:
		return fail(keyProblem(l.key, err.Error(),
			"Set "+l.key+" to a loopback address this machine has, such as 127.0.0.1:"+port+"."),
			"cannot check %s: %v", l.addr, err)
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(listenTimeout))
	line, err := greeting(ctx, conn, l.implicit, roots)
	if err == nil && isBridgeGreeting(l.proto, line) {
		return pass("%s is served by a bridge (it greets %q)", l.addr, line)
	}
	seen := "it sent no greeting"
	if err == nil {
		seen = "it greets " + quoteShort(line)
	}
	return fail(&Diagnosis{
		ID:    "listen-port-taken",
		Kind:  "user",
		Title: "Another program listens on the bridge's " + strings.ToUpper(string(l.proto)) + " port",
		Cause: "Something other than the bridge accepts connections on " + l.addr + " (" + seen + "), so `bridge serve` cannot listen there.",
		Fix: "Stop that program, or set " + l.key + " in the [listen] section of the config to a free port " +
			"(such as 127.0.0.1:" + otherPort(port) + ") and point the mail client at it.",
	}, "%s (%s) is taken by another program: %s", l.addr, l.key, seen)
}

// greeting reads the first line the listener sends, after a TLS handshake
// verified against the local certificate for implicit-TLS listeners.
func greeting(ctx context.Context, conn net.Conn, implicit bool, roots *x509.CertPool) (string, error) {
	if implicit {
		host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
		tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", err
		}
		conn = tc
	}
	line, err := bufio.NewReaderSize(conn, 512).ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// isBridgeGreeting recognises the bridge's own greetings (bridge/imap.go,
// bridge/pop3_reader.go, bridge/smtp.go). The SMTP one is go-smtp's
// default for the name "localhost", so another go-smtp server could pass.
func isBridgeGreeting(p bridge.Proto, line string) bool {
	switch p {
	case bridge.IMAP:
		return strings.HasPrefix(line, "* OK ") && strings.HasSuffix(line, " bridge ready")
	case bridge.POP3:
		return line == "+OK bridge POP3 ready"
	}
	return line == "220 localhost ESMTP Service Ready"
}

func isRefused(err error) bool {
	return errors.Is(err, syscall.ECONNREFUSED) || strings.Contains(err.Error(), "refused")
}

func quoteShort(s string) string {
	return "\"" + diag.ReplyText(s, 80) + "\""
}

// otherPort suggests a port for a taken one: 10000 higher when that
// exists, as 1143 is to 143.
func otherPort(port string) string {
	n, err := strconv.Atoi(port)
	if err != nil || n+10000 > 65535 {
		return "PORT"
	}
	return strconv.Itoa(n + 10000)
}
