package bridge

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// lastIMAP returns the ID of the account's last recorded IMAP diagnosis.
func (h *harness) lastIMAP(email string) string {
	for _, a := range h.B.Status().Accounts {
		if a.Email == email {
			return a.Last[IMAP].ID
		}
	}
	return ""
}

func TestIMAPModeDisabled(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.Disabled)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	c := h.dialIMAP(addr, "plain", nil)
	err := c.Login(alice, h.password(alice)).Wait()
	var ie *imap.Error
	if !errors.As(err, &ie) {
		t.Fatalf("login: %v, want a NO", err)
	}
	if ie.Type != imap.StatusResponseTypeNo || ie.Code != imap.ResponseCodeContactAdmin {
		t.Errorf("reply %s [%s], want NO [CONTACTADMIN]", ie.Type, ie.Code)
	}
	for _, want := range []string{`Microsoft said: "AUTHENTICATE failed."`, "bridge doctor " + alice} {
		if !strings.Contains(ie.Text, want) {
			t.Errorf("reply text %q lacks %q", ie.Text, want)
		}
	}
	if id := h.lastIMAP(alice); id != "imap-auth-failed" {
		t.Errorf("recorded diagnosis %q, want imap-auth-failed", id)
	}
	h.checkLogs()
}

func TestIMAPModeNotConnected(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.NotConnected)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	c := h.dialIMAP(addr, "plain", nil)
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	_, err := c.Select("INBOX", nil).Wait()
	if err == nil || !strings.Contains(err.Error(), "User is authenticated but not connected") {
		t.Errorf("select: %v, want Exchange's BAD relayed unchanged", err)
	}
	if !eventually(5*time.Second, func() bool { return h.lastIMAP(alice) == "imap-not-connected" }) {
		t.Errorf("recorded diagnosis %q, want imap-not-connected", h.lastIMAP(alice))
	}
}

// TestIMAPModeNotConnectedBye: the BYE some mailboxes send right after
// the login, instead of a BAD to the first mailbox command, gets the same
// diagnosis, with Microsoft's words kept.
func TestIMAPModeNotConnectedBye(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.NotConnectedBye)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN " + alice + " " + h.password(alice) + "\r\n")
	reply := w.expectPrefix("a1 NO ")
	if !strings.Contains(reply, "will not open the mailbox") || !strings.Contains(reply, "bridge doctor "+alice) {
		t.Errorf("reply %q", reply)
	}
	var last diag.Diagnosis
	for _, a := range h.B.Status().Accounts {
		if a.Email == alice {
			last = a.Last[IMAP]
		}
	}
	if last.ID != "imap-not-connected" || last.Raw != "User is authenticated but not connected." {
		t.Errorf("status shows %s, raw %q; want imap-not-connected with Microsoft's words", last.ID, last.Raw)
	}
	h.checkLogs()
}

func TestIMAPModeTokenExpiredMidSession(t *testing.T) {
	h := newHarness(t)
	h.IMAP.SetMode(bridgetest.TokenExpiredMidSession)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	c := h.dialIMAP(addr, "plain", nil)
	if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatalf("select: %v", err)
	}
	if h.lastIMAP(alice) != "" {
		t.Fatalf("diagnosis %q before the session ended", h.lastIMAP(alice))
	}
	h.IMAP.ExpireSessions()
	select {
	case <-c.Closed():
	case <-time.After(5 * time.Second):
		t.Fatal("client still connected after the upstream ended the session")
	}
	if !eventually(5*time.Second, func() bool { return h.lastIMAP(alice) == "imap-token-expired" }) {
		t.Errorf("recorded diagnosis %q, want imap-token-expired", h.lastIMAP(alice))
	}
}

func TestIMAPNeedsLogin(t *testing.T) {
	h := newHarness(t)
	h.Tokens.FailNext(1, tokenstest.InvalidGrant(700082, "The refresh token has expired due to inactivity."))
	addr, _ := h.startIMAP(FrontOptions{}, false)
	before := h.IMAP.Connections()
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN alice@example.com " + h.password(alice) + "\r\n")
	alert := w.expectPrefix("* OK [ALERT] ")
	if !strings.Contains(alert, "bridge login "+alice) {
		t.Errorf("alert %q does not name `bridge login %s`", alert, alice)
	}
	w.expect("a1 NO [AUTHENTICATIONFAILED] Sign-in needed: run `bridge login " + alice + "`")
	if got := h.IMAP.Connections(); got != before {
		t.Error("an upstream connection was opened without a token")
	}
	st := h.B.Status().Accounts[0]
	if st.Token.NeedsLogin == "" {
		t.Error("status does not say the account needs a sign-in")
	}
	if st.Last[IMAP].ID == "" {
		t.Error("no diagnosis recorded")
	}
}

func TestIMAPTokenEndpointDown(t *testing.T) {
	h := newHarness(t)
	h.Tokens.FailNext(10, tokenstest.ServerError())
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN alice@example.com " + h.password(alice) + "\r\n")
	w.c.SetReadDeadline(time.Now().Add(20 * time.Second))
	reply := w.expectPrefix("a1 NO [UNAVAILABLE] ")
	if !strings.Contains(reply, "bridge doctor") {
		t.Errorf("reply %q does not point to bridge doctor", reply)
	}
	if h.B.Status().Accounts[0].Token.NeedsLogin != "" {
		t.Error("a 5xx from the token endpoint marked the account as needing a sign-in")
	}
}

func TestIMAPUpstreamUnreachable(t *testing.T) {
	h := newHarness(t)
	ln := h.listen()
	dead := ln.Addr().String()
	ln.Close()
	h.setServer(IMAP, dead)
	addr, _ := h.startIMAP(FrontOptions{}, false)
	w := dialIMAPWire(t, addr)
	w.expectPrefix("* OK ")
	w.send("a1 LOGIN alice@example.com " + h.password(alice) + "\r\n")
	w.expectPrefix("a1 NO [UNAVAILABLE] ")
	if id := h.lastIMAP(alice); id != "upstream-unreachable" {
		t.Errorf("recorded diagnosis %q, want upstream-unreachable", id)
	}
}

// TestIMAPShutdownNoLeak ends live sessions (relayed, idling, pre-login)
// with Shutdown and checks that no goroutine outlives them.
func TestIMAPShutdownNoLeak(t *testing.T) {
	h := newHarness(t)
	s := NewIMAPServer(h.B, FrontOptions{})
	ln := h.listen()
	served := make(chan error, 1)
	go func() { served <- s.Serve(ln, false) }()
	addr := ln.Addr().String()

	// Warm up: the first login refreshes the token over a keep-alive HTTP
	// connection that stays open; later logins use the cached token.
	warm := h.dialIMAP(addr, "plain", nil)
	if err := warm.Login(alice, h.password(alice)).Wait(); err != nil {
		t.Fatalf("login: %v", err)
	}
	warm.Logout().Wait()
	warm.Close()
	if !eventually(5*time.Second, func() bool { return h.B.Status().Sessions[IMAP] == 0 }) {
		t.Fatal("warm-up session did not end")
	}
	noLeaks := leakCheck(t)

	var clients []*imapclient.Client
	for range 2 {
		c := h.dialIMAP(addr, "plain", nil)
		if err := c.Login(alice, h.password(alice)).Wait(); err != nil {
			t.Fatalf("login: %v", err)
		}
		if _, err := c.Select("INBOX", nil).Wait(); err != nil {
			t.Fatalf("select: %v", err)
		}
		clients = append(clients, c)
	}
	idle, err := clients[1].Idle()
	if err != nil {
		t.Fatalf("idle: %v", err)
	}
	pre := dialIMAPWire(t, addr)
	pre.expectPrefix("* OK ")
	if n := h.B.Status().Sessions[IMAP]; n != 2 {
		t.Errorf("live sessions %d, want 2", n)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	if err := s.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Shutdown with live sessions = %v, want the deadline error", err)
	}
	select {
	case err := <-served:
		if err == nil {
			t.Error("Serve returned nil after Shutdown")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Serve did not return after Shutdown")
	}
	for _, c := range clients {
		select {
		case <-c.Closed():
		case <-time.After(5 * time.Second):
			t.Fatal("a relayed client is still connected after Shutdown")
		}
	}
	idle.Wait()
	pre.expect("* BYE Server shutting down")
	pre.expectClosed(5 * time.Second)
	pre.c.Close()
	if n := h.B.Status().Sessions[IMAP]; n != 0 {
		t.Errorf("live sessions after Shutdown: %d", n)
	}
	noLeaks()
}
