package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/config"
)

// serverEnv is a bridge.Server with all six listeners on ephemeral
// loopback ports, in front of the imitation upstreams of every protocol.
type serverEnv struct {
	*harness
	srv   *Server
	addrs map[string]string
	pop   *bridgetest.POP3
	smtp  *bridgetest.SMTP
	stop  context.CancelFunc
	done  chan error
}

func newServerEnv(t *testing.T, allowRemote bool) *serverEnv {
	t.Helper()
	return newServerEnvWith(t, func(l *config.Listen) { l.AllowRemote = allowRemote })
}

// newServerEnvGrace is newServerEnv with the given grace period for Run.
func newServerEnvGrace(t *testing.T, allowRemote bool, grace time.Duration) *serverEnv {
	return newServerEnvFull(t, func(l *config.Listen) { l.AllowRemote = allowRemote }, grace)
}

// newServerEnvWith is newServerEnv with the [listen] section edited.
func newServerEnvWith(t *testing.T, edit func(*config.Listen)) *serverEnv {
	return newServerEnvFull(t, edit, 2*time.Second)
}

func newServerEnvFull(t *testing.T, edit func(*config.Listen), grace time.Duration) *serverEnv {
	t.Helper()
	h := newHarness(t)
	pop, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pop.Close() })
	up, err := bridgetest.NewSMTP(bridgetest.SMTPOptions{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	h.setServer(POP3, pop.Addr())
	h.setServer(SMTP, up.Addr())

	cfg := config.Default()
	cfg.Listen = config.Listen{IMAP: "127.0.0.1:0", IMAPS: "127.0.0.1:0", SMTP: "127.0.0.1:0", SMTPS: "127.0.0.1:0",
		POP3: "127.0.0.1:0", POP3S: "127.0.0.1:0"}
	edit(&cfg.Listen)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	e := &serverEnv{harness: h, srv: NewServer(cfg, h.B, h.Local), pop: pop, smtp: up, done: make(chan error, 1)}
	if err := e.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	e.addrs = e.srv.Addrs()
	ctx, cancel := context.WithCancel(context.Background())
	e.stop = cancel
	go func() { e.done <- e.srv.Run(ctx, grace) }()
	t.Cleanup(func() { e.shutdown(t) })
	return e
}

// shutdown stops the server once and waits for Run.
func (e *serverEnv) shutdown(t *testing.T) {
	if e.stop == nil {
		return
	}
	e.stop()
	e.stop = nil
	select {
	case err := <-e.done:
		if err != nil {
			t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Error("Run did not return 10 s after the context ended")
	}
}

// TestServerBindsLoopbackOnly: every listener the server binds, including
// the other IP family's loopback, is a loopback address; a config that
// names another address is refused unless allow_remote is set.
func TestServerBindsLoopbackOnly(t *testing.T) {
	e := newServerEnv(t, false)
	if len(e.addrs) != 6 {
		t.Fatalf("bound %v, want six listeners", e.addrs)
	}
	e.srv.mu.Lock()
	for _, b := range e.srv.lns {
		if ta, ok := b.ln.Addr().(*net.TCPAddr); !ok || !ta.IP.IsLoopback() {
			t.Errorf("%s bound to %v, not loopback", b.key, b.ln.Addr())
		}
	}
	e.srv.mu.Unlock()
	for _, text := range []string{"[listen]\nimap = \"0.0.0.0:0\"\n", "[listen]\nsmtp = \":0\"\n", "[listen]\npop3 = \"192.0.2.1:0\"\n"} {
		p := filepath.Join(t.TempDir(), "c.toml")
		if err := os.WriteFile(p, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := config.Load(p); err == nil || !strings.Contains(err.Error(), "allow_remote") {
			t.Errorf("%q: %v, want a refusal naming allow_remote", text, err)
		}
	}
	if e.B.guard.PerPeer {
		t.Error("per-peer counting is on for loopback listeners, where every client is 127.0.0.1")
	}
}

// TestServerAllowRemoteRequiresTLS: with allow_remote, a password is never
// taken in the clear, on any protocol; after TLS it is.
func TestServerAllowRemoteRequiresTLS(t *testing.T) {
	e := newServerEnv(t, true)
	if !e.B.guard.PerPeer {
		t.Error("allow_remote does not count failures per peer")
	}
	pw := e.password(alice)

	w := dialIMAPWire(t, e.addrs["listen.imap"])
	w.expectPrefix("* OK [CAPABILITY IMAP4rev1 LITERAL+ ID STARTTLS LOGINDISABLED] ")
	w.send("a1 LOGIN " + alice + " " + pw + "\r\n")
	w.expectPrefix("a1 NO [PRIVACYREQUIRED] ")

	p := dialIMAPWire(t, e.addrs["listen.pop3"])
	p.expect(pop3Greeting)
	p.send("USER " + alice + "\r\n")
	p.expect(pop3TLSRequired)
	p.send("AUTH PLAIN " + pop3Plain("", alice, pw) + "\r\n")
	p.expect(pop3TLSRequired)

	c, err := smtp.Dial(e.addrs["listen.smtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Hello("client.example"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Extension("AUTH"); ok {
		t.Error("SMTP offers AUTH before STARTTLS")
	}
	if err := c.Auth(sasl.NewPlainClient("", alice, pw)); err == nil {
		t.Error("SMTP took a password before STARTTLS")
	}
	if n := e.IMAP.Logins() + e.pop.Logins() + e.smtp.Logins(); n != 0 {
		t.Errorf("%d upstream logins from clear-text passwords", n)
	}

	// Over TLS the same logins work.
	cfg := e.ClientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	tc, err := tls.Dial("tcp", e.addrs["listen.imaps"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	tw := &imapWire{t: t, c: tc, br: bufio.NewReader(tc)}
	t.Cleanup(func() { tc.Close() })
	tw.expectPrefix("* OK ")
	tw.send("a1 LOGIN " + alice + " " + pw + "\r\n")
	tw.expectPrefix("a1 OK ")
	sc, err := smtp.DialStartTLS(e.addrs["listen.smtp"], cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Auth(sasl.NewPlainClient("", alice, pw)); err != nil {
		t.Errorf("SMTP AUTH after STARTTLS: %v", err)
	}
}

// TestServerShutdownLeavesNothing ends a server with live sessions of every
// protocol (relayed IMAP in IDLE, relayed POP3, logged-in SMTP, and
// pre-login connections) and checks that no goroutine or connection
// outlives it.
func TestServerShutdownLeavesNothing(t *testing.T) {
	e := newServerEnv(t, false)
	pw := e.password(alice)
	// Warm up: the first login refreshes the token over an HTTP
	// connection that stays open for the next ones.
	warm := dialIMAPWire(t, e.addrs["listen.imap"])
	warm.expectPrefix("* OK ")
	warm.send("a1 LOGIN " + alice + " " + pw + "\r\na2 LOGOUT\r\n")
	warm.expectPrefix("a1 OK ")
	expectCloseSoon(t, warm, 5*time.Second)
	if !eventually(5*time.Second, func() bool { return e.B.Status().Sessions[IMAP] == 0 }) {
		t.Fatal("the warm-up session did not end")
	}
	base := runtime.NumGoroutine()
	noLeaks := leakCheck(t)

	w := dialIMAPWire(t, e.addrs["listen.imap"])
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + alice + " " + pw + "\r\na2 SELECT INBOX\r\n")
	w.expectPrefix("a1 OK ")
	for !strings.HasPrefix(w.line(), "a2 ") {
	}
	w.send("a3 IDLE\r\n")
	w.expectPrefix("+ ")
	p := dialIMAPWire(t, e.addrs["listen.pop3"])
	p.expect(pop3Greeting)
	p.send("USER " + alice + "\r\nPASS " + pw + "\r\n")
	p.expect(pop3UserOK)
	p.expect(pop3LoggedIn)
	c, err := smtp.Dial(e.addrs["listen.smtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Auth(sasl.NewPlainClient("", alice, pw)); err != nil {
		t.Fatal(err)
	}
	var idle []net.Conn
	for _, k := range []string{"listen.imap", "listen.pop3", "listen.smtp", "listen.imaps"} {
		conn, err := net.Dial("tcp", e.addrs[k])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		idle = append(idle, conn)
	}
	st := e.B.Status().Sessions
	if st[IMAP] != 1 || st[POP3] != 1 || st[SMTP] < 1 {
		t.Fatalf("live sessions %v, want one of each", st)
	}
	if runtime.NumGoroutine() <= base {
		t.Fatal("the sessions started no goroutines")
	}

	start := time.Now()
	e.shutdown(t)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("shutdown took %v with a 2 s grace", d)
	}
	expectCloseSoon(t, w, 5*time.Second)
	expectCloseSoon(t, p, 5*time.Second)
	for _, conn := range idle {
		conn.SetReadDeadline(time.Now().Add(5 * time.Second))
		var buf [512]byte
		for {
			if _, err := conn.Read(buf[:]); err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() {
					t.Error("a pre-login connection outlived the shutdown")
				}
				break
			}
		}
	}
	noLeaks()
	if st := e.B.Status().Sessions; st[IMAP]+st[POP3]+st[SMTP] != 0 {
		t.Errorf("sessions still counted after shutdown: %v", st)
	}
}

// insecureSkipVerifyAllowed lists the places that may turn verification
// off, with how many times, and why. None does.
var insecureSkipVerifyAllowed = map[string]int{}

// TestNoInsecureSkipVerify: the upstream certificate is always verified;
// no non-test source may turn verification off, except the listed probes
// of the local listener.
func TestNoInsecureSkipVerify(t *testing.T) {
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found at %s: %v", root, err)
	}
	checked := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == ".git" || d.Name() == "testdata" || d.Name() == "node_modules") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		checked++
		rel, _ := filepath.Rel(root, path)
		if n := strings.Count(string(b), "InsecureSkipVerify"); n > insecureSkipVerifyAllowed[filepath.ToSlash(rel)] {
			t.Errorf("%s mentions InsecureSkipVerify: certificate checks must stay on "+
				"(to probe the local listener, verify against the local certificate from tlsutil instead)", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 20 {
		t.Fatalf("only %d Go files checked", checked)
	}
}
