package bridge

import (
	"bufio"
	"context"
	"errors"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// Hostile clients before login: each must get a clear reply or a close,
// within bounds of time and memory.

// floodLimit is how much a flooding client tries to send; the server must
// have cut it off well before.
const floodLimit = 64 << 20

// abuser is a raw client connection for hostile input.
type abuser struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialAbuser(t *testing.T, addr string) *abuser {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &abuser{t: t, c: c, br: bufio.NewReader(c)}
}

// line reads one line (without CRLF) within 5 s.
func (a *abuser) line() string {
	a.t.Helper()
	a.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	l, err := a.br.ReadString('\n')
	if err != nil {
		a.t.Fatalf("read: %v (got %q)", err, l)
	}
	return strings.TrimRight(l, "\r\n")
}

// flood writes chunks (next(i) for the i-th) in the background until a
// write fails or floodLimit bytes are out; wait returns the bytes written.
func (a *abuser) flood(next func(i int) []byte) (wait func() int) {
	var n int
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.c.SetWriteDeadline(time.Now().Add(20 * time.Second))
		for i := 0; n < floodLimit; i++ {
			k, err := a.c.Write(next(i))
			n += k
			if err != nil {
				return
			}
		}
	}()
	return func() int { <-done; return n }
}

// drain reads lines until the server closes the connection, failing if it
// stays open for d. It returns the lines.
func (a *abuser) drain(d time.Duration) []string {
	a.t.Helper()
	a.c.SetReadDeadline(time.Now().Add(d))
	var lines []string
	for {
		l, err := a.br.ReadString('\n')
		if l != "" && strings.HasSuffix(l, "\n") {
			lines = append(lines, strings.TrimRight(l, "\r\n"))
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				a.t.Fatalf("connection still open after %v; last lines %q", d, tail(lines, 3))
			}
			return lines
		}
		if len(lines) > 100000 {
			a.t.Fatal("endless replies")
		}
	}
}

func tail(l []string, n int) []string { return l[max(0, len(l)-n):] }

// endlessLine is one line that never ends.
func endlessLine(prefix string) func(int) []byte {
	chunk := []byte(strings.Repeat("x", 32<<10))
	return func(i int) []byte {
		if i == 0 {
			return append([]byte(prefix), chunk...)
		}
		return chunk
	}
}

// garbage is a deterministic stream of random bytes with a line end every
// 100 bytes or so, and no end.
func garbage(seed uint64) func(int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	return func(int) []byte {
		b := make([]byte, 4096)
		for i := range b {
			b[i] = byte(r.IntN(256))
			if r.IntN(100) == 0 {
				b[i] = '\n'
			}
		}
		return b
	}
}

// trickle sends s one byte every interval until it is out or a write
// fails.
func (a *abuser) trickle(s string, interval time.Duration) (stop func()) {
	quit := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(interval)
		defer t.Stop()
		for i := 0; i < len(s); i++ {
			select {
			case <-quit:
				return
			case <-t.C:
			}
			if _, err := a.c.Write([]byte{s[i]}); err != nil {
				return
			}
		}
	}()
	return func() { close(quit); wg.Wait() }
}

// checkCutOff fails unless the flood was stopped well short of its limit.
func checkCutOff(t *testing.T, written int) {
	t.Helper()
	if written >= floodLimit {
		t.Errorf("the server read all %d MB of the flood", floodLimit>>20)
	}
}

func TestAbuseIMAP(t *testing.T) {
	h := newHarness(t)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	slowAddr, _ := h.startIMAP(FrontOptions{PreLoginTimeout: 2 * time.Second}, false)

	t.Run("1GB literal announced in LOGIN, then sent", func(t *testing.T) {
		a := dialAbuser(t, addr)
		a.line()
		wait := a.flood(func(i int) []byte {
			if i == 0 {
				return []byte("a1 LOGIN alice@example.com {1073741824+}\r\n")
			}
			return make([]byte, 32<<10)
		})
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) < 2 || lines[0] != "a1 BAD [TOOBIG] Literal too big" || lines[1] != "* BYE Closing the connection" {
			t.Errorf("replies %q", lines)
		}
	})
	t.Run("endless line", func(t *testing.T) {
		a := dialAbuser(t, addr)
		a.line()
		wait := a.flood(endlessLine("a1 LOGIN "))
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if strings.Join(lines, "|") != "* BAD Command line too long|* BYE Closing the connection" {
			t.Errorf("replies %q", lines)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		a := dialAbuser(t, addr)
		a.line()
		wait := a.flood(garbage(1))
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) == 0 || !strings.HasPrefix(lines[len(lines)-1], "* BYE ") {
			t.Errorf("last replies %q, want a BYE", tail(lines, 3))
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "* ") && !strings.HasPrefix(l, "+ ") && !strings.Contains(l, " BAD ") && !strings.Contains(l, " NO ") {
				t.Errorf("unexpected reply %q", l)
			}
		}
	})
	t.Run("endless NOOPs", func(t *testing.T) {
		a := dialAbuser(t, addr)
		a.line()
		wait := a.flood(func(int) []byte { return []byte(strings.Repeat("a NOOP\r\n", 1000)) })
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) != imapMaxPreLoginCommands+1 || lines[len(lines)-1] != "* BYE Too many commands without logging in" {
			t.Errorf("%d replies, last %q", len(lines), tail(lines, 2))
		}
	})
	t.Run("a byte a second", func(t *testing.T) {
		a := dialAbuser(t, slowAddr)
		a.line()
		start := time.Now()
		stop := a.trickle("a1 LOGIN alice@example.com "+h.password(alice)+"\r\n", time.Second)
		defer stop()
		lines := a.drain(10 * time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("closed after %v; the pre-login deadline is 2s", d)
		}
		if len(lines) != 1 || lines[0] != "* BYE Timed out waiting for login" {
			t.Errorf("replies %q", lines)
		}
	})
	if n := h.IMAP.Connections(); n != 0 {
		t.Errorf("%d upstream connections from hostile clients", n)
	}
}

func TestAbusePOP3(t *testing.T) {
	env := newPOP3Env(t, nil)
	slow := env.startPOP3(FrontOptions{PreLoginTimeout: 2 * time.Second})
	before := env.up.Connections()

	dial := func(t *testing.T, addr string) *abuser {
		a := dialAbuser(t, addr)
		if g := a.line(); g != pop3Greeting {
			t.Fatalf("greeting %q", g)
		}
		return a
	}
	t.Run("endless line", func(t *testing.T) {
		a := dial(t, env.plain)
		wait := a.flood(endlessLine("AUTH PLAIN "))
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if strings.Join(lines, "|") != pop3LineTooLong {
			t.Errorf("replies %q", lines)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		a := dial(t, env.plain)
		wait := a.flood(garbage(2))
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) == 0 || (lines[len(lines)-1] != pop3TooMany && lines[len(lines)-1] != pop3LineTooLong) {
			t.Errorf("last replies %q", tail(lines, 3))
		}
		for _, l := range lines {
			if !strings.HasPrefix(l, "-ERR ") && !strings.HasPrefix(l, "+") && !pop3KnownReplies[l] {
				t.Errorf("unexpected reply %q", l)
			}
		}
	})
	t.Run("a byte a second", func(t *testing.T) {
		a := dial(t, slow)
		start := time.Now()
		stop := a.trickle("USER "+pop3TestUser+"\r\n", time.Second)
		defer stop()
		a.drain(10 * time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("closed after %v; the pre-login deadline is 2s", d)
		}
	})
	if n := env.up.Connections(); n != before {
		t.Errorf("%d upstream connections from hostile clients", n-before)
	}
}

func TestAbuseSMTP(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	slow := newSMTPEnvFront(t, e, FrontOptions{PreLoginTimeout: 2 * time.Second})

	dial := func(t *testing.T, addr string) *abuser {
		a := dialAbuser(t, addr)
		if g := a.line(); !strings.HasPrefix(g, "220 ") {
			t.Fatalf("greeting %q", g)
		}
		return a
	}
	t.Run("endless line", func(t *testing.T) {
		a := dial(t, e.plain)
		wait := a.flood(endlessLine("AUTH PLAIN "))
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) != 1 || !strings.HasPrefix(lines[0], "500 5.4.0 ") {
			t.Errorf("replies %q", lines)
		}
	})
	t.Run("garbage", func(t *testing.T) {
		a := dial(t, e.plain)
		wait := a.flood(garbage(3))
		lines := a.drain(10 * time.Second)
		written := wait()
		checkCutOff(t, written)
		if written > 16*smtpPreLoginBytes {
			t.Errorf("%d bytes taken before the cut-off", written)
		}
		// go-smtp's own limit on bad commands may come first.
		if last := lines[len(lines)-1:]; len(last) == 0 || last[0] != strings.TrimSpace(smtpTooMuch) && !strings.HasPrefix(last[0], "500 5.5.1 Too many errors") {
			t.Errorf("last replies %q", tail(lines, 3))
		}
		for _, l := range lines {
			if len(l) < 4 || l[0] < '2' || l[0] > '5' {
				t.Errorf("unexpected reply %q", l)
			}
		}
	})
	t.Run("endless NOOPs", func(t *testing.T) {
		a := dial(t, e.plain)
		wait := a.flood(func(int) []byte { return []byte(strings.Repeat("NOOP\r\n", 1000)) })
		lines := a.drain(10 * time.Second)
		checkCutOff(t, wait())
		if len(lines) == 0 || lines[len(lines)-1] != strings.TrimSpace(smtpTooMuch) {
			t.Errorf("last replies %q", tail(lines, 3))
		}
		// The greeting and the closing 421 are not answers to a NOOP.
		noops := 0
		for _, l := range lines {
			if strings.HasPrefix(l, "250 ") {
				noops++
			}
		}
		if noops > smtpPreLoginBytes/len("NOOP\r\n")+1 {
			t.Errorf("%d NOOPs answered before the cut-off", noops)
		}
	})
	t.Run("AUTH storm on one connection", func(t *testing.T) {
		a := dial(t, e.plain)
		var b strings.Builder
		b.WriteString("EHLO storm\r\n")
		for i := range 50 {
			b.WriteString("AUTH PLAIN " + pop3Plain("", smtpUser, "storm-guess-"+itoa(i)) + "\r\n")
		}
		wait := a.flood(func(i int) []byte {
			if i == 0 {
				return []byte(b.String())
			}
			return []byte("NOOP\r\n")
		})
		lines := a.drain(15 * time.Second)
		wait()
		var refused int
		for _, l := range lines {
			if strings.HasPrefix(l, "535 ") {
				refused++
			}
		}
		if refused != 3 {
			t.Errorf("%d refusals before the hang-up, want MaxFailures (3): %q", refused, tail(lines, 4))
		}
	})
	t.Run("a byte a second", func(t *testing.T) {
		a := dial(t, slow)
		start := time.Now()
		stop := a.trickle("EHLO slowly.example\r\n", time.Second)
		defer stop()
		lines := a.drain(10 * time.Second)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("closed after %v; the pre-login deadline is 2s", d)
		}
		// At the deadline go-smtp takes the partial line for a command
		// (a 501) before it reads again and times out.
		if len(lines) == 0 || len(lines) > 2 || !strings.HasPrefix(lines[len(lines)-1], "421 4.4.2 ") {
			t.Errorf("replies %q", lines)
		}
	})
	if n := e.fake.Connections(); n != 0 {
		t.Errorf("%d upstream connections from hostile clients", n)
	}
	e.checkLogs()
}

// newSMTPEnvFront serves another SMTP front end with o on e's bridge until
// the test ends, and returns its plain address.
func newSMTPEnvFront(t *testing.T, e *smtpEnv, o FrontOptions) string {
	t.Helper()
	s := NewSMTPServer(e.B, o)
	ln := e.listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln, false)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}
