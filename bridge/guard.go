package bridge

import (
	"context"
	"crypto/sha256"
	"net"
	"sync"
	"time"
)

// Guard slows password guessing without ever refusing the right password.
// A wrong local password (or an unknown login name) is answered after a
// pause that grows with the failures counted against the login name and,
// with PerPeer, against the peer address: Delay for the first Free
// failures, then twice the pause before for each further one, up to
// MaxDelay. The right password is checked first and answered at once,
// however many wrong ones anyone sent: all local clients share 127.0.0.1,
// so a lockout would let one device with an old password take the account
// down, and a local password's 140 random bits make guessing hopeless at
// any speed.
//
// A count lasts while failures keep coming: it ends when Window passes
// without one for that name or peer.
type Guard struct {
	// Delay is the pause before answering a wrong password; 0 means no
	// pause (the guard is off). The pause holds no lock.
	Delay time.Duration
	// Free is how many failures in a row are answered after Delay alone;
	// each one after doubles the pause. 0 counts as 1.
	Free int
	// MaxDelay caps the pause; below Delay (0 included), the pause never
	// grows beyond Delay.
	MaxDelay time.Duration
	// Window is how long a count lasts after its last failure; 0 is 5
	// minutes. It is also how long an account's refused logins stay in
	// its status.
	Window time.Duration
	// PerPeer also counts failures per peer address. Off for loopback-only
	// listeners, where every client shares 127.0.0.1; on with allow_remote.
	PerPeer bool
	// Now is the clock; nil is time.Now.
	Now func() time.Time

	mu   sync.Mutex
	seen map[string]*failures
}

type failures struct {
	n    int
	last time.Time
}

// guardMaxKeys bounds the failure records kept: login names come from the
// client, so a storm of made-up names must not grow the map without end.
const guardMaxKeys = 100000

// DefaultGuard answers the first 5 wrong passwords in a row after 250 ms,
// then after 500 ms, 1 s, 2 s and from the 9th on 4 s each, per login
// name (and per peer with PerPeer); a count ends 5 minutes after its last
// failure. One connection then tries at most one password every 4 s, and
// the front ends close it after FrontOptions.MaxFailures.
func DefaultGuard() *Guard {
	return &Guard{Delay: 250 * time.Millisecond, Free: 5, MaxDelay: 4 * time.Second, Window: 5 * time.Minute}
}

func (g *Guard) now() time.Time {
	if g != nil && g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Guard) window() time.Duration {
	if g == nil || g.Window <= 0 {
		return 5 * time.Minute
	}
	return g.Window
}

// keys returns the records a login counts against. The login name is
// hashed: it is the client's text, of any length, and it is a record key,
// not something to keep or log.
func (g *Guard) keys(user string, peer net.Addr) [2]string {
	h := sha256.Sum256([]byte(user))
	k := [2]string{"u:" + string(h[:16]), ""}
	if g.PerPeer && peer != nil {
		k[1] = "p:" + peerHost(peer)
	}
	return k
}

// Fail counts a wrong password for user from peer and returns how long to
// pause before answering it (sleep).
func (g *Guard) Fail(user string, peer net.Addr) time.Duration {
	if g == nil || g.Delay <= 0 {
		return 0
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]*failures{}
	}
	now, window := g.now(), g.window()
	n := 0
	for _, k := range g.keys(user, peer) {
		if k == "" {
			continue
		}
		f := g.seen[k]
		if f == nil || now.Sub(f.last) > window {
			f = &failures{}
			g.seen[k] = f
		}
		f.n++
		f.last = now
		n = max(n, f.n)
	}
	// Bound the memory an address scan or a storm of made-up names can
	// take: drop stale records, then, if that was not enough, any records
	// (shortening the pauses under such a flood rather than running out
	// of memory).
	if len(g.seen) > guardMaxKeys {
		for k, f := range g.seen {
			if now.Sub(f.last) > window {
				delete(g.seen, k)
			}
		}
		for k := range g.seen {
			if len(g.seen) <= guardMaxKeys*9/10 {
				break
			}
			delete(g.seen, k)
		}
	}
	return g.pause(n)
}

// pause is the wait before answering the nth failure in a row.
func (g *Guard) pause(n int) time.Duration {
	d := g.Delay
	for i := max(g.Free, 1); i < n && d < g.MaxDelay; i++ {
		d *= 2
	}
	if g.MaxDelay > g.Delay {
		d = min(d, g.MaxDelay)
	}
	return d
}

// sleep waits for d, or until ctx is done.
func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// peerHost is a peer's address without the port: the client's machine.
func peerHost(a net.Addr) string {
	if a == nil {
		return ""
	}
	if host, _, err := net.SplitHostPort(a.String()); err == nil {
		return host
	}
	return a.String()
}
