package integration

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

// testClientID is the app registration the bridge signs in with; the
// identity platform in the tests accepts any.
const testClientID = "00000000-0000-0000-0000-00000000b1d9"

// bridgeFiles are the on-disk pieces of a bridge setup: the config, the
// file token store holding the seeded refresh token and local password,
// and the local certificate (signed by the test CA, so clients verify it).
type bridgeFiles struct {
	dir      string
	config   string
	password string
}

// writeBridgeFiles prepares a config whose single account points at the
// upstream's Dovecot and identity platform, with all six listeners on
// 127.0.0.1:0, and seeds the token store.
func writeBridgeFiles(t testing.TB, up *upstream) *bridgeFiles {
	t.Helper()
	dir := t.TempDir()
	_, certPEM, keyPEM, err := up.ca.Issue("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile := filepath.Join(dir, "local.crt"), filepath.Join(dir, "local.key")
	writeFile(t, certFile, certPEM, 0o644)
	writeFile(t, keyFile, keyPEM, 0o600)
	storePath := filepath.Join(dir, "tokens.json")
	st, err := tokens.OpenStore("file", storePath)
	if err != nil {
		t.Fatal(err)
	}
	_, refresh, _ := up.idp.Issue(testUser)
	pw, err := tokens.NewPassword()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(testUser, tokens.Entry{RefreshToken: refresh, Password: pw, Updated: time.Now()}); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`# bridge integration test
[listen]
imap  = "127.0.0.1:0"
imaps = "127.0.0.1:0"
smtp  = "127.0.0.1:0"
smtps = "127.0.0.1:0"
pop3  = "127.0.0.1:0"
pop3s = "127.0.0.1:0"

[store]
backend = "file"
path = %q

[tls]
cert_file = %q
key_file = %q
upstream_ca_file = %q

[log]
level = "debug"

[[account]]
email = %q
provider = "microsoft"
client_id = %q
imap = %q
pop3 = %q
smtp = %q
token_url = %q
`, storePath, certFile, keyFile, up.caFile, testUser, testClientID,
		up.dc.imaps, up.dc.pop3s, up.dc.subm, up.idp.TokenURL("common"))
	cfgPath := filepath.Join(dir, "config.toml")
	writeFile(t, cfgPath, []byte(conf), 0o600)
	return &bridgeFiles{dir: dir, config: cfgPath, password: pw}
}

// endpoints are the bridge's listeners by protocol and TLS mode.
type endpoints struct {
	imap, imaps, smtp, smtps, pop3, pop3s string
}

// fromAddrs maps the config keys Server.Addrs reports.
func fromAddrs(m map[string]string) endpoints {
	return endpoints{
		imap: m["listen.imap"], imaps: m["listen.imaps"],
		smtp: m["listen.smtp"], smtps: m["listen.smtps"],
		pop3: m["listen.pop3"], pop3s: m["listen.pop3s"],
	}
}

// env is one test's world: the upstream and a bridge in front of it.
type env struct {
	*upstream
	files    *bridgeFiles
	ep       endpoints
	user     string
	password string
	srv      *bridge.Server
	logs     *lockedBuffer
}

// newEnv starts Dovecot, the identity platform and the sink, and an
// in-process bridge configured from a file as `bridge serve` would be.
func newEnv(t testing.TB) *env {
	t.Helper()
	up := startUpstream(t, tokensOptions())
	return startBridgeFor(t, up)
}

// startBridgeFor runs an in-process bridge in front of up.
func startBridgeFor(t testing.TB, up *upstream) *env {
	t.Helper()
	return startBridgeFiles(t, up, writeBridgeFiles(t, up))
}

// startBridgeFiles runs an in-process bridge in front of up with the
// config and store in files.
func startBridgeFiles(t testing.TB, up *upstream, files *bridgeFiles) *env {
	t.Helper()
	cfg, err := config.Load(files.config)
	if err != nil {
		t.Fatalf("integration: loading the bridge config: %v", err)
	}
	accts, err := bridge.ResolveAccounts(cfg)
	if err != nil {
		t.Fatal(err)
	}
	st, err := tokens.OpenStore(cfg.Store.Backend, cfg.Store.Path)
	if err != nil {
		t.Fatal(err)
	}
	roots, err := tlsutil.UpstreamRoots(cfg.TLS.UpstreamCAFile)
	if err != nil {
		t.Fatal(err)
	}
	cert, _, err := tlsutil.LoadOrCreate(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	b, err := bridge.New(bridge.Options{Accounts: accts, Store: st, UpstreamRoots: roots, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	srv := bridge.NewServer(cfg, b, tlsutil.ServerConfig(cert, cfg.TLS.LocalMin()))
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, 2*time.Second) }()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			t.Errorf("integration: the bridge did not stop within 15 s")
		}
		if t.Failed() {
			t.Logf("bridge log (last 6 KB):\n%s", tail(logs.Bytes(), 6000))
		}
	})
	return &env{
		upstream: up, files: files, ep: fromAddrs(srv.Addrs()),
		user: testUser, password: files.password, srv: srv, logs: logs,
	}
}

// lockedBuffer is a bytes.Buffer safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// Bytes returns a copy of what was written.
func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// clientDir is a private HOME for one client run.
func clientDir(t testing.TB) string {
	t.Helper()
	d := t.TempDir()
	if err := os.Chmod(d, 0o700); err != nil {
		t.Fatal(err)
	}
	return d
}
