package bridge

import (
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
)

// idleClient connects to addr and reads the greeting, then stays idle
// before login.
func idleClient(t *testing.T, addr, greeting string) *imapWire {
	t.Helper()
	w := dialIMAPWire(t, addr)
	w.expectPrefix(greeting)
	return w
}

// capWarnings counts the log's warnings about the connection cap.
func capWarnings(e *serverEnv) int {
	return strings.Count(e.logs.String(), "connection limit reached")
}

// TestConnCapMakesRoomForALogin: with the cap filled by connections idle
// before login, on any protocol, a new client is still served and logs
// in: the oldest idle connection is closed to make room, and the log says
// so.
func TestConnCapMakesRoomForALogin(t *testing.T) {
	e := newServerEnvWith(t, func(l *config.Listen) { l.MaxConnections = 3 })
	pw := e.password(alice)
	oldest := idleClient(t, e.addrs["listen.smtp"], "220 ")
	pop := idleClient(t, e.addrs["listen.pop3"], "+OK ")
	imap := idleClient(t, e.addrs["listen.imap"], "* OK ")

	w := dialIMAPWire(t, e.addrs["listen.imap"])
	w.expectPrefix("* OK ")
	oldest.expectClosed(5 * time.Second)
	w.send("a1 LOGIN " + alice + " " + pw + "\r\n")
	w.expectPrefix("a1 OK ")

	// The logged-in session is never the one to go: the next newcomer
	// closes the oldest idle one left.
	w2 := dialIMAPWire(t, e.addrs["listen.imap"])
	w2.expectPrefix("* OK ")
	pop.expectClosed(5 * time.Second)
	w.send("a2 NOOP\r\n")
	w.expectPrefix("a2 OK ")
	imap.send("b1 NOOP\r\n")
	imap.expectPrefix("b1 OK ")
	if n := capWarnings(e); n != 1 {
		t.Errorf("%d warnings about the cap within 10 s, want 1:\n%s", n, e.logs.String())
	}
	if !strings.Contains(e.logs.String(), "closed_idle=1") {
		t.Errorf("the warning does not count the closed connection:\n%s", e.logs.String())
	}
	e.checkLogs()
}

// TestConnCapBusyWhenAllLoggedIn: with the cap filled by logged-in
// sessions, a newcomer gets its protocol's "too many connections" reply
// and is closed (an implicit-TLS one is closed without a reply); the log
// says so; once a session ends, clients are served again.
func TestConnCapBusyWhenAllLoggedIn(t *testing.T) {
	e := newServerEnvWith(t, func(l *config.Listen) { l.MaxConnections = 2 })
	pw := e.password(alice)
	var sessions []*imapWire
	for range 2 {
		w := dialIMAPWire(t, e.addrs["listen.imap"])
		w.expectPrefix("* OK ")
		w.send("a1 LOGIN " + alice + " " + pw + "\r\n")
		w.expectPrefix("a1 OK ")
		sessions = append(sessions, w)
	}
	for key, want := range map[string]string{
		"listen.imap": strings.TrimSuffix(imapBusy, "\r\n"),
		"listen.pop3": strings.TrimSuffix(pop3Busy, "\r\n"),
		"listen.smtp": strings.TrimSuffix(smtpBusy, "\r\n"),
	} {
		w := dialIMAPWire(t, e.addrs[key])
		w.expect(want)
		w.expectClosed(5 * time.Second)
	}
	cfg := e.ClientTLS.Clone()
	cfg.ServerName = "127.0.0.1"
	if c, err := tls.Dial("tcp", e.addrs["listen.imaps"], cfg); err == nil {
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err == nil {
			t.Error("the implicit-TLS listener served a connection over the cap")
		}
		c.Close()
	}
	for _, w := range sessions {
		w.send("a3 NOOP\r\n")
		w.expectPrefix("a3 OK ")
	}
	if n := capWarnings(e); n != 1 || !strings.Contains(e.logs.String(), "max_connections=2") {
		t.Errorf("%d warnings about the cap, want 1 naming the cap:\n%s", n, e.logs.String())
	}

	sessions[0].send("a4 LOGOUT\r\n")
	expectCloseSoon(t, sessions[0], 5*time.Second)
	if !eventually(5*time.Second, func() bool {
		c, err := net.Dial("tcp", e.addrs["listen.pop3"])
		if err != nil {
			return false
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		line := make([]byte, 3)
		io.ReadFull(c, line)
		return string(line) == "+OK"
	}) {
		t.Error("no client was served after a session ended")
	}
}

// TestConnCapPerPeer: one client address over its own cap gets the busy
// reply while others are still served.
func TestConnCapPerPeer(t *testing.T) {
	needIPv6Loopback(t)
	e := newServerEnvWith(t, func(l *config.Listen) { l.MaxConnectionsPerPeer = 2; l.LoopbackTwin = true })
	addr := e.addrs["listen.imap"]
	idleClient(t, addr, "* OK ")
	idleClient(t, addr, "* OK ")
	w := dialIMAPWire(t, addr)
	w.expect(strings.TrimSuffix(imapBusy, "\r\n"))
	// [::1] is another address.
	idleClient(t, LoopbackTwin(addr), "* OK ")
	if capWarnings(e) != 1 {
		t.Errorf("no warning about the cap:\n%s", e.logs.String())
	}
}

// TestConnCapWarningPaced: a flood at the cap logs one warning per
// capWarnEvery, each counting what happened since the last.
func TestConnCapWarningPaced(t *testing.T) {
	var logs lockedBuffer
	l := newConnLimit(config.Listen{MaxConnections: 1}, slog.New(slog.NewTextHandler(&logs, nil)))
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	e, _, ok := l.admit(a)
	if !ok {
		t.Fatal("the first connection was refused")
	}
	l.hold(e)
	for range 5 {
		if _, _, ok := l.admit(b); ok {
			t.Fatal("a connection over a cap of 1 was admitted")
		}
	}
	if n := strings.Count(logs.String(), "connection limit reached"); n != 1 {
		t.Fatalf("%d warnings for 5 refusals in a row, want 1:\n%s", n, logs.String())
	}
	l.mu.Lock()
	l.warned = l.warned.Add(-capWarnEvery)
	l.mu.Unlock()
	l.admit(b)
	if n := strings.Count(logs.String(), "connection limit reached"); n != 2 || !strings.Contains(logs.String(), "refused=5") {
		t.Errorf("after %v: %d warnings, want a second one counting 5 refusals:\n%s", capWarnEvery, n, logs.String())
	}
	l.release(e)
	if _, _, ok := l.admit(b); !ok {
		t.Error("a connection was refused after the one counted ended")
	}
}

// TestConnCapDefault: without max_connections the cap leaves
// descriptorReserve descriptors free and two per connection; the per-peer
// cap applies only with allow_remote.
func TestConnCapDefault(t *testing.T) {
	l := newConnLimit(config.Listen{}, slog.New(slog.DiscardHandler))
	if lim, ok := fileLimit(); ok && lim > 2*minConns+descriptorReserve {
		if want := int((min(lim, 1<<21) - descriptorReserve) / 2); l.max != want {
			t.Errorf("cap %d for a file limit of %d, want %d", l.max, lim, want)
		}
	} else if l.max < minConns {
		t.Errorf("cap %d", l.max)
	}
	if l.perPeer != 0 {
		t.Errorf("per-peer cap %d on loopback, where every client shares one address", l.perPeer)
	}
	if l := newConnLimit(config.Listen{AllowRemote: true}, slog.New(slog.DiscardHandler)); l.perPeer != defaultPerPeer {
		t.Errorf("per-peer cap %d with allow_remote, want %d", l.perPeer, defaultPerPeer)
	}
}
