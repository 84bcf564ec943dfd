package bridge

import (
	"context"
	"crypto/tls"
	"strings"
	"testing"
	"time"
)

// TestPOP3ShutdownCutsLoginInProgress: a login waiting on an upstream that
// took the TLS handshake and then says nothing must not hold Shutdown past
// its grace period (until the pre-login timeout, a minute by default).
func TestPOP3ShutdownCutsLoginInProgress(t *testing.T) {
	env := newPOP3Env(t, func(o *FrontOptions) { o.PreLoginTimeout = 20 * time.Second })

	ln, err := tls.Listen("tcp", "127.0.0.1:0", env.UpstreamTLS)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan struct{})
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		c.(*tls.Conn).Handshake()
		close(accepted)
		buf := make([]byte, 1)
		c.SetReadDeadline(time.Now().Add(30 * time.Second))
		c.Read(buf) // silent until the bridge goes away
	}()
	env.setServer(POP3, ln.Addr().String())

	c := env.dial(env.plain, false)
	c.ok("USER " + pop3TestUser)
	c.send("PASS " + pop3TestPassword)
	select {
	case <-accepted:
	case <-time.After(10 * time.Second):
		t.Fatal("the bridge never reached the upstream")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	env.srv.Shutdown(ctx)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Shutdown took %v with a login waiting on the upstream", d)
	}
	c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if l, err := c.br.ReadString('\n'); err == nil && strings.HasPrefix(l, "+OK") {
		t.Errorf("login answered %q after Shutdown", l)
	}
}
