package bridge

import (
	"context"
	"crypto/sha256"
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
	// Delay is how long a refused login (a wrong password, or a lockout)
	// waits before its reply, so one connection cannot try passwords at
	// full speed; 0 means no wait. The wait holds no lock.
	Delay time.Duration
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

// DefaultGuard allows 10 failures in 5 minutes per account and per peer,
// and answers each refused login after 250 ms.
func DefaultGuard() *Guard {
	return &Guard{Limit: 10, Window: 5 * time.Minute, Delay: 250 * time.Millisecond}
}

// Wait sleeps for Delay, or until ctx is done.
func (g *Guard) Wait(ctx context.Context) {
	if g == nil || g.Delay <= 0 {
		return
	}
	t := time.NewTimer(g.Delay)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

func (g *Guard) now() time.Time {
	if g.Now != nil {
		return g.Now()
	}
	return time.Now()
}

// keys returns the records a login counts against. The login name is
// hashed: it is the client's text, of any length, and it is a record key,
// not something to keep or log.
func (g *Guard) keys(user string, peer net.Addr) [2]string {
	h := sha256.Sum256([]byte(user))
	k := [2]string{"u:" + string(h[:16]), ""}
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
	// Bound the memory an address scan or a storm of made-up names can
	// take: drop stale records, then, if that was not enough, any records
	// (weakening the guard under such a flood rather than running out of
	// memory).
	if len(g.seen) > guardMaxKeys {
		for k, f := range g.seen {
			if now.Sub(f.last) > g.Window {
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
}

// Succeed clears the account's failures (not the peer's).
func (g *Guard) Succeed(user string, peer net.Addr) {
	if g == nil || g.Limit == 0 {
		return
	}
	k := g.keys(user, nil)
	g.mu.Lock()
	delete(g.seen, k[0])
	g.mu.Unlock()
}
