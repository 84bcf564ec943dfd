package main

import (
	"bufio"
	"context"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/control"
)

// TestReloadAppliesLogSettings: a reload (SIGHUP, or the control socket as
// here; both run the same reload) applies [log] level and trace to the
// running server.
func TestReloadAppliesLogSettings(t *testing.T) {
	dir, rt := t.TempDir(), t.TempDir()
	cfg := liveConfig(t, dir, "a@example.com")
	body, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	write(t, cfg, "[log]\nlevel = \"warn\"\n\n"+string(body))
	logs := startServe(t, rt, cfg)
	imapAddr := statusJSON(t, rt, cfg).Server.Listeners["listen.imap"]
	noop := func(tag string) {
		c, err := net.DialTimeout("tcp", imapAddr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		br := bufio.NewReader(c)
		br.ReadString('\n')
		c.Write([]byte(tag + " NOOP\r\n"))
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, tag+" OK") {
			t.Fatalf("NOOP: %q, %v", l, err)
		}
	}
	reload := func(level string, trace bool) {
		t.Helper()
		text := strings.Replace(string(body), "[listen]", "[log]\nlevel = \""+level+"\"\ntrace = "+map[bool]string{true: "true", false: "false"}[trace]+"\n\n[listen]", 1)
		write(t, cfg, text)
		ep, err := controlEndpoint(&env{getenv: func(string) string { return rt }}, cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := control.NewClient(ep).Reload(ctx); err != nil {
			t.Fatal(err)
		}
	}

	noop("quiet1")
	reload("debug", true)
	noop("loud")
	reload("info", true)
	noop("quiet2")
	got := logs.String()
	if strings.Contains(got, "quiet1 NOOP") || !strings.Contains(got, "loud NOOP") || strings.Contains(got, "quiet2 NOOP") {
		t.Errorf("wire lines: want only those of the session with level = debug and trace = true:\n%s", got)
	}
	if !strings.Contains(got, "config reloaded") || !strings.Contains(got, "log_level=DEBUG trace=true") {
		t.Errorf("the reload does not say what it applied:\n%s", got)
	}
}
