package bridge

import (
	"errors"
	"net"
	"sync"
	"time"
)

// ErrTooManyFailures refuses a login after repeated wrong passwords, for a
// while, per account and per peer address.
var ErrTooManyFailures = errors.New("bridge: too many failed logins; try again later")

// Guard slows password guessing: after Limit failures within Window for
// one account (or from one peer address), logins for it are refused until
// Window has passed since the last failure. A success clears the account.
type Guard struct {
	// Limit is how many failures are allowed; 0 disables the guard.
	Limit int
	// Window is how long failures are remembered.
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

// DefaultGuard allows 10 failures in 5 minutes per account and per peer.
func DefaultGuard() *Guard { return &Guard{Limit: 10, Window: 5 * time.Minute} }

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

func (g *Guard) keys(user string, peer net.Addr) [2]string {
	k := [2]string{"u:" + user, ""}
	if g.PerPeer && peer != nil {
		if host, _, err := net.SplitHostPort(peer.String()); err == nil {
			k[1] = "p:" + host
		}
	}
	return k
}

// Check returns ErrTooManyFailures when user or peer is locked out.
func (g *Guard) Check(user string, peer net.Addr) error {
	if g == nil || g.Limit == 0 {
		return nil
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	now := g.now()
	for _, k := range g.keys(user, peer) {
		if f := g.seen[k]; f != nil {
			if now.Sub(f.last) > g.Window {
				delete(g.seen, k)
				continue
			}
			if f.n >= g.Limit {
				return ErrTooManyFailures
			}
		}
	}
	return nil
}

// Fail counts a failed login.
func (g *Guard) Fail(user string, peer net.Addr) {
	if g == nil || g.Limit == 0 {
		return
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.seen == nil {
		g.seen = map[string]*failures{}
	}
	now := g.now()
	for _, k := range g.keys(user, peer) {
		if k == "" {
			continue
		}
		f := g.seen[k]
		if f == nil || now.Sub(f.last) > g.Window {
			f = &failures{}
			g.seen[k] = f
		}
		f.n++
		f.last = now
	}
	// Bound the memory an address scan can take.
	if len(g.seen) > 100000 {
		for k, f := range g.seen {
			if now.Sub(f.last) > g.Window {
				delete(g.seen, k)
			}
		}
	}
}

// Succeed clears the account's failures (not the peer's).
func (g *Guard) Succeed(user string, peer net.Addr) {
	if g == nil || g.Limit == 0 {
		return
	}
	g.mu.Lock()
	delete(g.seen, "u:"+user)
	g.mu.Unlock()
}
