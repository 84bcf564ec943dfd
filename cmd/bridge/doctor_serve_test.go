package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/control"
	"github.com/mailbridge/bridge/bridge/doctor"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestDoctorBesideServeRefreshesNothing: with a server running, doctor
// takes the access token from it over the control socket and refreshes
// nothing itself, so a platform that rotates strictly never sees two
// refreshers of one refresh token; the server's logins keep working.
func TestDoctorBesideServeRefreshesNothing(t *testing.T) {
	w := newDoctorWorldWith(t, "", tokenstest.Options{RevokeOnRotate: true})
	data, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	body := strings.Replace(string(data), "[tls]\n", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(w.dir, "cert.pem"), filepath.Join(w.dir, "key.pem")), 1)
	if err := os.WriteFile(w.cfg, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := t.TempDir()
	startServe(t, rt, w.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ep, err := controlEndpoint(&env{getenv: func(string) string { return rt }}, w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	// The server's first token costs it one refresh.
	if _, err := control.NewClient(ep).Token(ctx, "a@b.test"); err != nil {
		t.Fatal(err)
	}
	before := w.idp.RefreshRequests()

	out, stderr, code := runIn(ctx, rt, "--config", w.cfg, "doctor", "a@b.test", "--json")
	w.noSecrets(t, out+stderr)
	var rep doctor.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("doctor --json (exit %d): %v\n%s\n%s", code, err, out, stderr)
	}
	wantOK(t, &rep, "refresh", "access-token", "imap-login", "pop3-login", "smtp-login")
	if s := step(t, &rep, "refresh"); !strings.Contains(s.Detail, "running bridge") {
		t.Errorf("refresh step: %q", s.Detail)
	}
	if n := w.idp.RefreshRequests(); n != before {
		t.Errorf("doctor beside a running server made %d refreshes, want 0", n-before)
	}

	// The server's own sign-in still works.
	addr := statusJSON(t, rt, w.cfg).Server.Listeners["listen.imap"]
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	r := bufio.NewReader(c)
	r.ReadString('\n')
	fmt.Fprintf(c, "a1 LOGIN a@b.test %s\r\n", doctorPassword)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("login through the server: %v", err)
		}
		if strings.HasPrefix(line, "a1 ") {
			if !strings.HasPrefix(line, "a1 OK") {
				t.Errorf("login through the server after doctor: %q", line)
			}
			break
		}
	}
}
