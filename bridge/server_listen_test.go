package bridge

import (
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/mailbridge/bridge/bridge/config"
)

// squat listens on addr as another local program would, until the test
// ends.
func squat(t *testing.T, addr string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	return ln
}

// needIPv6Loopback fails the test on a machine without [::1]: the twin
// tests have nothing to check there.
func needIPv6Loopback(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("this machine has no IPv6 loopback: %v", err)
	}
	ln.Close()
}

// squattedTwin returns a port whose [::1] side another program holds
// until the test ends, while its 127.0.0.1 side is free.
func squattedTwin(t *testing.T) (port string) {
	t.Helper()
	for range 20 {
		sq := squat(t, "[::1]:0")
		_, port, _ = net.SplitHostPort(sq.Addr().String())
		if ln, err := net.Listen("tcp", "127.0.0.1:"+port); err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("found no port free on 127.0.0.1 whose [::1] side could be taken")
	return ""
}

// freePair returns a 127.0.0.1 address whose port is free on [::1] too.
func freePair(t *testing.T) string {
	t.Helper()
	for range 20 {
		ln := squat(t, "127.0.0.1:0")
		ln.Close()
		addr := ln.Addr().String()
		if twin, err := net.Listen("tcp", LoopbackTwin(addr)); err == nil {
			twin.Close()
			return addr
		}
	}
	t.Fatal("found no port free on both loopbacks")
	return ""
}

func listenServer(t *testing.T, edit func(*config.Listen)) (*Server, error) {
	t.Helper()
	h := newHarness(t)
	cfg := config.Default()
	cfg.Listen.IMAP, cfg.Listen.SMTP, cfg.Listen.POP3 = "127.0.0.1:0", "", ""
	edit(&cfg.Listen)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	srv := NewServer(cfg, h.B, h.Local)
	err := srv.Listen()
	if err == nil {
		t.Cleanup(func() {
			for _, b := range srv.lns {
				b.ln.Close()
			}
		})
	}
	return srv, err
}

// TestListenBindsTheLoopbackTwin: a listener on 127.0.0.1 is bound on
// [::1] at the same port too, even when the port is the system's pick.
func TestListenBindsTheLoopbackTwin(t *testing.T) {
	needIPv6Loopback(t)
	srv, err := listenServer(t, func(l *config.Listen) { l.SMTP = "[::1]:0" })
	if err != nil {
		t.Fatal(err)
	}
	bound := srv.Bound()
	for key, want := range map[string]string{"listen.imap": "[::1]", "listen.smtp": "127.0.0.1"} {
		addrs := bound[key]
		if len(addrs) != 2 {
			t.Fatalf("%s bound %v, want the address and its twin", key, addrs)
		}
		if twin := LoopbackTwin(addrs[0]); twin != addrs[1] || !strings.HasPrefix(twin, want) {
			t.Errorf("%s bound %v, want %s and its twin on %s", key, addrs, addrs[0], want)
		}
	}
}

// TestListenFailsOnASquattedTwin: another program on the [::1] side of a
// 127.0.0.1 listener stops Listen with an error naming both addresses and
// the way out; nothing stays bound.
func TestListenFailsOnASquattedTwin(t *testing.T) {
	needIPv6Loopback(t)
	port := squattedTwin(t)
	imap := freePair(t)
	srv, err := listenServer(t, func(l *config.Listen) { l.IMAP = imap; l.SMTP = "127.0.0.1:" + port })
	if err == nil {
		t.Fatalf("Listen bound %v beside a squatter on [::1]:%s", srv.Bound(), port)
	}
	for _, want := range []string{"listen.smtp", `"127.0.0.1:` + port + `"`, "[::1]:" + port, "loopback_twin = false"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if len(srv.Bound()) != 0 {
		t.Errorf("still bound after the failure: %v", srv.Bound())
	}
	// The IMAP listener and its twin, bound before the failure, were
	// closed again.
	for _, a := range []string{imap, LoopbackTwin(imap)} {
		squat(t, a).Close()
	}
}

// TestListenTwinOptOut: listen.loopback_twin = false binds the address as
// written alone, so a program on the [::1] side does not stop it.
func TestListenTwinOptOut(t *testing.T) {
	needIPv6Loopback(t)
	port := squattedTwin(t)
	srv, err := listenServer(t, func(l *config.Listen) { l.IMAP = "127.0.0.1:" + port; l.LoopbackTwin = false })
	if err != nil {
		t.Fatal(err)
	}
	if got := srv.Bound()["listen.imap"]; !slices.Equal(got, []string{"127.0.0.1:" + port}) {
		t.Errorf("bound %v, want 127.0.0.1:%s alone", got, port)
	}
}

func TestLoopbackTwin(t *testing.T) {
	for in, want := range map[string]string{
		"127.0.0.1:1143": "[::1]:1143", "[::1]:25": "127.0.0.1:25",
		"127.0.0.2:1143": "", "192.0.2.1:1143": "", "localhost:1143": "", "garbage": "",
	} {
		if got := LoopbackTwin(in); got != want {
			t.Errorf("LoopbackTwin(%q) = %q, want %q", in, got, want)
		}
	}
}
