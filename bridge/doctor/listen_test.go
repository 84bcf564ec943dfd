package doctor

import (
	"context"
	"crypto/tls"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mailbridge/bridge/bridge"
	"github.com/mailbridge/bridge/bridge/config"
	"github.com/mailbridge/bridge/tlsutil"
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

	ours := greeter(t, "* OK [CAPABILITY IMAP4rev1 STARTTLS AUTH=PLAIN] bridge ready")
	if s := checkListener(ctx, listener{"listen.imap", bridge.IMAP, false, ours}, nil, nil); s.Status != Pass || !strings.Contains(s.Detail, "served by a bridge") {
		t.Errorf("bridge greeting: %s %q", s.Status, s.Detail)
	}
	// An IMAP greeting on the POP3 port is not the bridge's POP3.
	if s := checkListener(ctx, listener{"listen.pop3", bridge.POP3, false, ours}, nil, nil); s.Status != Fail {
		t.Errorf("IMAP greeting on the POP3 key: %s %q", s.Status, s.Detail)
	}

	free := freeAddr(t)
	if s := checkListener(ctx, listener{"listen.smtp", bridge.SMTP, false, free}, nil, nil); s.Status != Pass || !strings.Contains(s.Detail, "free") {
		t.Errorf("free port: %s %q", s.Status, s.Detail)
	}
	served := map[string]string{"listen.smtp": free}
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
