package bridge

import (
	"context"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

// TestIMAPTokenExpiredByeForcesRefresh: after the upstream ends a session
// with "* BYE Session invalidated - AccessTokenExpired", the next login
// refreshes instead of presenting the refused token again.
func TestIMAPTokenExpiredByeForcesRefresh(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.TokenExpiredMidSession)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	c := h.dialIMAP(addr, "plain", nil)
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	src := h.B.Source(h.account(alice))
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	refreshes := h.Tokens.RefreshRequests()
	h.IMAP.ExpireSessions()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client still connected after the upstream ended the session")
	}
	if !eventually(5*time.Second, func() bool { return h.lastIMAP(alice) == "imap-token-expired" }) {
		t.Fatalf("diagnosis %q, want imap-token-expired", h.lastIMAP(alice))
	}

	h.IMAP.SetMode(bridgetest.Normal)
	c = h.dialIMAP(addr, "plain", nil)
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login after the BYE: %v", err)
	}
	if n := h.Tokens.RefreshRequests(); n != refreshes+1 {
		t.Errorf("refreshes after the BYE: %d, want %d", n-refreshes, 1)
	}
	next, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if next.AccessToken == first.AccessToken {
		t.Error("the refused access token is still in use")
	}
	h.checkLogs(first.AccessToken, next.AccessToken)
}
