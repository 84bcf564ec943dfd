//go:build unix

package bridge

import (
	"fmt"
	"net"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-sasl"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

// idleConns is how many connections that never log in are held open at
// once.
const idleConns = 1000

// idleConnBytes bounds what one idle pre-login connection may cost, both
// ends together (the client side lives in the same process): heap and
// goroutine stacks. Measured at about 12 KB on average over the three
// protocols (16 KB under the race detector).
const idleConnBytes = 32 << 10

func memInUse() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc + m.StackInuse
}

// readGreeting reads the first line with a small buffer, so the test's own
// side costs little.
func readGreeting(c net.Conn) (string, error) {
	var buf [256]byte
	n := 0
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	for n < len(buf) {
		k, err := c.Read(buf[n:])
		n += k
		if i := strings.IndexByte(string(buf[:n]), '\n'); i >= 0 {
			return string(buf[:i]), nil
		}
		if err != nil {
			return string(buf[:n]), err
		}
	}
	return string(buf[:n]), nil
}

// TestAbuseThousandIdleConnections holds 1,000 connections that never log
// in across IMAP, POP3 and SMTP, checks what they cost, and checks that a
// well-behaved client of each protocol is served meanwhile.
func TestAbuseThousandIdleConnections(t *testing.T) {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil || lim.Cur < 2*idleConns+300 {
		t.Skipf("needs %d open files (ulimit -n is %d)", 2*idleConns+300, lim.Cur)
	}
	e := newSMTPEnv(t, smtpEnvOptions{})
	popUp, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: e.Tokens.Validate, TLS: e.UpstreamTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { popUp.Close() })
	e.setServer(POP3, popUp.Addr())
	imapAddr, _ := e.startIMAP(FrontOptions{}, false)
	pop3Addr := e.startPOP3(FrontOptions{})
	addrs := []string{imapAddr, pop3Addr, e.plain}

	// Warm up: the first login refreshes the token and opens the HTTP
	// connection that later ones reuse.
	warm := e.login(smtpUser)
	warm.Quit()
	before := memInUse()

	conns := make([]net.Conn, 0, idleConns)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range idleConns {
		c, err := net.DialTimeout("tcp", addrs[i%3], 5*time.Second)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		conns = append(conns, c)
		if g, err := readGreeting(c); err != nil || !(strings.HasPrefix(g, "* OK") || strings.HasPrefix(g, "+OK") || strings.HasPrefix(g, "220 ")) {
			t.Fatalf("connection %d: greeting %q, %v", i, g, err)
		}
	}
	held := memInUse()
	per := (int64(held) - int64(before)) / idleConns
	t.Logf("%d idle pre-login connections: %d KB in all, %d bytes each", idleConns, (int64(held)-int64(before))>>10, per)
	if per > idleConnBytes {
		t.Errorf("each idle connection costs %d bytes, bound %d", per, idleConnBytes)
	}

	// Well-behaved clients are served while the idle ones are held.
	start := time.Now()
	w := dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + smtpUser + " " + e.password(smtpUser) + "\r\n")
	w.expectPrefix("a1 OK ")
	w.send("a2 LOGOUT\r\n")
	w.expectPrefix("* BYE")

	p := dialIMAPWire(t, pop3Addr)
	p.expect(pop3Greeting)
	p.send("USER " + smtpUser + "\r\nPASS " + e.password(smtpUser) + "\r\n")
	p.expect(pop3UserOK)
	p.expect(pop3LoggedIn)
	p.send("QUIT\r\n")
	p.expectPrefix("+OK")

	c := e.dial(false)
	if err := c.Auth(sasl.NewPlainClient("", smtpUser, e.password(smtpUser))); err != nil {
		t.Fatalf("SMTP login with %d idle connections: %v", idleConns, err)
	}
	if err := smtpSend(c, smtpUser, smtpMessage("busy", "x\r\n")); err != nil {
		t.Fatalf("SMTP send: %v", err)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("well-behaved clients took %v with %d idle connections", d, idleConns)
	}
	t.Logf("IMAP, POP3 and SMTP served in %v", time.Since(start))

	// The idle connections were held, not dropped: the last of each
	// protocol still answers.
	for _, c := range conns[len(conns)-3:] {
		fmt.Fprintf(c, "a9 NOOP\r\nNOOP\r\n")
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		var buf [64]byte
		if _, err := c.Read(buf[:]); err != nil {
			t.Errorf("an idle connection was dropped: %v", err)
		}
	}
}
