package bridge

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

// bigMessage returns a message of at least size octets with CRLF line ends,
// some lines starting with "." so byte-stuffing is exercised both ways.
func pop3BigMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString("From: sender@example.com\r\nTo: user@example.com\r\nSubject: big\r\n\r\n")
	for i := 0; b.Len() < size; i++ {
		switch i % 97 {
		case 0:
			fmt.Fprintf(&b, ".line %d starts with a dot\r\n", i)
		case 1:
			b.WriteString("..\r\n")
		default:
			fmt.Fprintf(&b, "%08d abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ 0123456789\r\n", i)
		}
	}
	return b.Bytes()
}

const pop3SmallMessage = "From: a@example.com\r\nSubject: hi\r\n\r\nHello.\r\n"

func TestPOP3RelayUserPass(t *testing.T) {
	env := newPOP3Env(t, nil)
	big := pop3BigMessage(10 << 20)
	env.up.Add(pop3TestUser, []byte(pop3SmallMessage))
	env.up.Add(pop3TestUser, big)

	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	if r := c.cmd("PASS " + pop3TestPassword); r != pop3LoggedIn {
		t.Fatalf("PASS: %q", r)
	}
	if n := env.B.Status().Sessions[POP3]; n != 1 {
		t.Errorf("live POP3 sessions = %d, want 1", n)
	}
	if r, want := c.ok("STAT"), fmt.Sprintf("+OK 2 %d", len(pop3SmallMessage)+len(big)); r != want {
		t.Errorf("STAT = %q, want %q", r, want)
	}
	c.ok("LIST")
	if got, want := string(c.body()), fmt.Sprintf("1 %d\r\n2 %d\r\n", len(pop3SmallMessage), len(big)); got != want {
		t.Errorf("LIST = %q, want %q", got, want)
	}
	c.ok("UIDL")
	uidl := strings.Split(strings.TrimSuffix(string(c.body()), "\r\n"), "\r\n")
	if len(uidl) != 2 || !strings.HasPrefix(uidl[0], "1 ") || !strings.HasPrefix(uidl[1], "2 ") || uidl[0][2:] == uidl[1][2:] {
		t.Errorf("UIDL = %q", uidl)
	}
	c.ok("RETR 2")
	if got := c.body(); !bytes.Equal(got, big) {
		t.Fatalf("RETR 2: got %d octets, want %d identical ones", len(got), len(big))
	}
	c.ok("DELE 1")
	c.ok("QUIT")
	if !c.closed() {
		t.Error("connection still open after QUIT")
	}
	msgs := env.up.Messages(pop3TestUser)
	if len(msgs) != 1 || !bytes.Equal(msgs[0], big) {
		t.Errorf("upstream maildrop after DELE 1 + QUIT has %d messages, want only the big one", len(msgs))
	}
	if !eventually(5*time.Second, func() bool { return env.B.Status().Sessions[POP3] == 0 }) {
		t.Fatal("timed out waiting for the session count to drop")
	}
	st := pop3AccountStatus(t, env.B, pop3TestUser)
	if st.LastOK[POP3].IsZero() {
		t.Error("status has no successful POP3 login")
	}
	if _, ok := st.Last[POP3]; ok {
		t.Errorf("status has a POP3 failure: %+v", st.Last[POP3])
	}
}

func pop3AccountStatus(t *testing.T, b *Bridge, email string) AccountStatus {
	t.Helper()
	for _, a := range b.Status().Accounts {
		if a.Email == email {
			return a
		}
	}
	t.Fatalf("no status for %s", email)
	return AccountStatus{}
}

func TestPOP3AuthPlain(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.up.Add(pop3TestUser, []byte(pop3SmallMessage))
	creds := pop3Plain("", pop3TestUser, pop3TestPassword)
	t.Run("initial response", func(t *testing.T) {
		c := env.dial(env.plain, false)
		if r := c.cmd("AUTH PLAIN " + creds); r != pop3LoggedIn {
			t.Fatalf("AUTH PLAIN: %q", r)
		}
		c.ok("RETR 1")
		if got := string(c.body()); got != pop3SmallMessage {
			t.Errorf("RETR 1 = %q", got)
		}
		c.ok("QUIT")
	})
	t.Run("continuation", func(t *testing.T) {
		c := env.dial(env.plain, false)
		if r := c.cmd("AUTH PLAIN"); r != "+ " {
			t.Fatalf("AUTH PLAIN: %q", r)
		}
		if r := c.cmd(creds); r != pop3LoggedIn {
			t.Fatalf("AUTH PLAIN response: %q", r)
		}
		c.ok("STAT")
		c.ok("QUIT")
	})
	t.Run("canceled then USER", func(t *testing.T) {
		c := env.dial(env.plain, false)
		c.cmd("AUTH PLAIN")
		if r := c.cmd("*"); r != pop3AuthCanceled {
			t.Fatalf("cancel: %q", r)
		}
		c.ok("USER " + pop3TestUser)
		c.ok("PASS " + pop3TestPassword)
		c.ok("QUIT")
	})
	if n := env.up.Logins(); n != 3 {
		t.Errorf("upstream logins = %d, want 3", n)
	}
}

func TestPOP3STLS(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.up.Add(pop3TestUser, []byte(pop3SmallMessage))
	c := env.dial(env.plain, false)
	c.ok("CAPA")
	if capa := string(c.body()); !strings.Contains(capa, "STLS\r\n") {
		t.Fatalf("CAPA before TLS lacks STLS: %q", capa)
	}
	c.startTLS(env.ClientTLS)
	c.ok("CAPA")
	if capa := string(c.body()); strings.Contains(capa, "STLS") || !strings.Contains(capa, "USER\r\n") {
		t.Errorf("CAPA after TLS: %q", capa)
	}
	c.ok("USER " + pop3TestUser)
	c.ok("PASS " + pop3TestPassword)
	c.ok("RETR 1")
	if got := string(c.body()); got != pop3SmallMessage {
		t.Errorf("RETR 1 = %q", got)
	}
	c.ok("QUIT")
}

func TestPOP3ImplicitTLS(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.up.Add(pop3TestUser, []byte(pop3SmallMessage))
	c := env.dial(env.implTLS, true)
	c.ok("CAPA")
	if capa := string(c.body()); strings.Contains(capa, "STLS") {
		t.Errorf("CAPA on implicit TLS offers STLS: %q", capa)
	}
	c.ok("AUTH PLAIN " + pop3Plain("", pop3TestUser, pop3TestPassword))
	c.ok("RETR 1")
	if got := string(c.body()); got != pop3SmallMessage {
		t.Errorf("RETR 1 = %q", got)
	}
	c.ok("QUIT")
}

func TestPOP3RequireTLS(t *testing.T) {
	env := newPOP3Env(t, func(o *FrontOptions) { o.RequireTLS = true })
	c := env.dial(env.plain, false)
	for _, cmd := range []string{"USER " + pop3TestUser, "AUTH PLAIN " + pop3Plain("", pop3TestUser, pop3TestPassword)} {
		if r := c.cmd(cmd); r != pop3TLSRequired {
			t.Errorf("%s before TLS: %q", strings.Fields(cmd)[0], r)
		}
	}
	if n := env.up.Connections(); n != 0 {
		t.Errorf("upstream connections = %d before any allowed login", n)
	}
	c.startTLS(env.ClientTLS)
	c.ok("USER " + pop3TestUser)
	c.ok("PASS " + pop3TestPassword)
	c.ok("QUIT")
}

func TestPOP3WrongPassword(t *testing.T) {
	env := newPOP3Env(t, nil)
	before := env.up.Connections()
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	if r := c.cmd("PASS wrong"); r != pop3BadCreds {
		t.Errorf("wrong password: %q", r)
	}
	if r := c.cmd("AUTH PLAIN " + pop3Plain("", "nobody@example.com", pop3TestPassword)); r != pop3BadCreds {
		t.Errorf("unknown account: %q", r)
	}
	c.ok("USER " + pop3TestUser)
	if r := c.cmd("PASS also wrong"); r != pop3BadCreds {
		t.Errorf("third failure: %q", r)
	}
	if !c.closed() {
		t.Error("connection still open after three failed logins")
	}
	if n := env.up.Connections(); n != before {
		t.Errorf("upstream connections went from %d to %d on wrong local passwords", before, n)
	}
}

// TestPOP3RightPasswordAfterWrongOnes: a dozen wrong passwords from one
// peer, then the right one from the same peer is accepted; the status
// names the peer and POP3 (which has no client name).
func TestPOP3RightPasswordAfterWrongOnes(t *testing.T) {
	env := newPOP3Env(t, func(o *FrontOptions) { o.MaxFailures = 20 })
	testGuard(env.B.guard)
	c := env.dial(env.plain, false)
	for i := range 12 {
		c.ok("USER " + pop3TestUser)
		if r := c.cmd("PASS wrong-Vb2" + itoa(i)); r != pop3BadCreds {
			t.Fatalf("wrong password %d: %q", i+1, r)
		}
	}
	start := time.Now()
	c.ok("USER " + pop3TestUser)
	if r := c.cmd("PASS " + pop3TestPassword); r != pop3LoggedIn {
		t.Errorf("the right password after 12 wrong ones: %q", r)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the right password was answered after %v", d)
	}
	r := refusedOf(t, env.B, pop3TestUser)
	if r == nil || r.Count != 12 || r.LastPeer != "127.0.0.1" || r.LastProto != POP3 || r.LastClient != "" {
		t.Errorf("refused logins %+v, want 12 from 127.0.0.1 over POP3", r)
	}
}

// TestPOP3Disabled is Exchange with POP switched off for the mailbox: the
// upstream refuses a good token with its generic text.
func TestPOP3Disabled(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.up.SetMode(bridgetest.Disabled)
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	r := c.cmd("PASS " + pop3TestPassword)
	t.Logf("reply: %s", r)
	if !strings.HasPrefix(r, "-ERR [AUTH] ") || !strings.Contains(r, "bridge doctor "+pop3TestUser) {
		t.Errorf("reply %q: want -ERR [AUTH] with a pointer to bridge doctor", r)
	}
	if !strings.Contains(strings.ToLower(r), "pop") {
		t.Errorf("reply %q does not say POP may be off", r)
	}
	st := pop3AccountStatus(t, env.B, pop3TestUser)
	d, ok := st.Last[POP3]
	if !ok {
		t.Fatal("status has no POP3 diagnosis")
	}
	if d.Raw != "-ERR Authentication failure: unknown user name or bad password." {
		t.Errorf("diagnosis raw text %q", d.Raw)
	}
	if !strings.Contains(d.Fix, "PopEnabled $true") || !strings.Contains(d.Fix, pop3TestUser) {
		t.Errorf("diagnosis fix %q lacks Set-CASMailbox -PopEnabled for the mailbox", d.Fix)
	}
	if env.up.Logins() != 0 || env.up.FailedLogins() != 1 {
		t.Errorf("upstream logins %d, failed %d", env.up.Logins(), env.up.FailedLogins())
	}
	// Switched back on, the same connection logs in and the status clears.
	env.up.SetMode(bridgetest.Normal)
	c.ok("USER " + pop3TestUser)
	c.ok("PASS " + pop3TestPassword)
	c.ok("QUIT")
	if _, ok := pop3AccountStatus(t, env.B, pop3TestUser).Last[POP3]; ok {
		t.Error("POP3 diagnosis still recorded after a successful login")
	}
}

func TestPOP3NeedsLogin(t *testing.T) {
	env := newPOP3Env(t, nil)
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3NoLoginUser)
	r := c.cmd("PASS " + pop3TestPassword)
	want := "-ERR [AUTH] " + pop3NoLoginUser + " must sign in again: run `bridge login " + pop3NoLoginUser + "` -- The stored sign-in is no longer accepted"
	if r != want {
		t.Errorf("reply %q, want %q", r, want)
	}
	if n := env.up.Connections(); n != 0 {
		t.Errorf("%d upstream connections without a token", n)
	}
}

func TestPOP3UpstreamDown(t *testing.T) {
	env := newPOP3Env(t, nil)
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3DownUser)
	r := c.cmd("PASS " + pop3TestPassword)
	t.Logf("reply: %s", r)
	if !strings.HasPrefix(r, "-ERR [SYS/TEMP] ") || !strings.Contains(r, "bridge doctor "+pop3DownUser) {
		t.Errorf("reply %q", r)
	}
	if _, ok := pop3AccountStatus(t, env.B, pop3DownUser).Last[POP3]; !ok {
		t.Error("status has no POP3 diagnosis for the unreachable server")
	}
}

// TestPOP3Pipelined sends the login and the first commands in one write:
// what follows the login must reach the upstream, in order.
func TestPOP3Pipelined(t *testing.T) {
	env := newPOP3Env(t, nil)
	env.up.Add(pop3TestUser, []byte(pop3SmallMessage))
	c := env.dial(env.plain, false)
	fmt.Fprintf(c.c, "USER %s\r\nPASS %s\r\nSTAT\r\nRETR 1\r\nQUIT\r\n", pop3TestUser, pop3TestPassword)
	for _, want := range []string{pop3UserOK, pop3LoggedIn, fmt.Sprintf("+OK 1 %d", len(pop3SmallMessage))} {
		if r := c.line(); r != want {
			t.Fatalf("got %q, want %q", r, want)
		}
	}
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Fatalf("RETR: %q", r)
	}
	if got := string(c.body()); got != pop3SmallMessage {
		t.Errorf("RETR 1 = %q", got)
	}
	if r := c.line(); !strings.HasPrefix(r, "+OK") {
		t.Errorf("QUIT: %q", r)
	}
}

func TestPOP3PreLoginTimeout(t *testing.T) {
	env := newPOP3Env(t, func(o *FrontOptions) { o.PreLoginTimeout = 200 * time.Millisecond })
	c := env.dial(env.plain, false)
	start := time.Now()
	if !c.closed() {
		t.Fatal("connection open past the pre-login timeout")
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("closed after %v", d)
	}
}

// TestPOP3Shutdown ends a relayed session that is still busy when the
// grace period runs out, with the goodbye line since it is between
// replies; a pre-login session gets the goodbye at once.
func TestPOP3Shutdown(t *testing.T) {
	env := newPOP3Env(t, nil)
	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	c.ok("PASS " + pop3TestPassword)
	pre := env.dial(env.plain, false)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := env.srv.Shutdown(ctx); err == nil {
		t.Error("Shutdown returned nil with a session still open")
	}
	for _, cl := range []*pop3Client{c, pre} {
		if l := cl.line(); l != pop3ShutdownBye {
			t.Errorf("goodbye %q, want %q", l, pop3ShutdownBye)
		}
		if !cl.closed() {
			t.Error("session still open after Shutdown")
		}
	}
}
