package doctor

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
)

// greeter listens on 127.0.0.1:0 and sends line to every client, until
// the test ends.
func greeter(t *testing.T, line string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte(line + "\r\n"))
			c.Close()
		}
	}()
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	return ln.Addr().String()
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestCheckListener(t *testing.T) {
	ctx := context.Background()
	other := greeter(t, "* OK [CAPABILITY IMAP4rev1] Dovecot ready.")
	s := checkListener(ctx, listener{"listen.imap", bridge.IMAP, false, other}, nil, nil)
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "listen-port-taken" {
		t.Fatalf("port taken by another server: %s %+v", s.Status, s.Diagnosis)
	}
	for _, want := range []string{other, "listen.imap", "Dovecot"} {
		if !strings.Contains(s.Detail+s.Diagnosis.Fix, want) {
			t.Errorf("taken port: %q / %q lacks %q", s.Detail, s.Diagnosis.Fix, want)
		}
	}

	// The bridge's greeting alone proves nothing: anyone can send it.
	imitation := greeter(t, "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] bridge ready")
	s = checkListener(ctx, listener{"listen.imap", bridge.IMAP, false, imitation}, nil, nil)
	if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "listen-port-taken" || !strings.Contains(s.Detail, "greets like the bridge") {
		t.Errorf("an imitated bridge greeting: %s %q", s.Status, s.Detail)
	}
	// An IMAP greeting on the POP3 port is not the bridge's POP3.
	if s := checkListener(ctx, listener{"listen.pop3", bridge.POP3, false, imitation}, nil, nil); s.Status != Fail {
		t.Errorf("IMAP greeting on the POP3 key: %s %q", s.Status, s.Detail)
	}

	free := freeAddr(t)
	if s := checkListener(ctx, listener{"listen.smtp", bridge.SMTP, false, free}, nil, nil); s.Status != Pass || !strings.Contains(s.Detail, "free") {
		t.Errorf("free port: %s %q", s.Status, s.Detail)
	}
	served := []string{free}
	if s := checkListener(ctx, listener{"listen.smtp", bridge.SMTP, false, free}, served, nil); s.Status != Pass || !strings.Contains(s.Detail, "running bridge") {
		t.Errorf("served by the running bridge: %s %q", s.Status, s.Detail)
	}
}

// TestCheckListenerImplicitTLS: an implicit-TLS listener is probed with
// the local certificate verified: the bridge's own certificate passes, a
// listener with another certificate is someone else's.
func TestCheckListenerImplicitTLS(t *testing.T) {
	dir := t.TempDir()
	cfg := config.Default()
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	ours, _, err := tlsutil.LoadOrCreate(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	theirs, _, err := tlsutil.LoadOrCreate(filepath.Join(dir, "other.pem"), filepath.Join(dir, "otherkey.pem"))
	if err != nil {
		t.Fatal(err)
	}
	serve := func(cert tls.Certificate) string {
		ln, err := tls.Listen("tcp", "127.0.0.1:0", tlsutil.ServerConfig(cert, 0))
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				c.Write([]byte("* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] bridge ready\r\n"))
				c.Close()
			}
		}()
		t.Cleanup(func() { ln.Close(); <-done })
		return ln.Addr().String()
	}
	roots := localRoots(cfg)
	if roots == nil {
		t.Fatal("the local certificate was not loaded")
	}
	ctx := context.Background()
	if s := checkListener(ctx, listener{"listen.imaps", bridge.IMAP, true, serve(ours)}, nil, roots); s.Status != Pass {
		t.Errorf("our own TLS listener: %s %s", s.Status, s.Detail)
	}
	if s := checkListener(ctx, listener{"listen.imaps", bridge.IMAP, true, serve(theirs)}, nil, roots); s.Status != Fail {
		t.Errorf("a listener with another certificate: %s %s", s.Status, s.Detail)
	}
}

// runBridge serves cfg's listeners with a real bridge.Server and the
// local certificate in dir until the test ends; it returns the config
// (its certificate files set) and the bound addresses by key.
func runBridge(t *testing.T, dir string, listen config.Listen) (*config.Config, map[string][]string) {
	t.Helper()
	cfg := config.Default()
	cfg.Listen = listen
	cfg.TLS.CertFile, cfg.TLS.KeyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	cert, _, err := tlsutil.LoadOrCreate(cfg.TLS.CertFile, cfg.TLS.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	b, err := bridge.New(bridge.Options{Store: &memStore{m: map[string]tokens.Entry{}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := bridge.NewServer(cfg, b, tlsutil.ServerConfig(cert, 0))
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx, time.Second) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	})
	return cfg, srv.Bound()
}

// TestCheckListenersProveTheBridge: the bridge's six listeners pass the
// check without the running server's word, each by its local certificate
// (after STARTTLS or STLS on the plain ones), on both loopbacks.
func TestCheckListenersProveTheBridge(t *testing.T) {
	needIPv6(t)
	dir := t.TempDir()
	cfg, bound := runBridge(t, dir, config.Listen{IMAP: "127.0.0.1:0", IMAPS: "127.0.0.1:0", POP3: "127.0.0.1:0",
		POP3S: "[::1]:0", SMTP: "127.0.0.1:0", SMTPS: "127.0.0.1:0", LoopbackTwin: true})
	// The check reads the bound ports as if they were written in the
	// config.
	for _, l := range listeners(cfg.Listen) {
		addrs := bound[l.key]
		if len(addrs) != 2 {
			t.Fatalf("%s bound %v, want two addresses", l.key, addrs)
		}
		l.addr = addrs[0]
		s := checkListener(context.Background(), l, nil, localRoots(cfg))
		if s.Status != Pass || strings.Count(s.Detail, "is served by a bridge") != 2 {
			t.Errorf("%s: %s %q %+v, want both addresses proved", l.key, s.Status, s.Detail, s.Diagnosis)
		}
	}
	// Without the certificate, the same listeners cannot prove anything.
	l := listeners(cfg.Listen)[0]
	l.addr = bound[l.key][0]
	if s := checkListener(context.Background(), l, nil, x509.NewCertPool()); s.Status != Fail {
		t.Errorf("%s with other roots: %s %q", l.key, s.Status, s.Detail)
	}
}

// TestCheckListenerSquattedTwin: another program on [::1] at the port of
// a 127.0.0.1 listener fails the check, even when it greets like the
// bridge and the running bridge serves 127.0.0.1 (with loopback_twin
// off, say): a client told "localhost" may land there.
func TestCheckListenerSquattedTwin(t *testing.T) {
	needIPv6(t)
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	defer ln.Close()
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("+OK bridge POP3 ready\r\n"))
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(ln.Addr().String())
	addr := "127.0.0.1:" + port
	ctx := context.Background()
	for _, served := range [][]string{nil, {addr}} {
		s := checkListener(ctx, listener{"listen.pop3", bridge.POP3, false, addr}, served, nil)
		if s.Status != Fail || s.Diagnosis == nil || s.Diagnosis.ID != "listen-port-taken" {
			t.Fatalf("served %v: %s %q, want the twin flagged", served, s.Status, s.Detail)
		}
		for _, want := range []string{"[::1]:" + port, "localhost", "password", "127.0.0.1 rather than localhost"} {
			if !strings.Contains(s.Detail+s.Diagnosis.Cause+s.Diagnosis.Fix, want) {
				t.Errorf("served %v: %q / %q lacks %q", served, s.Detail, s.Diagnosis.Cause, want)
			}
		}
	}
	// Nothing on the other side: both addresses are free.
	ln.Close()
	<-done
	if s := checkListener(ctx, listener{"listen.pop3", bridge.POP3, false, addr}, nil, nil); s.Status != Pass || strings.Count(s.Detail, "is free") != 2 {
		t.Errorf("both sides free: %s %q", s.Status, s.Detail)
	}
}

func needIPv6(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", "[::1]:0")
	if err != nil {
		t.Fatalf("this machine has no IPv6 loopback: %v", err)
	}
	ln.Close()
}
