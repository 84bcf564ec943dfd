package tlsutil

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestTestCAIssue(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, certPEM, keyPEM, err := ca.Issue("mail.example.test", "127.0.0.1", "::1")
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"mail.example.test", "127.0.0.1", "::1"} {
		if _, err := cert.Leaf.Verify(x509.VerifyOptions{DNSName: h, Roots: ca.Pool}); err != nil {
			t.Errorf("Verify %s against the CA pool: %v", h, err)
		}
	}
	if cert.Leaf.IsCA {
		t.Error("issued leaf is a CA")
	}
	// The PEM form must load to the same certificate and key.
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("X509KeyPair on Issue's PEM: %v", err)
	}
	if !bytes.Equal(pair.Certificate[0], cert.Certificate[0]) {
		t.Error("PEM certificate differs from the tls.Certificate")
	}
	if _, _, _, err := ca.Issue(); err == nil {
		t.Error("Issue with no hosts succeeded")
	}
}

func TestTestCAWriteCA(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "ca.pem")
	if err := ca.WriteCA(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(data) || !pool.Equal(ca.Pool) {
		t.Error("written CA file does not hold the CA certificate")
	}
	if err := ca.WriteCA(filepath.Join(t.TempDir(), "no", "such", "dir", "ca.pem")); err == nil {
		t.Error("WriteCA into a missing directory succeeded")
	}
}

func TestTrustHint(t *testing.T) {
	path := "/home/a b/.config/bridge/cert.pem"
	h := TrustHint(path)
	for _, want := range []string{
		"never installs",
		"security add-trusted-cert",
		"login.keychain",
		"certutil -user -addstore Root",
		`"` + path + `"`,
		`'/home/a b/.config/bridge/cert.pem'`,
		"update-ca-certificates",
	} {
		if !strings.Contains(h, want) {
			t.Errorf("TrustHint lacks %q:\n%s", want, h)
		}
	}
	if got := shellQuote("/tmp/it's.pem"); got != `'/tmp/it'\''s.pem'` {
		t.Errorf("shellQuote = %s", got)
	}
	if got := shellQuote("/tmp/cert.pem"); got != "/tmp/cert.pem" {
		t.Errorf("shellQuote of a plain path = %s", got)
	}
}
