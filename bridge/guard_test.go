package bridge

import (
	"context"
	"encoding/json"
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

// testGuard shortens the guard's pauses for a test: 1 ms for the first
// three failures in a row, doubling up to 16 ms, so a dozen wrong
// passwords take a fraction of a second.
func testGuard(g *Guard) { g.Delay, g.Free, g.MaxDelay = time.Millisecond, 3, 16*time.Millisecond }

// refusedOf returns email's refused logins from the bridge's status.
func refusedOf(t *testing.T, b *Bridge, email string) *RefusedLogins {
	t.Helper()
	for _, as := range b.Status().Accounts {
		if as.Email == email {
			return as.Refused
		}
	}
	t.Fatalf("no status for %s", email)
	return nil
}

// TestGuardPausesGrowAndAreCapped: the default guard answers the first
// five wrong passwords in a row after 250 ms, then doubles the pause up to
// 4 s; a count ends when its window passes without a failure.
func TestGuardPausesGrowAndAreCapped(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	g := DefaultGuard()
	g.Now = clk.Now
	ms := time.Millisecond
	want := []time.Duration{250 * ms, 250 * ms, 250 * ms, 250 * ms, 250 * ms, 500 * ms, time.Second, 2 * time.Second,
		4 * time.Second, 4 * time.Second, 4 * time.Second, 4 * time.Second}
	for i, w := range want {
		if d := g.Fail("a@example.com", tcpAddr("127.0.0.1", 40000+i)); d != w {
			t.Errorf("failure %d: pause %v, want %v", i+1, d, w)
		}
		clk.Advance(4 * time.Minute) // each within the window of the one before
	}
	if d := g.Fail("a@example.com", nil); d != 4*time.Second {
		t.Errorf("after a long run of failures: pause %v, want the 4s cap", d)
	}
	clk.Advance(5*time.Minute + time.Second)
	if d := g.Fail("a@example.com", nil); d != 250*ms {
		t.Errorf("after a quiet window: pause %v, want 250ms again", d)
	}
	if d := g.Fail("b@example.com", nil); d != 250*ms {
		t.Errorf("another name: pause %v, want 250ms", d)
	}

	// The zero Guard pauses nothing and keeps nothing; without MaxDelay
	// the pause stays at Delay.
	var off Guard
	for range 20 {
		if d := off.Fail("a@example.com", nil); d != 0 {
			t.Fatalf("zero guard pauses %v", d)
		}
	}
	if len(off.seen) != 0 {
		t.Errorf("zero guard keeps %d records", len(off.seen))
	}
	flat := &Guard{Delay: 10 * ms, Now: clk.Now}
	for i := range 20 {
		if d := flat.Fail("a@example.com", nil); d != 10*ms {
			t.Fatalf("failure %d without MaxDelay: pause %v, want 10ms", i+1, d)
		}
	}
}

func TestGuardPerAccountAndPerPeer(t *testing.T) {
	clk := &testClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	ms := time.Millisecond
	g := &Guard{Delay: 10 * ms, MaxDelay: time.Second, Window: time.Minute, PerPeer: true, Now: clk.Now}
	p1, p2, p3 := tcpAddr("192.0.2.1", 5000), tcpAddr("192.0.2.2", 5000), tcpAddr("192.0.2.3", 5000)
	for i, w := range []time.Duration{10 * ms, 20 * ms, 40 * ms} {
		if d := g.Fail("a@example.com", tcpAddr("192.0.2.1", 5000+i)); d != w { // a new source port each time
			t.Errorf("failure %d: pause %v, want %v", i+1, d, w)
		}
	}
	if d := g.Fail("c@example.com", p3); d != 10*ms {
		t.Errorf("an innocent name on an innocent peer: pause %v, want 10ms", d)
	}
	if d := g.Fail("a@example.com", p2); d != 80*ms {
		t.Errorf("the account from another peer: pause %v, want 80ms", d)
	}
	if d := g.Fail("b@example.com", p1); d != 80*ms {
		t.Errorf("the peer with another name: pause %v, want 80ms", d)
	}
	clk.Advance(61 * time.Second)
	if d := g.Fail("a@example.com", p1); d != 10*ms {
		t.Errorf("after the window: pause %v, want 10ms", d)
	}

	// Without PerPeer (loopback listeners), the peer is not counted.
	g = &Guard{Delay: 10 * ms, MaxDelay: time.Second, Window: time.Minute, Now: clk.Now}
	g.Fail("a@example.com", p1)
	g.Fail("c@example.com", p1)
	if d := g.Fail("b@example.com", p1); d != 10*ms {
		t.Errorf("peer counted without PerPeer: pause %v", d)
	}
}

// TestGuardMemoryBounded: a storm of made-up, long login names keeps the
// record count bounded and does not keep the names.
func TestGuardMemoryBounded(t *testing.T) {
	g := &Guard{Delay: time.Millisecond, Window: time.Hour}
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
	h.B.guard.Free = 100
	const n = 4
	start := time.Now()
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := h.B.Login(context.Background(), IMAP, alice, "wrong", tcpAddr("127.0.0.1", 1), "")
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
	h.B.Login(ctx, IMAP, alice, "wrong", nil, "")
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("a cancelled login waited %v", d)
	}
	h.checkLogs("wrong")
}

// TestLoginRightPasswordNotPaused: however many wrong passwords came
// before, the right one is checked first and answered without the pause.
func TestLoginRightPasswordNotPaused(t *testing.T) {
	h := newHarness(t)
	g := h.B.guard
	g.MaxDelay = 3 * time.Second
	peer := tcpAddr("127.0.0.1", 40000)
	for range 12 {
		g.Fail(alice, peer)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	l, err := h.B.Login(ctx, IMAP, alice, h.password(alice), peer, "")
	if err != nil {
		t.Fatalf("the right password after 12 wrong ones: %v", err)
	}
	if l.Account.Email != alice {
		t.Errorf("logged in to %s", l.Account.Email)
	}
	if d := time.Since(start); d >= 1500*time.Millisecond {
		t.Errorf("the right password was answered after %v", d)
	}
	// The pause was in force all along: the next wrong password gets it.
	if d := g.Fail(alice, peer); d != 3*time.Second {
		t.Errorf("pause after 13 failures %v, want the 3s cap", d)
	}
}

// TestLoginUnknownNameLikeWrongPassword: an unknown name and a wrong
// password get the same error and the same growing pauses; only the known
// account's refusals are kept, and the unknown name nowhere.
func TestLoginUnknownNameLikeWrongPassword(t *testing.T) {
	h := newHarness(t)
	g := h.B.guard
	g.Delay, g.Free, g.MaxDelay = 40*time.Millisecond, 1, 160*time.Millisecond
	const nobody = "nobody-Zq81@example.com"
	ctx := context.Background()
	for i, want := range []time.Duration{40, 80, 160, 160} {
		want *= time.Millisecond
		for _, user := range []string{alice, nobody} {
			start := time.Now()
			_, err := h.B.Login(ctx, IMAP, user, "wrong-Zq81", tcpAddr("127.0.0.1", 40000+i), "")
			d := time.Since(start)
			var le *LoginError
			if !errors.As(err, &le) || le.Account != nil || !errors.Is(err, ErrAuthFailed) {
				t.Errorf("%s: error %v, want ErrAuthFailed without an account", user, err)
			}
			if d < want {
				t.Errorf("%s, failure %d: answered after %v, want at least %v", user, i+1, d, want)
			}
		}
	}
	if r := refusedOf(t, h.B, alice); r == nil || r.Count != 4 {
		t.Errorf("alice's refused logins %+v, want 4", r)
	}
	st, _ := json.Marshal(h.B.Status())
	if strings.Contains(strings.ToLower(string(st)), "nobody") {
		t.Errorf("the status keeps the unknown name: %s", st)
	}
	if strings.Count(h.logs.String(), "local login refused") != 8 {
		t.Errorf("want 8 refusals logged:\n%s", h.logs.String())
	}
	h.checkLogs("wrong-Zq81")
}

// TestRefusedLoginsInStatus: an account's wrong local passwords show in
// its status with the last peer, protocol and client name (cleaned and
// bounded), until a window passes without one; a right password does not
// clear them.
func TestRefusedLoginsInStatus(t *testing.T) {
	h := newHarness(t, alice, smtpOther)
	clk := &testClock{now: time.Now()}
	h.B.guard.Delay, h.B.guard.Now = 0, clk.Now
	t0 := clk.Now()
	ctx := context.Background()
	client := "Canon MF\r\n\x01" + strings.Repeat("x", 1000)
	for range 3 {
		h.B.Login(ctx, IMAP, alice, "wrong", tcpAddr("127.0.0.1", 40001), client)
		clk.Advance(time.Minute)
	}
	h.B.Login(ctx, SMTP, "nobody@example.com", "wrong", tcpAddr("127.0.0.1", 40002), "x")
	r := refusedOf(t, h.B, alice)
	if r == nil {
		t.Fatal("no refused logins in alice's status")
	}
	if r.Count != 3 || !r.Since.Equal(t0) || !r.Last.Equal(t0.Add(2*time.Minute)) || r.LastPeer != "127.0.0.1" || r.LastProto != IMAP {
		t.Errorf("refused logins %+v", r)
	}
	if !strings.HasPrefix(r.LastClient, "Canon MF  ?xxx") || len(r.LastClient) > clientNameMax {
		t.Errorf("client name %q (%d bytes), want it cleaned and cut to %d", r.LastClient, len(r.LastClient), clientNameMax)
	}
	if txt := r.Text(); !strings.Contains(txt, "3 wrong local passwords since ") || !strings.Contains(txt, "from 127.0.0.1 (Canon MF") || !strings.Contains(txt, ", IMAP)") {
		t.Errorf("text %q", txt)
	}
	if r := refusedOf(t, h.B, smtpOther); r != nil {
		t.Errorf("%s has refused logins %+v", smtpOther, r)
	}

	if _, err := h.B.Login(ctx, IMAP, alice, h.password(alice), tcpAddr("127.0.0.1", 40003), ""); err != nil {
		t.Fatal(err)
	}
	clk.Advance(4 * time.Minute) // 5 minutes after the last
	if r := refusedOf(t, h.B, alice); r == nil || r.Count != 3 {
		t.Errorf("within the window, after a good login: %+v", r)
	}
	clk.Advance(2 * time.Minute)
	if r := refusedOf(t, h.B, alice); r != nil {
		t.Errorf("not aged out after the window: %+v", r)
	}
	h.B.Login(ctx, POP3, alice, "wrong", tcpAddr("::1", 40004), "")
	r = refusedOf(t, h.B, alice)
	if r == nil || r.Count != 1 || !r.Since.Equal(clk.Now()) || r.LastPeer != "::1" || r.LastProto != POP3 || r.LastClient != "" {
		t.Errorf("a new refusal after the window: %+v", r)
	}
	if txt := r.Text(); !strings.HasPrefix(txt, "1 wrong local password at ") || !strings.HasSuffix(txt, "from ::1 (POP3)") {
		t.Errorf("text %q", txt)
	}
}

// TestWrongPasswordStormFromOnePeer: a peer guessing over IMAP and SMTP
// (PerPeer, as with allow_remote) is slowed more with every guess, for
// any account it tries; the right passwords of both accounts are still
// accepted from that very peer; the log names the refusals but never the
// passwords.
func TestWrongPasswordStormFromOnePeer(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Front: func(o *FrontOptions) { o.MaxFailures = 100 }})
	g := e.B.guard
	g.Delay, g.Free, g.MaxDelay, g.PerPeer = 20*time.Millisecond, 2, 80*time.Millisecond, true
	imapAddr, _ := e.startIMAP(FrontOptions{MaxFailures: 100}, false)

	guesses := []string{"guess-Kq7wPz01", "guess-Kq7wPz02", "guess-Kq7wPz03", "guess-Kq7wPz04", "guess-Kq7wPz05", "guess-Kq7wPz06"}
	w := dialIMAPWire(t, imapAddr)
	w.expectPrefix("* OK ")
	start := time.Now()
	for i, pw := range guesses {
		w.send("a" + itoa(i) + " LOGIN " + smtpUser + " " + pw + "\r\n")
		w.expect("a" + itoa(i) + " NO [AUTHENTICATIONFAILED] " + badPasswordText)
	}
	if d, want := time.Since(start), (20+20+40+80+80+80)*time.Millisecond; d < want {
		t.Errorf("%d refusals took %v, want at least %v of growing pauses", len(guesses), d, want)
	}
	// The peer's count slows a guess at the other account too.
	c := e.dial(false)
	start = time.Now()
	if se := smtpErr(t, c.Auth(saslPlain(smtpOther, "guess-Kq7wPz07"))); se.Code != 535 {
		t.Errorf("SMTP wrong password: %d %q, want 535", se.Code, se.Message)
	}
	if d := time.Since(start); d < 80*time.Millisecond {
		t.Errorf("a guess at another account from the same peer took %v, want the 80ms cap", d)
	}
	// The right passwords are accepted, on IMAP and SMTP, for both.
	w.send("b1 LOGIN " + smtpUser + " " + e.password(smtpUser) + "\r\n")
	w.expectPrefix("b1 OK ")
	if err := c.Auth(saslPlain(smtpOther, e.password(smtpOther))); err != nil {
		t.Errorf("SMTP with the right password during the storm: %v", err)
	}
	logs := e.logs.String()
	if strings.Count(logs, "local login refused") != len(guesses)+1 {
		t.Errorf("refusals are not all logged:\n%s", logs)
	}
	for _, pw := range append(guesses, "guess-Kq7wPz07") {
		if strings.Contains(logs, pw) {
			t.Fatal("a guessed password is in the log")
		}
	}
}

// TestSMTPRightPasswordAfterWrongOnes: a dozen wrong passwords over SMTP,
// then the right one from the same peer is accepted; the status names the
// peer, SMTP and the client's EHLO name.
func TestSMTPRightPasswordAfterWrongOnes(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{Front: func(o *FrontOptions) { o.MaxFailures = 20 }})
	testGuard(e.B.guard)
	w := e.wire()
	w.expect("EHLO canon-mf.example", "250")
	for i := range 12 {
		w.expect("AUTH PLAIN "+pop3Plain("", smtpUser, "wrong-Xr5"+itoa(i)), "535 5.7.8 ")
	}
	start := time.Now()
	w.expect("AUTH PLAIN "+pop3Plain("", smtpUser, e.password(smtpUser)), "235 ")
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the right password was answered after %v", d)
	}
	r := refusedOf(t, e.B, smtpUser)
	if r == nil || r.Count != 12 || r.LastPeer != "127.0.0.1" || r.LastProto != SMTP || r.LastClient != "canon-mf.example" {
		t.Errorf("refused logins %+v, want 12 from 127.0.0.1 over SMTP by canon-mf.example", r)
	}
	e.checkLogs("wrong-Xr5")
}
