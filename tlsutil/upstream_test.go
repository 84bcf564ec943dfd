package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeTestCA returns a fresh CA and the path of its PEM file.
func writeTestCA(t *testing.T) (*TestCA, string) {
	t.Helper()
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCA(path); err != nil {
		t.Fatal(err)
	}
	return ca, path
}

// upstreamConfig is UpstreamConfig with the roots of caFile.
func upstreamConfig(t *testing.T, hostport, caFile string) *tls.Config {
	t.Helper()
	roots, err := UpstreamRoots(caFile)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := UpstreamConfig(hostport, roots)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func serveLeaf(t *testing.T, ca *TestCA, hosts ...string) string {
	t.Helper()
	leaf, _, _, err := ca.Issue(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return serveTLS(t, ServerConfig(leaf, 0))
}

func TestUpstreamConfigVerifiesTestCALeaf(t *testing.T) {
	ca, caFile := writeTestCA(t)
	cfg := upstreamConfig(t, "outlook.example.test", caFile)
	if cfg.InsecureSkipVerify {
		t.Fatal("InsecureSkipVerify is set")
	}
	if cfg.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion = %#x, want at least TLS 1.2", cfg.MinVersion)
	}
	if cfg.ServerName != "outlook.example.test" {
		t.Errorf("ServerName = %q", cfg.ServerName)
	}
	addr := serveLeaf(t, ca, "outlook.example.test", "127.0.0.1")
	state, err := handshake(addr, cfg)
	if err != nil {
		t.Fatalf("handshake with an Issue'd leaf: %v", err)
	}
	if state.ServerName != "outlook.example.test" {
		t.Errorf("SNI sent = %q, want outlook.example.test", state.ServerName)
	}
	if len(state.VerifiedChains) == 0 {
		t.Error("no verified chain: the certificate was not verified")
	}
}

func TestUpstreamConfigAcceptsHostPort(t *testing.T) {
	ca, caFile := writeTestCA(t)
	cfg := upstreamConfig(t, "imap.example.test:993", caFile)
	if cfg.ServerName != "imap.example.test" {
		t.Errorf("ServerName = %q, want imap.example.test", cfg.ServerName)
	}
	if _, err := handshake(serveLeaf(t, ca, "imap.example.test"), cfg); err != nil {
		t.Errorf("handshake: %v", err)
	}
	if cfg := upstreamConfig(t, "[::1]:993", caFile); cfg.ServerName != "::1" {
		t.Errorf("ServerName = %q, want ::1", cfg.ServerName)
	}
}

// TestUpstreamConfigRefusesEmptyName: with no host there is no name to
// verify the certificate against, and the tokens must not go to a server
// that was not verified.
func TestUpstreamConfigRefusesEmptyName(t *testing.T) {
	for _, hp := range []string{"", ":993", "[]:993", "[]"} {
		cfg, err := UpstreamConfig(hp, nil)
		if err == nil {
			t.Errorf("UpstreamConfig(%q) = ServerName %q, want an error", hp, cfg.ServerName)
		} else if !strings.Contains(err.Error(), "names no host") {
			t.Errorf("UpstreamConfig(%q): err = %v, want it to say the host is missing", hp, err)
		}
	}
}

func TestUpstreamConfigRefusesWrongName(t *testing.T) {
	ca, caFile := writeTestCA(t)
	cfg := upstreamConfig(t, "outlook.example.test", caFile)
	_, err := handshake(serveLeaf(t, ca, "evil.example.test"), cfg)
	var hostErr x509.HostnameError
	if !errors.As(err, &hostErr) {
		t.Errorf("leaf for the wrong name: err = %v, want an x509.HostnameError", err)
	}
}

func TestUpstreamConfigRefusesUnknownCA(t *testing.T) {
	_, caFile := writeTestCA(t)
	other, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cfg := upstreamConfig(t, "outlook.example.test", caFile)
	_, err = handshake(serveLeaf(t, other, "outlook.example.test"), cfg)
	var unknown x509.UnknownAuthorityError
	if !errors.As(err, &unknown) {
		t.Errorf("leaf from an unknown CA: err = %v, want an x509.UnknownAuthorityError", err)
	}
}

func TestUpstreamRootsBadFile(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.pem")
	garbage := filepath.Join(dir, "garbage.pem")
	if err := os.WriteFile(garbage, []byte("not a certificate\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{missing, garbage} {
		if _, err := UpstreamRoots(f); err == nil || !strings.Contains(err.Error(), f) {
			t.Errorf("UpstreamRoots(%s): err = %v, want an error naming the file", f, err)
		}
	}
	if _, err := UpstreamRoots(missing); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: err = %v, want it to wrap os.ErrNotExist", err)
	}
}

func TestUpstreamRootsKeepsSystemRoots(t *testing.T) {
	sys, err := x509.SystemCertPool()
	if err != nil {
		t.Skipf("no system certificate pool on this platform: %v", err)
	}
	ca, caFile := writeTestCA(t)
	pool, err := UpstreamRoots(caFile)
	if err != nil {
		t.Fatal(err)
	}
	if pool == nil {
		t.Fatal("UpstreamRoots returned nil with a CA file")
	}
	// The pool must still verify the test CA's leaves...
	leaf, _, _, err := ca.Issue("mx.example.test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: "mx.example.test", Roots: pool}); err != nil {
		t.Errorf("verify against UpstreamRoots: %v", err)
	}
	// ...and hold the system roots besides it.
	want, err := x509.SystemCertPool()
	if err != nil {
		t.Fatal(err)
	}
	want.AddCert(ca.Cert)
	if !pool.Equal(want) {
		t.Error("UpstreamRoots is not the system pool plus the CA file")
	}
	none, err := UpstreamRoots("")
	if err != nil {
		t.Fatal(err)
	}
	if none == nil || !none.Equal(sys) {
		t.Error("UpstreamRoots(\"\") is not the system pool")
	}
}
