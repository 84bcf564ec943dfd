package doctor

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"slices"
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

// addrs returns the addresses a client may reach the listener on: the
// address as written and the other loopback at the same port
// (bridge.LoopbackTwin), where a client told "localhost" may connect
// whether or not listen.loopback_twin has the bridge listen there.
// "localhost" stands for 127.0.0.1, which is what the bridge binds for it.
func (l listener) addrs() []string {
	a := l.addr
	if host, port, err := net.SplitHostPort(a); err == nil && strings.EqualFold(host, "localhost") {
		a = net.JoinHostPort("127.0.0.1", port)
	}
	if twin := bridge.LoopbackTwin(a); twin != "" {
		return []string{a, twin}
	}
	return []string{a}
}

// checkListeners looks at each configured listen address, and at its
// other loopback: free (nothing answers), served by the running bridge (its
// control socket says it bound the address, and then no other program can
// hold it), served by a bridge (it answers as the bridge does and proves
// it holds the local certificate), or taken by another program.
func checkListeners(ctx context.Context, cfg *config.Config, o Options) []Step {
	var steps []Step
	roots := localRoots(cfg)
	for _, l := range listeners(cfg.Listen) {
		title := "Local " + strings.ToUpper(string(l.proto)) + " listener"
		if l.implicit {
			title += " (TLS)"
		}
		steps = append(steps, timed(l.key, title, func() Step { return checkListener(ctx, l, o.Served[l.key], roots) }))
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

// checkListener checks every address of l; served is what the running
// bridge bound for l.key (nil when none runs).
func checkListener(ctx context.Context, l listener, served []string, roots *x509.CertPool) Step {
	_, port, err := net.SplitHostPort(l.addr)
	if err != nil {
		return fail(keyProblem(l.key, err.Error(), "Write it as host:port, for example 127.0.0.1:1143."), "%q is not host:port", l.addr)
	}
	if port == "0" {
		if len(served) > 0 {
			return pass("%s served by the running bridge", andList(served))
		}
		return pass("port 0: the system picks a free port when the bridge starts")
	}
	var seen []string
	for i, a := range l.addrs() {
		if slices.Contains(served, a) {
			seen = append(seen, a+" is served by the running bridge")
			continue
		}
		what, st := probeListener(ctx, l, a, i > 0, roots)
		if st != nil {
			return *st
		}
		seen = append(seen, a+" "+what)
	}
	return pass("%s", strings.Join(seen, "; "))
}

// probeListener connects to addr, one address of l (twin: the loopback
// twin of the address as written), and says what answers there. A
// program other than the bridge comes back as a failed step. A bridge is
// told apart by what no other program can show: the local certificate,
// presented at once on an implicit-TLS port, and after STARTTLS (STLS)
// on a plain one; its greeting alone could be imitated.
func probeListener(ctx context.Context, l listener, addr string, twin bool, roots *x509.CertPool) (string, *Step) {
	_, port, _ := net.SplitHostPort(addr)
	ctx, cancel := context.WithTimeout(ctx, listenTimeout)
	defer cancel()
	conn, err := (&net.Dialer{}).DialContext(ctx, "tcp", addr)
	switch {
	case err != nil && isRefused(err) && twin:
		return "is free", nil
	case err != nil && isRefused(err):
		return "is free (nothing listens there yet); `bridge serve` will use it", nil
	case err != nil && twin:
		// Clients cannot reach it either (a machine without IPv6).
		return fmt.Sprintf("cannot be reached (%v), so no client sends a password there", err), nil
	case err != nil:
		st := fail(keyProblem(l.key, err.Error(),
			"Set "+l.key+" to a loopback address this machine has, such as 127.0.0.1:"+port+"."),
			"cannot check %s: %v", addr, err)
		return "", &st
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	defer stop()
	conn.SetDeadline(time.Now().Add(listenTimeout))
	line, err := proveBridge(ctx, conn, l, roots)
	if err == nil {
		return fmt.Sprintf("is served by a bridge (it greets %q and holds the local certificate)", line), nil
	}
	seen := err.Error()
	switch {
	case err == errNotBridge:
		seen = "it greets " + quoteShort(line)
	case line != "":
		seen = "it greets like the bridge, " + quoteShort(line) + ", but " + seen
	}
	where, fixEnd := "on "+addr, "."
	if twin {
		fixEnd = ", as 127.0.0.1 rather than localhost."
		where = "on " + addr + ", the other loopback of " + l.key + ", where a mail client told \"localhost\" may connect"
	}
	st := fail(&Diagnosis{
		ID:    "listen-port-taken",
		Kind:  "user",
		Title: "Another program listens on the bridge's " + strings.ToUpper(string(l.proto)) + " port",
		Cause: "Something other than the bridge accepts connections " + where + " (" + seen + "). " +
			"A mail client that connects there hands it the password it sends, and `bridge serve` cannot listen there.",
		Fix: "Stop that program, or set " + l.key + " in the [listen] section of the config to a port free on both " +
			"127.0.0.1 and [::1] (such as 127.0.0.1:" + otherPort(port) + ") and point the mail client at it" + fixEnd,
	}, "%s (%s) is taken by another program: %s", addr, l.key, seen)
	return "", &st
}

// errNotBridge is a greeting that is not the bridge's.
var errNotBridge = errors.New("doctor: not the bridge's greeting")

// proveBridge reads the greeting and checks that it is the bridge's and
// that the peer holds the local certificate: at once on an implicit-TLS
// port, after STARTTLS (STLS) on a plain one. It returns the greeting
// line, if one came, with the reason the peer is not the bridge.
func proveBridge(ctx context.Context, conn net.Conn, l listener, roots *x509.CertPool) (string, error) {
	host, _, _ := net.SplitHostPort(conn.RemoteAddr().String())
	tc := tls.Client(conn, &tls.Config{RootCAs: roots, ServerName: host, MinVersion: tls.VersionTLS12})
	if l.implicit {
		if err := tc.HandshakeContext(ctx); err != nil {
			return "", fmt.Errorf("its certificate is not the local one: %w", err)
		}
		conn = tc
	}
	br := bufio.NewReaderSize(conn, 512)
	line, err := readLine(br)
	if err != nil {
		return "", errors.New("it sent no greeting")
	}
	if !isBridgeGreeting(l.proto, line) {
		return line, errNotBridge
	}
	if l.implicit {
		return line, nil
	}
	if err := startTLS(conn, br, l.proto); err != nil {
		return line, err
	}
	if err := tc.HandshakeContext(ctx); err != nil {
		return line, fmt.Errorf("its certificate is not the local one: %w", err)
	}
	return line, nil
}

// startTLS asks a plain listener for TLS the way a mail client does: IMAP
// STARTTLS (RFC 3501 section 6.2.1), POP3 STLS (RFC 2595 section 4), SMTP
// EHLO and STARTTLS (RFC 3207 section 4).
func startTLS(conn net.Conn, br *bufio.Reader, p bridge.Proto) error {
	cmd, ok := "d1 STARTTLS", "d1 OK"
	switch p {
	case bridge.POP3:
		cmd, ok = "STLS", "+OK"
	case bridge.SMTP:
		if _, err := io.WriteString(conn, "EHLO doctor\r\n"); err != nil {
			return err
		}
		for {
			line, err := readLine(br)
			if err != nil {
				return err
			}
			if !strings.HasPrefix(line, "250") {
				return fmt.Errorf("it answered EHLO with %s", quoteShort(line))
			}
			if !strings.HasPrefix(line, "250-") {
				break
			}
		}
		cmd, ok = "STARTTLS", "220 "
	}
	if _, err := io.WriteString(conn, cmd+"\r\n"); err != nil {
		return err
	}
	for {
		line, err := readLine(br)
		if err != nil {
			return fmt.Errorf("it did not answer %s: %w", cmd, err)
		}
		if p == bridge.IMAP && strings.HasPrefix(line, "* ") {
			continue
		}
		if !strings.HasPrefix(line, ok) {
			return fmt.Errorf("it answered %s with %s", cmd, quoteShort(line))
		}
		return nil
	}
}

// readLine reads one line of at most the reader's size, without its end.
func readLine(br *bufio.Reader) (string, error) {
	line, err := br.ReadSlice('\n')
	if err != nil {
		return "", err
	}
	return strings.TrimRight(string(line), "\r\n"), nil
}

// andList joins addresses as "a", "a and b", "a, b and c".
func andList(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
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
