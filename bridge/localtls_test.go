package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
)

// TestLocalTLSLegacyClient: a client that speaks only TLS 1.0 is refused
// by default, and the log says what it offered and which setting lets it
// in; with local_min_version = "1.0" it gets in on implicit TLS and after
// STARTTLS (IMAP's, POP3's and go-smtp's).
func TestLocalTLSLegacyClient(t *testing.T) {
	h := newHarness(t)
	old := h.ClientTLS.Clone()
	old.ServerName = "localhost"
	old.MinVersion, old.MaxVersion = tls.VersionTLS10, tls.VersionTLS10

	run := func(min string) (addrs map[string]string, stop func()) {
		cfg := config.Default()
		cfg.Listen = config.Listen{IMAP: "127.0.0.1:0", IMAPS: "127.0.0.1:0", SMTP: "127.0.0.1:0", POP3: "127.0.0.1:0"}
		cfg.TLS.LocalMinVersion = min
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		srv := NewServer(cfg, h.B, tlsutil.ServerConfig(h.Local.Certificates[0], cfg.TLS.LocalMin()))
		if err := srv.Listen(); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- srv.Run(ctx, time.Second) }()
		return srv.Addrs(), func() { cancel(); <-done }
	}

	addrs, stop := run("")
	c, err := tls.Dial("tcp", addrs["listen.imaps"], old)
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.0 client got in with the default minimum")
	}
	stop()
	logs := h.logs.String()
	for _, want := range []string{"level=WARN", "local TLS handshake refused", "offered=1.0", "minimum=1.2",
		`local_min_version = \"1.0\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the log lacks %q:\n%s", want, logs)
		}
	}

	addrs, stop = run("1.0")
	defer stop()
	c, err = tls.Dial("tcp", addrs["listen.imaps"], old)
	if err != nil {
		t.Fatalf("TLS 1.0 client with local_min_version 1.0: %v", err)
	}
	greeting, _ := bufio.NewReader(c).ReadString('\n')
	if !strings.HasPrefix(greeting, "* OK ") || c.ConnectionState().Version != tls.VersionTLS10 {
		t.Errorf("implicit TLS 1.0: greeting %q, version %s", greeting, tlsutil.VersionName(c.ConnectionState().Version))
	}
	c.Close()

	// STARTTLS on IMAP and STLS on POP3: the bridge's own handshakes.
	for _, p := range []struct{ key, cmd, ok string }{
		{"listen.imap", "a STARTTLS\r\n", "a OK"},
		{"listen.pop3", "STLS\r\n", "+OK"},
	} {
		raw, err := net.Dial("tcp", addrs[p.key])
		if err != nil {
			t.Fatal(err)
		}
		raw.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(raw)
		br.ReadString('\n')
		raw.Write([]byte(p.cmd))
		if l, _ := br.ReadString('\n'); !strings.HasPrefix(l, p.ok) {
			t.Fatalf("%s: %q", p.cmd, l)
		}
		tc := tls.Client(raw, old)
		if err := tc.Handshake(); err != nil {
			t.Errorf("%s with TLS 1.0: %v", strings.TrimSpace(p.cmd), err)
		}
		tc.Close()
	}
	sc, err := smtp.DialStartTLS(addrs["listen.smtp"], old)
	if err != nil {
		t.Fatalf("SMTP STARTTLS with TLS 1.0: %v", err)
	}
	if err := sc.Noop(); err != nil { // the handshake runs here
		t.Fatalf("SMTP after STARTTLS with TLS 1.0: %v", err)
	}
	if st, ok := sc.TLSConnectionState(); !ok || st.Version != tls.VersionTLS10 {
		t.Errorf("SMTP STARTTLS: version %s", tlsutil.VersionName(st.Version))
	}
	sc.Close()
}
