package bridge

import (
	"testing"
	"time"
)

// TestServerRefreshesTokensAhead: the running server renews the token of
// an account in use in the background, leaves an account nobody used
// alone, keeps to one background refresh per few minutes, and stops the
// loop at shutdown.
func TestServerRefreshesTokensAhead(t *testing.T) {
	t.Cleanup(leakCheck(t))
	old := refreshAheadEvery
	refreshAheadEvery = 10 * time.Millisecond
	t.Cleanup(func() { refreshAheadEvery = old })
	e := newServerEnv(t, false)
	// Tokens this short are always due for a refresh ahead.
	e.Tokens.SetLifetime(20 * time.Second)

	time.Sleep(100 * time.Millisecond)
	if n := e.Tokens.RefreshRequests(); n != 0 {
		t.Fatalf("%d refreshes for an account nobody used", n)
	}
	if err := e.imapLogin(e.addrs["listen.imap"]); err != nil {
		t.Fatalf("login: %v", err)
	}
	if !eventually(5*time.Second, func() bool { return e.Tokens.RefreshRequests() == 2 }) {
		t.Fatalf("%d refreshes, want the login's and one ahead", e.Tokens.RefreshRequests())
	}
	time.Sleep(100 * time.Millisecond)
	if n := e.Tokens.RefreshRequests(); n != 2 {
		t.Errorf("%d refreshes within a tenth of a second, want 2", n)
	}
	e.shutdown(t)
}
