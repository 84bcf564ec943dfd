package control

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// fixture is a bridge.Server with an IMAP listener on 127.0.0.1:0 and a
// control server for it, both stopped at the end of the test.
type fixture struct {
	t      *testing.T
	cfg    string // config file
	srv    *bridge.Server
	ctl    *Server
	client *Client
	served chan error
	reload func() error
	store  tokens.Store
}

func writeConfig(t *testing.T, path string, emails ...string) {
	t.Helper()
	var b strings.Builder
	b.WriteString("[listen]\nimap = \"127.0.0.1:0\"\nsmtp = \"\"\npop3 = \"\"\n")
	for _, e := range emails {
		fmt.Fprintf(&b, "\n[[account]]\nemail = %q\nclient_id = \"test-client\"\n", e)
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
}

func loadConfig(path string) (*config.Config, error) {
	cfg, err := config.Load(path)
	if err != nil {
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func newFixture(t *testing.T, tcp bool, emails ...string) *fixture {
	t.Helper()
	return newFixtureWith(t, tcp, func(path string) { writeConfig(t, path, emails...) })
}

// newFixtureWith is newFixture with the config file written by write.
func newFixtureWith(t *testing.T, tcp bool, write func(path string)) *fixture {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{t: t, cfg: filepath.Join(dir, "config.toml"), served: make(chan error, 1)}
	write(f.cfg)
	cfg, err := loadConfig(f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tokens.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	f.store = st
	ep, err := NewEndpoint(filepath.Join(dir, "run"), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	ep.tcp = tcp
	f.ctl, err = Listen(ep)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Options{Accounts: accts, Store: st, OnEvent: f.ctl.Publish})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = bridge.NewServer(cfg, b, nil)
	if err := f.srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ran := make(chan error, 1)
	go func() { ran <- f.srv.Run(ctx, time.Second) }()
	f.reload = func() error {
		cfg, err := loadConfig(f.cfg)
		if err != nil {
			return err
		}
		return f.srv.Reload(cfg)
	}
	go func() { f.served <- f.ctl.Serve(Options{Server: f.srv, Reload: func() error { return f.reload() }}) }()
	f.client = NewClient(ep)
	t.Cleanup(func() {
		if err := f.ctl.Close(); err != nil {
			t.Errorf("control close: %v", err)
		}
		if err := <-f.served; err != nil {
			t.Errorf("control serve: %v", err)
		}
		cancel()
		<-ran
	})
	return f
}

func (f *fixture) status() *Status {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	st, err := f.client.Status(ctx)
	if err != nil {
		f.t.Fatalf("status: %v", err)
	}
	return st
}

func testStatus(t *testing.T, tcp bool) {
	f := newFixture(t, tcp, "a@example.com")
	b := f.srv.Bridge()
	done1, done2 := b.Track(bridge.IMAP), b.Track(bridge.IMAP)
	doneSMTP := b.Track(bridge.SMTP)
	st := f.status()
	if st.Sessions[bridge.IMAP] != 2 || st.Sessions[bridge.SMTP] != 1 || st.Sessions[bridge.POP3] != 0 {
		t.Errorf("sessions %v, want imap 2 smtp 1 pop3 0", st.Sessions)
	}
	if st.PID != os.Getpid() || st.Config != f.ctl.Endpoint().Config || st.Started.IsZero() {
		t.Errorf("pid %d config %q started %v", st.PID, st.Config, st.Started)
	}
	if want := f.srv.Addrs()["listen.imap"]; want == "" || st.Listeners["listen.imap"] != want {
		t.Errorf("listeners %v, want listen.imap = %q", st.Listeners, want)
	}
	if want := f.srv.Bound()["listen.imap"]; len(want) == 0 || !slices.Equal(st.Bound["listen.imap"], want) {
		t.Errorf("bound %v, want listen.imap = %v", st.Bound, want)
	}
	if len(st.Accounts) != 1 || st.Accounts[0].Email != "a@example.com" {
		t.Errorf("accounts %+v", st.Accounts)
	}
	done1()
	doneSMTP()
	if st := f.status(); st.Sessions[bridge.IMAP] != 1 || st.Sessions[bridge.SMTP] != 0 {
		t.Errorf("after two sessions ended: %v", st.Sessions)
	}
	done2()
}

func TestStatusUnixSocket(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets are not used on Windows")
	}
	testStatus(t, false)
}

func TestStatusTCP(t *testing.T) { testStatus(t, true) }

// TestStatusRefusedLogins: the wrong local passwords an account was given
// reach the control client's status, with the peer, the protocol and the
// client's IMAP ID name.
func TestStatusRefusedLogins(t *testing.T) {
	f := newFixture(t, false, "a@example.com")
	c, err := net.DialTimeout("tcp", f.srv.Addrs()["listen.imap"], 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "a ID (\"name\" \"Old Mail\")\r\nb LOGIN a@example.com wrong-Tt5\r\n")
	buf := make([]byte, 0, 512)
	for !strings.Contains(string(buf), "b NO ") {
		n, err := c.Read(buf[len(buf):cap(buf)])
		if err != nil {
			t.Fatalf("reading the replies: %v after %q", err, buf)
		}
		buf = buf[:len(buf)+n]
	}
	st := f.status()
	if len(st.Accounts) != 1 {
		t.Fatalf("accounts %+v", st.Accounts)
	}
	r := st.Accounts[0].Refused
	if r == nil || r.Count != 1 || r.LastPeer != "127.0.0.1" || r.LastProto != bridge.IMAP || r.LastClient != "Old Mail" || r.Last.IsZero() {
		t.Errorf("refused logins %+v, want one from 127.0.0.1 over IMAP by Old Mail", r)
	}
}

func TestTCPNeedsToken(t *testing.T) {
	f := newFixture(t, true, "a@example.com")
	info, err := readPortFile(f.ctl.Endpoint())
	if err != nil {
		t.Fatal(err)
	}
	for _, hdr := range []string{"", "Bearer wrong", "Bearer " + info.Token} {
		req, _ := http.NewRequest("GET", "http://"+info.Addr+"/status", nil)
		if hdr != "" {
			req.Header.Set("Authorization", hdr)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		want := http.StatusUnauthorized
		if hdr == "Bearer "+info.Token {
			want = http.StatusOK
		}
		if resp.StatusCode != want {
			t.Errorf("Authorization %q: %s, want %d", hdr, resp.Status, want)
		}
	}
	// A web page on any origin is refused even with the token.
	req, _ := http.NewRequest("GET", "http://"+info.Addr+"/status", nil)
	req.Header.Set("Authorization", "Bearer "+info.Token)
	req.Header.Set("Origin", "http://evil.example")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("request with Origin: %s, want 403", resp.Status)
	}
}

func TestReloadKeepsSessions(t *testing.T) {
	f := newFixture(t, false, "a@example.com")
	done := f.srv.Bridge().Track(bridge.IMAP)
	defer done()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	writeConfig(t, f.cfg, "a@example.com", "b@example.com")
	if err := f.client.Reload(ctx); err != nil {
		t.Fatalf("reload: %v", err)
	}
	st := f.status()
	if len(st.Accounts) != 2 || st.Accounts[1].Email != "b@example.com" {
		t.Fatalf("after reload: %+v", st.Accounts)
	}
	if st.Sessions[bridge.IMAP] != 1 {
		t.Errorf("live session lost in the reload: %v", st.Sessions)
	}

	// An invalid config comes back as an error and changes nothing.
	if err := os.WriteFile(f.cfg, []byte("[[account]]\nemial = \"c@example.com\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := f.client.Reload(ctx)
	if err == nil || !strings.Contains(err.Error(), "emial") {
		t.Fatalf("reload of a bad config: %v, want an error naming the bad key", err)
	}
	if st := f.status(); len(st.Accounts) != 2 || st.Sessions[bridge.IMAP] != 1 {
		t.Errorf("a failed reload changed the state: %+v", st)
	}
}

func TestEventsStream(t *testing.T) {
	f := newFixture(t, false, "a@example.com")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan bridge.Event, 4)
	ended := make(chan error, 1)
	go func() { ended <- f.client.Events(ctx, func(ev bridge.Event) { got <- ev }) }()

	// Publish until the subscriber is registered: the stream has no hello.
	a := f.srv.Bridge().Account("a@example.com")
	refusal := &diag.Failure{Proto: "smtp", Stage: "auth", Code: 535, Enhanced: "5.7.139",
		Text: "Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant."}
	deadline := time.Now().Add(5 * time.Second)
	for f.subscribers() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the event stream never subscribed")
		}
		time.Sleep(5 * time.Millisecond)
	}
	d := f.srv.Bridge().Record(a, bridge.SMTP, refusal)
	select {
	case ev := <-got:
		if ev.Account != "a@example.com" || ev.Proto != bridge.SMTP || ev.Diagnosis.ID != d.ID || d.ID == "" {
			t.Errorf("event %+v, want smtp %q for a@example.com", ev, d.ID)
		}
	case <-ctx.Done():
		t.Fatal("no event arrived")
	}
	// Closing the server ends the stream.
	f.ctl.Close()
	select {
	case err := <-ended:
		if !errors.Is(err, io.EOF) {
			t.Errorf("stream ended with %v, want io.EOF", err)
		}
	case <-ctx.Done():
		t.Fatal("the stream outlived the server")
	}
}

func (f *fixture) subscribers() int {
	f.ctl.mu.Lock()
	defer f.ctl.mu.Unlock()
	return len(f.ctl.subs)
}

func TestSecondServerRefused(t *testing.T) {
	dir := t.TempDir()
	ep, err := NewEndpoint(filepath.Join(dir, "run"), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	first, err := Listen(ep)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Listen(ep)
	var re *RunningError
	if !errors.As(err, &re) || re.PID != os.Getpid() || !strings.Contains(err.Error(), fmt.Sprint(os.Getpid())) {
		t.Fatalf("second Listen: %v, want a RunningError naming pid %d", err, os.Getpid())
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	// Once the first is gone, the endpoint is free again.
	again, err := Listen(ep)
	if err != nil {
		t.Fatalf("Listen after Close: %v", err)
	}
	again.Close()
}

func TestStaleSocketReplaced(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix sockets are not used on Windows")
	}
	dir := t.TempDir()
	ep, err := NewEndpoint(filepath.Join(dir, "run"), filepath.Join(dir, "config.toml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := ensureDir(ep.Dir); err != nil {
		t.Fatal(err)
	}
	// What a crashed server leaves: a socket file nobody listens on, and a
	// lock file with a pid but no lock.
	ln, err := net.Listen("unix", ep.Socket())
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	ln.Close()
	os.WriteFile(ep.LockFile(), []byte("999999\n"), 0o600)
	if _, err := os.Stat(ep.Socket()); err != nil {
		t.Fatalf("the stale socket is not there: %v", err)
	}
	if _, err := NewClient(ep).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
		t.Fatalf("status against a stale socket: %v, want ErrNotRunning", err)
	}
	s, err := Listen(ep)
	if err != nil {
		t.Fatalf("Listen over a stale socket: %v", err)
	}
	defer s.Close()
	if pid := readPID(ep.LockFile()); pid != os.Getpid() {
		t.Errorf("lock file holds pid %d, want %d", pid, os.Getpid())
	}
	fi, err := os.Stat(ep.Socket())
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	di, err := os.Stat(ep.Dir)
	if err != nil || di.Mode().Perm() != 0o700 {
		t.Errorf("dir mode %v (%v), want 0700", di.Mode().Perm(), err)
	}
}

func TestNotRunning(t *testing.T) {
	dir := t.TempDir()
	for _, tcp := range []bool{false, true} {
		ep, _ := NewEndpoint(dir, filepath.Join(dir, "config.toml"))
		ep.tcp = tcp
		if _, err := NewClient(ep).Status(context.Background()); !errors.Is(err, ErrNotRunning) {
			t.Errorf("tcp=%v: %v, want ErrNotRunning", tcp, err)
		}
	}
}

func TestEndpointNames(t *testing.T) {
	dir := t.TempDir()
	a, _ := NewEndpoint("/run", filepath.Join(dir, "a.toml"))
	b, _ := NewEndpoint("/run", filepath.Join(dir, "b.toml"))
	if a.Name == b.Name || a.Socket() == b.Socket() {
		t.Errorf("two configs share %q", a.Name)
	}
	t.Chdir(dir)
	rel, _ := NewEndpoint("/run", "a.toml")
	if rel.Name != a.Name || rel.Config != a.Config {
		t.Errorf("relative path gives %+v, absolute %+v", rel, a)
	}
	d, err := DefaultDir(func(k string) string {
		if k == "XDG_RUNTIME_DIR" {
			return "/run/user/1000"
		}
		return ""
	})
	if runtime.GOOS != "windows" && (err != nil || d != filepath.Join("/run/user/1000", "bridge")) {
		t.Errorf("DefaultDir with XDG_RUNTIME_DIR: %q %v", d, err)
	}
}

// TestServerLinksNoGUI keeps the tray's GUI library out of everything the
// server links.
func TestServerLinksNoGUI(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not in PATH")
	}
	out, err := exec.Command(goTool, "list", "-deps", "github.com/mailbridge/bridge/bridge/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "github.com/mailbridge/bridge/bridge/control") {
		t.Fatalf("go list output does not list this package:\n%s", out)
	}
	for _, line := range strings.Fields(string(out)) {
		if strings.Contains(line, "systray") {
			t.Errorf("the server links %s", line)
		}
	}
}
