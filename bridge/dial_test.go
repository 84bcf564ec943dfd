package bridge

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/diag"
)

// TestDialUpstreamRefusesEmptyHost: a server setting without a host gives
// no name to verify the upstream's certificate against, so nothing is
// dialed (":port" would reach this machine) and the failure is a TLS one.
func TestDialUpstreamRefusesEmptyHost(t *testing.T) {
	h := newHarness(t)
	ln := h.listen()
	defer ln.Close()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	for _, p := range []Proto{IMAP, POP3, SMTP} {
		h.setServer(p, ":"+port)
		c, err := h.B.DialUpstream(context.Background(), h.account(alice), p)
		if err == nil {
			c.Close()
			t.Fatalf("%s: DialUpstream to %q succeeded", p, ":"+port)
		}
		var f *diag.Failure
		if !errors.As(err, &f) || f.Stage != "tls" || !strings.Contains(err.Error(), "names no host") {
			t.Errorf("%s: err = %v, want a TLS failure saying the host is missing", p, err)
		}
	}
	ln.(*net.TCPListener).SetDeadline(time.Now().Add(100 * time.Millisecond))
	if c, err := ln.Accept(); err == nil {
		c.Close()
		t.Error("the upstream port was dialed")
	}
}
