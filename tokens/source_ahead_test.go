package tokens_test

import (
	"context"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestBusyAccountTokensKeepHalfTheirLife: with one-hour tokens, logins
// at any moment while the account is in use start with at least 30
// minutes of token life and, after the first, never wait for a refresh,
// since RefreshAhead (the serve loop, every minute) renews the token in
// the background. A busy account refreshes at most 3 times in any hour;
// one nobody uses stops refreshing within the hour after its last login.
func TestBusyAccountTokensKeepHalfTheirLife(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{Lifetime: time.Hour}, store)
	src := e.source(store)
	ctx := context.Background()
	start := e.clock.Now()
	var refreshedAt []time.Duration // minutes since start of each refresh
	count := func(before int, at time.Duration) {
		for range e.srv.RefreshRequests() - before {
			refreshedAt = append(refreshedAt, at)
		}
	}
	// Four busy hours: logins at uneven moments (every 1 to 13 minutes),
	// the serve loop every minute.
	gaps := []int{1, 13, 2, 7, 11, 3, 5, 1, 1, 9, 12, 4}
	next, g := 0, 0
	for m := range 4 * 60 {
		at := time.Duration(m) * time.Minute
		if m == next {
			before := e.srv.RefreshRequests()
			tok, err := src.Token(ctx)
			if err != nil {
				t.Fatalf("minute %d: %v", m, err)
			}
			if left := tok.Expiry.Sub(e.clock.Now()); left < 30*time.Minute {
				t.Errorf("minute %d: a session starts with %v of token life, want at least 30m", m, left)
			}
			if m > 0 && e.srv.RefreshRequests() != before {
				t.Errorf("minute %d: the login waited for a refresh", m)
			}
			count(before, at)
			next += gaps[g%len(gaps)]
			g++
		}
		before := e.srv.RefreshRequests()
		src.RefreshAhead(ctx)
		count(before, at)
		e.clock.Advance(time.Minute)
	}
	for i := range refreshedAt {
		n := 0
		for _, r := range refreshedAt[i:] {
			if r-refreshedAt[i] < time.Hour {
				n++
			}
		}
		if n > 3 {
			t.Errorf("%d refreshes in the hour from minute %d, want at most 3", n, int(refreshedAt[i].Minutes()))
		}
	}
	if len(refreshedAt) < 8 {
		t.Errorf("%d refreshes in 4 busy hours: the token was not kept fresh", len(refreshedAt))
	}

	// Nobody logs in any more: a refresh or two within the hour, then none.
	lastUse := e.clock.Now().Sub(start) - time.Minute
	idle := e.srv.RefreshRequests()
	for range 3 * 60 {
		before := e.srv.RefreshRequests()
		src.RefreshAhead(ctx)
		if e.srv.RefreshRequests() != before && e.clock.Now().Sub(start)-lastUse >= time.Hour {
			t.Errorf("a refresh %v after the last login", e.clock.Now().Sub(start)-lastUse)
		}
		e.clock.Advance(time.Minute)
	}
	if n := e.srv.RefreshRequests() - idle; n > 3 {
		t.Errorf("%d refreshes in 3 idle hours, want at most 3", n)
	}
	e.noSecrets(t, "log", e.logs.String())
}

// TestRefreshAheadLeavesUnusedAccounts: an account that never had a login
// is never refreshed in the background, and neither is a token with most
// of its life left.
func TestRefreshAheadLeavesUnusedAccounts(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	for range 120 {
		src.RefreshAhead(context.Background())
		e.clock.Advance(time.Minute)
	}
	if n := e.srv.RefreshRequests(); n != 0 {
		t.Fatalf("%d refreshes for an account nobody used", n)
	}
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(20 * time.Minute)
	src.RefreshAhead(context.Background())
	if n := e.srv.RefreshRequests(); n != 1 {
		t.Errorf("%d refreshes with 40 of 60 minutes left, want only the first", n)
	}
}
