package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/doctor"
)

// squatIPv6 listens on [::1] at a port that is free on 127.0.0.1, as
// another local user's program would, until the test ends; it greets like
// the bridge's IMAP.
func squatIPv6(t *testing.T) string {
	t.Helper()
	for range 20 {
		ln, err := net.Listen("tcp", "[::1]:0")
		if err != nil {
			t.Fatalf("this machine has no IPv6 loopback: %v", err)
		}
		_, port, _ := net.SplitHostPort(ln.Addr().String())
		if v4, err := net.Listen("tcp", "127.0.0.1:"+port); err != nil {
			ln.Close()
			continue
		} else {
			v4.Close()
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] bridge ready\r\n"))
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		return port
	}
	t.Fatal("found no port free on 127.0.0.1 whose [::1] side could be taken")
	return ""
}

// listenConfig writes a config with IMAP on 127.0.0.1:port and the lines
// extra in [listen], a file store and a certificate in dir.
func listenConfig(t *testing.T, dir, port, extra string) string {
	t.Helper()
	body := fmt.Sprintf("[listen]\nimap = \"127.0.0.1:%s\"\nsmtp = \"\"\npop3 = \"\"\n%s\n[store]\nbackend = \"file\"\npath = %q\n\n[tls]\ncert_file = %q\nkey_file = %q\n",
		port, extra, filepath.Join(dir, "tokens.json"), filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"))
	p := filepath.Join(dir, "config.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestServeRefusesASquattedTwin: with another program on [::1] at the
// IMAP port, `bridge serve` exits 1 naming that address, and `doctor`
// flags it before; with listen.loopback_twin = false serve listens on
// 127.0.0.1 alone, and doctor, asking the running server, still flags the
// program on [::1].
func TestServeRefusesASquattedTwin(t *testing.T) {
	port := squatIPv6(t)
	dir, rt := t.TempDir(), t.TempDir()
	cfg := listenConfig(t, dir, port, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	_, stderr, code := runIn(ctx, rt, "--config", cfg, "serve")
	if code != 1 || !strings.Contains(stderr, "[::1]:"+port) || !strings.Contains(stderr, "listen.imap") {
		t.Fatalf("serve beside a squatter: exit %d, stderr %q; want 1 naming [::1]:%s", code, stderr, port)
	}
	listenStep := func() doctor.Step {
		t.Helper()
		out, _, _ := runIn(ctx, rt, "--config", cfg, "doctor", "--json")
		var rep doctor.Report
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("doctor --json: %v\n%s", err, out)
		}
		for _, s := range rep.Checks {
			if s.Name == "listen.imap" {
				return s
			}
		}
		t.Fatalf("no listen.imap check in %s", out)
		return doctor.Step{}
	}
	if s := listenStep(); s.Status != doctor.Fail || s.Diagnosis == nil || s.Diagnosis.ID != "listen-port-taken" || !strings.Contains(s.Detail, "[::1]:"+port) {
		t.Errorf("doctor without a server: %s %q", s.Status, s.Detail)
	}

	listenConfig(t, dir, port, "loopback_twin = false\n")
	startServe(t, rt, cfg)
	doc := statusJSON(t, rt, cfg)
	if got := doc.Server.Bound["listen.imap"]; !slices.Equal(got, []string{"127.0.0.1:" + port}) {
		t.Fatalf("bound %v, want 127.0.0.1:%s alone", got, port)
	}
	s := listenStep()
	if s.Status != doctor.Fail || !strings.Contains(s.Detail, "[::1]:"+port) {
		t.Errorf("doctor beside the server: %s %q, want the program on [::1] flagged", s.Status, s.Detail)
	}
}

// TestServeBindsBothLoopbacks: by default the IMAP listener answers on
// both loopbacks, the server says so, and doctor takes its word.
func TestServeBindsBothLoopbacks(t *testing.T) {
	dir, rt := t.TempDir(), t.TempDir()
	cfg := listenConfig(t, dir, "0", "")
	startServe(t, rt, cfg)
	bound := statusJSON(t, rt, cfg).Server.Bound["listen.imap"]
	if len(bound) != 2 || !strings.HasPrefix(bound[0], "127.0.0.1:") || !strings.HasPrefix(bound[1], "[::1]:") {
		t.Fatalf("bound %v, want 127.0.0.1 and [::1] at one port", bound)
	}
	_, port, _ := net.SplitHostPort(bound[0])
	listenConfig(t, dir, port, "")
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	out, _, _ := runIn(ctx, rt, "--config", cfg, "doctor", "--json")
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json: %v\n%s", err, out)
	}
	for _, s := range rep.Checks {
		if s.Name == "listen.imap" && (s.Status != doctor.Pass || strings.Count(s.Detail, "served by the running bridge") != 2) {
			t.Errorf("listen.imap: %s %q", s.Status, s.Detail)
		}
	}
}
