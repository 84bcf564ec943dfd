package bridge

import (
	"strings"
	"testing"
)

// TestReloadSwitchesTrace: [log] trace changed by a reload applies to the
// connections that start after it, on every protocol, without a restart.
func TestReloadSwitchesTrace(t *testing.T) {
	e := newServerEnv(t, false)
	session := func(marker string) {
		w := dialIMAPWire(t, e.addrs["listen.imap"])
		w.expectPrefix("* OK")
		w.send(marker + " NOOP\r\n")
		w.expectPrefix(marker + " OK")
		w.send("z LOGOUT\r\n")
		w.expectPrefix("* BYE")
	}
	traced := func(marker string) bool { return strings.Contains(e.logs.String(), marker+" NOOP") }

	session("off1")
	cfg := *e.srv.cfg
	cfg.Log.Trace = true
	if err := e.srv.Reload(&cfg); err != nil {
		t.Fatal(err)
	}
	session("on1")
	off := cfg
	off.Log.Trace = false
	if err := e.srv.Reload(&off); err != nil {
		t.Fatal(err)
	}
	session("off2")
	if traced("off1") || !traced("on1") || traced("off2") {
		t.Errorf("traced before the reload %v, after trace = true %v, after trace = false %v; want false, true, false\n%s",
			traced("off1"), traced("on1"), traced("off2"), e.logs.String())
	}
}
