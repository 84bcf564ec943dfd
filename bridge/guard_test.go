package bridge

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
)

func saslPlain(user, pass string) sasl.Client { return sasl.NewPlainClient("", user, pass) }

// startPOP3 serves a POP3 front end on b until the test ends.
func (h *harness) startPOP3(o FrontOptions) string {
	h.t.Helper()
	s := NewPOP3Server(h.B, o)
	ln := h.listen()
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Serve(ln, false)
	}()
	h.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s.Shutdown(ctx)
		<-done
	})
	return ln.Addr().String()
}

// testClock is a settable clock for Guard.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func tcpAddr(ip string, port int) net.Addr { return &net.TCPAddr{IP: net.ParseIP(ip), Port: port} }

func TestGuardPerAccountAndPerPeer(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := &Guard{Limit: 3, Window: time.Minute, PerPeer: true, Now: clk.Now}
	p1, p2 := tcpAddr("192.0.2.1", 5000), tcpAddr("192.0.2.2", 5000)
	for i := range 3 {
		if err := g.Check("a@example.com", tcpAddr("192.0.2.1", 5000+i)); err != nil {
			t.Fatalf("failure %d: locked too early: %v", i, err)
		}
		g.Fail("a@example.com", tcpAddr("192.0.2.1", 5000+i)) // a new source port each time
	}
	if err := g.Check("a@example.com", p2); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("the account is not locked from another peer: %v", err)
	}
	if err := g.Check("b@example.com", p1); !errors.Is(err, ErrTooManyFailures) {
		t.Errorf("the peer is not locked for another account: %v", err)
	}
	if err := g.Check("b@example.com", p2); err != nil {
		t.Errorf("an innocent account on an innocent peer is locked: %v", err)
	}
	clk.Advance(61 * time.Second)
	if err := g.Check("a@example.com", p1); err != nil {
		t.Errorf("still locked after the window: %v", err)
	}

	// Without PerPeer (loopback listeners), the peer is not counted.
	g = &Guard{Limit: 2, Window: time.Minute, Now: clk.Now}
	g.Fail("a@example.com", p1)
	g.Fail("c@example.com", p1)
	if err := g.Check("b@example.com", p1); err != nil {
		t.Errorf("peer counted without PerPeer: %v", err)
	}
	// A success clears the account.
	g.Fail("a@example.com", p1)
	g.Succeed("a@example.com", p1)
	if err := g.Check("a@example.com", p1); err != nil {
		t.Errorf("locked after a success: %v", err)
	}
}

// TestGuardMemoryBounded: a storm of made-up, long login names keeps the
// record count bounded and does not keep the names.
func TestGuardMemoryBounded(t *testing.T) {
	g := &Guard{Limit: 10, Window: time.Hour}
	long := strings.Repeat("x", 4000)
	for i := range guardMaxKeys + 5000 {
		g.Fail(long+string(rune('a'+i%26))+strings.Repeat("y", i%7)+itoa(i), nil)
	}
	g.mu.Lock()
	n := len(g.seen)
	var size int
	for k := range g.seen {
		size += len(k)
	}
	g.mu.Unlock()
	if n > guardMaxKeys {
		t.Errorf("%d records kept, bound %d", n, guardMaxKeys)
	}
	if size > n*20 {
		t.Errorf("records keep %d bytes of keys for %d entries: names are stored", size, n)
	}
}

func itoa(i int) string {
	var b [20]byte
	p := len(b)
	for {
		p--
		b[p] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			return string(b[p:])
		}
	}
}

// TestGuardDelayHoldsNoLock: each refused login waits Delay, and one
// connection's wait does not hold up another's.
func TestGuardDelayHoldsNoLock(t *testing.T) {
	h := newHarness(t)
	h.B.guard.Delay = 300 * time.Millisecond
	h.B.guard.Limit = 100
	const n = 4
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.B.Login(context.Background(), IMAP, alice, "wrong", tcpAddr("127.0.0.1", 1))
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if !errors.Is(err, ErrAuthFailed) {
			t.Errorf("login error %v", err)
		}
	}
	d := time.Since(start)
	if d < 300*time.Millisecond {
		t.Errorf("refused logins answered after %v, want at least the 300ms delay", d)
	}
	if d > 3*300*time.Millisecond {
		t.Errorf("%d concurrent refusals took %v: the delay is serialised", n, d)
	}
	// A cancelled login does not wait out the delay.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	start = time.Now()
	h.B.Login(ctx, IMAP, alice, "wrong", nil)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("a cancelled login waited %v", d)
	}
	h.checkLogs("wrong")
}

// TestWrongPasswordStormFromOnePeer: a peer guessing over IMAP, POP3 and
// SMTP is slowed, then refused per account and per peer (PerPeer, as with
// allow_remote); the log names the refusals but never the passwords; once
// the window has passed, the right password works again.
func TestWrongPasswordStormFromOnePeer(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Front: func(o *FrontOptions) { o.MaxFailures = 100 }})
	clk := &testClock{now: time.Now()}
	g := e.B.guard
	g.Limit, g.Window, g.PerPeer, g.Now, g.Delay = 5, time.Minute, true, clk.Now, 20*time.Millisecond
	imapAddr, _ := e.startIMAP(FrontOptions{MaxFailures: 100}, false)

	guesses := []string{"guess-Kq7wPz01", "guess-Kq7wPz02", "guess-Kq7wPz03", "guess-Kq7wPz04", "guess-Kq7wPz05"}
	w := dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	start := time.Now()
	for i, pw := range guesses {
		w.send("a" + itoa(i) + " LOGIN " + smtpUser + " " + pw + "\r\n")
		w.expect("a" + itoa(i) + " NO [AUTHENTICATIONFAILED] " + badPasswordText)
	}
	if d := time.Since(start); d < time.Duration(len(guesses))*20*time.Millisecond {
		t.Errorf("%d refusals took %v: not slowed", len(guesses), d)
	}
	// Locked: the right password is refused on every protocol, for this
	// account and (per peer) for the other account too.
	w.send("b1 LOGIN " + smtpUser + " " + e.password(smtpUser) + "\r\n")
	w.expect("b1 NO [AUTHENTICATIONFAILED] Too many failed logins, try again later")
	w.send("b2 LOGIN " + smtpOther + " " + e.password(smtpOther) + "\r\n")
	w.expect("b2 NO [AUTHENTICATIONFAILED] Too many failed logins, try again later")
	c := e.dial(false)
	se := smtpErr(t, c.Auth(saslPlain(smtpUser, e.password(smtpUser))))
	if se.Code != 454 {
		t.Errorf("SMTP during the lockout: %d %q, want 454", se.Code, se.Message)
	}
	pw := dialIMAPWire(t, e.startPOP3(FrontOptions{}))
	pw.expect(pop3Greeting)
	pw.send("USER " + smtpUser + "\r\nPASS " + e.password(smtpUser) + "\r\n")
	pw.expect(pop3UserOK)
	pw.expect(pop3Locked)
	if n := e.fake.Logins(); n != 0 {
		t.Errorf("%d upstream logins during the lockout", n)
	}
	logs := e.logs.String()
	if strings.Count(logs, "local login refused") < len(guesses)+2 {
		t.Errorf("refusals are not all logged:\n%s", logs)
	}
	for _, pw := range guesses {
		if strings.Contains(logs, pw) {
			t.Fatal("a guessed password is in the log")
		}
	}

	clk.Advance(2 * time.Minute)
	w.send("c1 LOGIN " + smtpUser + " " + e.password(smtpUser) + "\r\n")
	w.expectPrefix("c1 OK ")
	if err := c.Auth(saslPlain(smtpUser, e.password(smtpUser))); err != nil {
		t.Errorf("SMTP after the lockout: %v", err)
	}
}
