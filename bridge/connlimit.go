package bridge

import (
	"container/list"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge/config"
)

// Connection caps. Every client connection holds a descriptor, and a
// relayed session two (the upstream leg); past the process's file limit
// accept fails and so does every login's upstream dial, with nothing to
// say why. The cap keeps descriptorReserve of them for everything else
// (listeners, the store, the control socket, logins dialing upstream).
const (
	descriptorReserve = 256
	// defaultPerPeer is the cap per client address with allow_remote.
	defaultPerPeer = 1000
	// minConns is the least the derived cap goes down to.
	minConns = 16
	// capWarnEvery paces the warning about the cap.
	capWarnEvery = 10 * time.Second
)

// Replies to a connection over the cap on a plain listener; an
// implicit-TLS one is closed without a word, as a reply would need a
// handshake first.
const (
	imapBusy = "* BYE [UNAVAILABLE] Too many connections to the bridge; try again later\r\n"
	pop3Busy = "-ERR [SYS/TEMP] Too many connections to the bridge; try again later\r\n"
	// RFC 5321 section 3.8: a server may answer the connection with 421.
	smtpBusy = "421 4.3.2 Too many connections to the bridge; try again later\r\n"
)

// connLimit caps the client connections of the front ends that share it:
// in all, and per client address. A newcomer over the total makes room by
// closing the oldest connection that is idle before login (not logged in,
// no login under way), so that a flood of idle connections cannot keep a
// mail client out; when every connection is busy, or the newcomer's
// address is over its own cap, the newcomer is refused. A nil *connLimit
// caps nothing.
type connLimit struct {
	max, perPeer int // 0: no cap
	log          *slog.Logger

	mu    sync.Mutex
	n     int
	peers map[netip.Addr]int
	idle  list.List // of *connEntry with no holds, oldest first
	// Since the last warning (at warned): newcomers refused, idle
	// connections closed to make room.
	refused, closed int
	warned          time.Time
}

// connEntry is one connection counted by a connLimit.
type connEntry struct {
	c     net.Conn
	peer  netip.Addr
	holds int           // logins under way and logged-in sessions
	elem  *list.Element // in idle while holds is 0
	gone  bool          // no longer counted
}

// newConnLimit returns the cap a config's [listen] section asks for,
// logging to log. It reads the process's file limit when
// max_connections is 0.
func newConnLimit(l config.Listen, log *slog.Logger) *connLimit {
	c := &connLimit{max: l.MaxConnections, perPeer: l.MaxConnectionsPerPeer, log: log, peers: map[netip.Addr]int{}}
	if c.max == 0 {
		c.max = defaultMaxConns()
	}
	if c.perPeer == 0 && l.AllowRemote {
		c.perPeer = defaultPerPeer
	}
	return c
}

// defaultMaxConns derives the cap from the file limit: a relayed session
// holds two descriptors, and descriptorReserve stay free.
func defaultMaxConns() int {
	n, ok := fileLimit()
	if !ok {
		return 4096
	}
	n = min(n, 1<<21) // "unlimited" on some systems
	return max(int((n-min(n, descriptorReserve))/2), minConns)
}

// admit counts a new connection. When the total is reached it picks the
// oldest idle connection as the victim, which the caller closes (outside
// any lock); ok is false when c must be refused instead.
func (l *connLimit) admit(c net.Conn) (e *connEntry, victim net.Conn, ok bool) {
	e = &connEntry{c: c, peer: peerAddr(c)}
	if l == nil {
		return e, nil, true
	}
	l.mu.Lock()
	warn, victim, ok := l.admitLocked(e)
	l.mu.Unlock()
	if warn != nil {
		warn()
	}
	if !ok {
		return nil, nil, false
	}
	return e, victim, true
}

func (l *connLimit) admitLocked(e *connEntry) (warn func(), victim net.Conn, ok bool) {
	if l.perPeer > 0 && e.peer.IsValid() && l.peers[e.peer] >= l.perPeer {
		return l.noteLocked(e.peer, true), nil, false
	}
	if l.max > 0 && l.n >= l.max {
		front := l.idle.Front()
		if front == nil {
			return l.noteLocked(e.peer, true), nil, false
		}
		old := front.Value.(*connEntry)
		l.dropLocked(old)
		victim = old.c
		warn = l.noteLocked(e.peer, false)
	}
	l.n++
	if e.peer.IsValid() {
		l.peers[e.peer]++
	}
	e.elem = l.idle.PushBack(e)
	return warn, victim, true
}

// hold marks e busy (a login under way, a logged-in session) until the
// returned func is called; a busy connection is never closed to make
// room. Once released, it counts as idle from then on.
func (l *connLimit) hold(e *connEntry) (release func()) {
	if l == nil || e == nil {
		return func() {}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.gone {
		return func() {}
	}
	if e.holds++; e.elem != nil {
		l.idle.Remove(e.elem)
		e.elem = nil
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			if e.holds--; e.holds == 0 && !e.gone {
				e.elem = l.idle.PushBack(e)
			}
		})
	}
}

// release stops counting e (its connection ended).
func (l *connLimit) release(e *connEntry) {
	if l == nil || e == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.dropLocked(e)
}

func (l *connLimit) dropLocked(e *connEntry) {
	if e.gone {
		return
	}
	e.gone = true
	if e.elem != nil {
		l.idle.Remove(e.elem)
		e.elem = nil
	}
	l.n--
	if e.peer.IsValid() {
		if l.peers[e.peer]--; l.peers[e.peer] <= 0 {
			delete(l.peers, e.peer)
		}
	}
}

// noteLocked counts a newcomer refused, or an idle connection closed for
// one. It returns the warning to log (outside the lock) at the first, and
// then at most every capWarnEvery with the counts since the last one;
// nil in between.
func (l *connLimit) noteLocked(peer netip.Addr, refused bool) (warn func()) {
	if refused {
		l.refused++
	} else {
		l.closed++
	}
	now := time.Now()
	if !l.warned.IsZero() && now.Sub(l.warned) < capWarnEvery {
		return nil
	}
	args := []any{"max_connections", l.max, "max_connections_per_peer", l.perPeer, "open", l.n,
		"refused", l.refused, "closed_idle", l.closed, "last_peer", peer.String()}
	l.warned, l.refused, l.closed = now, 0, 0
	return func() { l.log.Warn("connection limit reached", args...) }
}

// peerAddr is the client's IP address, or the zero Addr for a connection
// that is not TCP.
func peerAddr(c net.Conn) netip.Addr {
	ta, ok := c.RemoteAddr().(*net.TCPAddr)
	if !ok {
		return netip.Addr{}
	}
	return ta.AddrPort().Addr().Unmap()
}

// refuseBusy answers a connection over the cap with busy ("" for none)
// and closes it. The client has sent nothing yet, so the close does not
// reset the reply away; the write goes to an empty send buffer and does
// not block the accept loop.
func refuseBusy(c net.Conn, busy string) {
	if busy != "" {
		c.SetWriteDeadline(time.Now().Add(time.Second))
		io.WriteString(c, busy)
	}
	c.Close()
}
