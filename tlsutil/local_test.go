package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestLoadOrCreateGeneratesThenReloads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "nested", "bridge")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")

	cert1, info1, err := LoadOrCreate(certFile, keyFile)
	if err != nil {
		t.Fatalf("first LoadOrCreate: %v", err)
	}
	if !info1.Generated {
		t.Error("first call: Generated = false, want true")
	}
	if info1.CertFile != certFile || info1.KeyFile != keyFile {
		t.Errorf("Info files = %q, %q; want %q, %q", info1.CertFile, info1.KeyFile, certFile, keyFile)
	}
	if want := Fingerprint(cert1.Certificate[0]); info1.SHA256 != want {
		t.Errorf("Info.SHA256 = %s, want %s", info1.SHA256, want)
	}
	lifetime := time.Until(info1.NotAfter)
	if lifetime < LocalValidity-time.Hour || lifetime > LocalValidity {
		t.Errorf("NotAfter is %v from now, want about %v", lifetime, LocalValidity)
	}
	// Apple platforms refuse server certificates valid longer than 825 days.
	if leaf := cert1.Leaf; leaf.NotAfter.Sub(leaf.NotBefore) > 825*24*time.Hour {
		t.Errorf("validity %v exceeds 825 days", leaf.NotAfter.Sub(leaf.NotBefore))
	}

	cert2, info2, err := LoadOrCreate(certFile, keyFile)
	if err != nil {
		t.Fatalf("second LoadOrCreate: %v", err)
	}
	if info2.Generated {
		t.Error("second call: Generated = true, want false")
	}
	if info2.SHA256 != info1.SHA256 {
		t.Errorf("reloaded fingerprint %s differs from generated %s", info2.SHA256, info1.SHA256)
	}
	if !info2.NotAfter.Equal(info1.NotAfter) {
		t.Errorf("reloaded NotAfter %v differs from %v", info2.NotAfter, info1.NotAfter)
	}
	if cert2.Leaf == nil {
		t.Error("reloaded certificate has no Leaf")
	}
	k, ok := cert2.PrivateKey.(*ecdsa.PrivateKey)
	if !ok || k.Curve != elliptic.P256() {
		t.Errorf("key is %T, want ECDSA P-256", cert2.PrivateKey)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 2 {
		names := []string{}
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("directory holds %v, want only cert.pem and key.pem", names)
	}
}

func TestLoadOrCreateFileModes(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Unix permission bits are not available on Windows")
	}
	dir := filepath.Join(t.TempDir(), "bridge")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, _, err := LoadOrCreate(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	// The files are chmod'ed explicitly, so the umask does not apply.
	for _, c := range []struct {
		path string
		want os.FileMode
	}{{keyFile, 0o600}, {certFile, 0o644}} {
		fi, err := os.Stat(c.path)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode(); got != c.want {
			t.Errorf("%s mode = %v, want %v", c.path, got, c.want)
		}
	}
	// The directory comes from MkdirAll, which the umask may narrow further.
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got&^0o700 != 0 {
		t.Errorf("%s mode = %v, want no access beyond the owner", dir, got)
	}
}

func TestLoadOrCreateCoversLoopback(t *testing.T) {
	dir := t.TempDir()
	cert, _, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	leaf := cert.Leaf
	if leaf.IsCA {
		t.Error("local certificate is a CA; it must be an end entity")
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool}); err != nil {
			t.Errorf("Verify for %s: %v", host, err)
		}
	}
	if _, err := leaf.Verify(x509.VerifyOptions{DNSName: "example.com", Roots: pool}); err == nil {
		t.Error("Verify for example.com succeeded; the certificate must cover loopback names only")
	}
}

func TestLoadOrCreateOneFileMissing(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if _, _, err := LoadOrCreate(certFile, keyFile); err != nil {
		t.Fatal(err)
	}
	orig, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreate(certFile, keyFile)
	if err == nil || !strings.Contains(err.Error(), keyFile) || !strings.Contains(err.Error(), "does not") {
		t.Errorf("cert without key: err = %v, want one naming %s as missing", err, keyFile)
	}
	if now, _ := os.ReadFile(certFile); string(now) != string(orig) {
		t.Error("the existing certificate was modified")
	}

	if err := os.Remove(certFile); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, []byte("placeholder"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = LoadOrCreate(certFile, keyFile)
	if err == nil || !strings.Contains(err.Error(), certFile) {
		t.Errorf("key without cert: err = %v, want one naming %s", err, certFile)
	}
}

func TestLoadOrCreateMismatchedPair(t *testing.T) {
	dir := t.TempDir()
	c1, k1 := filepath.Join(dir, "c1.pem"), filepath.Join(dir, "k1.pem")
	c2, k2 := filepath.Join(dir, "c2.pem"), filepath.Join(dir, "k2.pem")
	for _, p := range [][2]string{{c1, k1}, {c2, k2}} {
		if _, _, err := LoadOrCreate(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := LoadOrCreate(c1, k2)
	if err == nil || !strings.Contains(err.Error(), c1) {
		t.Errorf("mismatched pair: err = %v, want an error naming %s", err, c1)
	}
}

func TestLoadOrCreateLoadsForeignPair(t *testing.T) {
	// A certificate the user supplies (here from a CA) is loaded as is.
	_, cert, certPEM, keyPEM := issue(t, "mail.example.test")
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	if err := os.WriteFile(certFile, certPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	_, info, err := LoadOrCreate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	if info.Generated || info.SHA256 != Fingerprint(cert.Certificate[0]) {
		t.Errorf("Info = %+v, want the issued certificate's fingerprint, not generated", info)
	}
}

func TestLoadOrCreateOnlyOnePathSet(t *testing.T) {
	_, _, err := LoadOrCreate(filepath.Join(t.TempDir(), "c.pem"), "")
	if err == nil {
		t.Error("LoadOrCreate with an empty key path succeeded")
	}
}

func TestDefaultPaths(t *testing.T) {
	base, err := os.UserConfigDir()
	if err != nil {
		t.Skipf("no user config directory on this system: %v", err)
	}
	certFile, keyFile, err := DefaultPaths()
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(base, "bridge", "cert.pem"); certFile != want {
		t.Errorf("certFile = %s, want %s", certFile, want)
	}
	if want := filepath.Join(base, "bridge", "key.pem"); keyFile != want {
		t.Errorf("keyFile = %s, want %s", keyFile, want)
	}
}

func TestFingerprint(t *testing.T) {
	// SHA-256 of the empty input, a published constant.
	const want = "E3:B0:C4:42:98:FC:1C:14:9A:FB:F4:C8:99:6F:B9:24:27:AE:41:E4:64:9B:93:4C:A4:95:99:1B:78:52:B8:55"
	if got := Fingerprint(nil); got != want {
		t.Errorf("Fingerprint(nil) = %s, want %s", got, want)
	}
	dir := t.TempDir()
	_, info, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(info.CertFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("certificate file is not PEM")
	}
	if got := Fingerprint(block.Bytes); got != info.SHA256 {
		t.Errorf("fingerprint of the file's DER = %s, Info says %s", got, info.SHA256)
	}
}

func TestServerConfigHandshake(t *testing.T) {
	dir := t.TempDir()
	cert, info, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	srv := ServerConfig(cert, 0)
	if srv.MinVersion < tls.VersionTLS12 {
		t.Errorf("MinVersion = %#x, want at least TLS 1.2", srv.MinVersion)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)

	addr := serveTLS(t, srv)
	state, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("handshake trusting the local certificate: %v", err)
	}
	if got := Fingerprint(state.PeerCertificates[0].Raw); got != info.SHA256 {
		t.Errorf("server presented %s, want %s", got, info.SHA256)
	}

	// A client that does not trust the certificate must fail.
	if _, err := handshake(addr, &tls.Config{RootCAs: x509.NewCertPool(), ServerName: "127.0.0.1"}); err == nil {
		t.Error("handshake succeeded without trusting the certificate")
	}
	// A client limited to TLS 1.1 must be refused.
	if _, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("handshake with TLS 1.1 succeeded; the floor is TLS 1.2")
	}
}

// TestLoadLocalChangesNothing: LoadLocal gives LoadOrCreate's verdict on
// what exists, and writes nothing when neither file does.
func TestLoadLocalChangesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sub")
	certFile, keyFile := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	_, info, found, err := LoadLocal(certFile, keyFile)
	if err != nil || found || info.CertFile != certFile || info.KeyFile != keyFile {
		t.Fatalf("neither file: found %v, info %+v, err %v; want not found, the two paths, no error", found, info, err)
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Fatalf("LoadLocal created %s (stat: %v)", dir, err)
	}
	_, made, err := LoadOrCreate(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	_, info, found, err = LoadLocal(certFile, keyFile)
	if err != nil || !found || info.SHA256 != made.SHA256 || info.Generated {
		t.Fatalf("both files: found %v, info %+v, err %v", found, info, err)
	}
	if err := os.Remove(keyFile); err != nil {
		t.Fatal(err)
	}
	if _, _, found, err = LoadLocal(certFile, keyFile); err == nil || found || !strings.Contains(err.Error(), keyFile) {
		t.Fatalf("certificate without key: found %v, err %v; want an error naming %s", found, err, keyFile)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Fatal("LoadLocal wrote a key")
	}
}

// TestServerConfigLegacyVersions: with minVersion TLS 1.0, a client that
// speaks only TLS 1.0 (and so only the CBC suites) completes the handshake
// on the generated ECDSA certificate; Go's server default would refuse it.
func TestServerConfigLegacyVersions(t *testing.T) {
	dir := t.TempDir()
	cert, _, err := LoadOrCreate(filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	tls10 := &tls.Config{RootCAs: pool, ServerName: "localhost", MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
	for _, v := range []string{"1.0", "1.1"} {
		min, err := ParseVersion(v)
		if err != nil {
			t.Fatal(err)
		}
		addr := serveTLS(t, ServerConfig(cert, min))
		tls11 := tls10.Clone()
		tls11.MaxVersion = tls.VersionTLS11
		state, err := handshake(addr, tls11)
		if err != nil {
			t.Fatalf("min %s: TLS 1.1 client: %v", v, err)
		}
		if state.Version != tls.VersionTLS11 {
			t.Errorf("min %s: negotiated %s, want 1.1", v, VersionName(state.Version))
		}
		state, err = handshake(addr, tls10)
		if v == "1.1" {
			if err == nil {
				t.Error("min 1.1: a TLS 1.0 client got in")
			}
			continue
		}
		if err != nil {
			t.Fatalf("min 1.0: TLS 1.0 client: %v", err)
		}
		if state.Version != tls.VersionTLS10 {
			t.Errorf("min 1.0: negotiated %s", VersionName(state.Version))
		}
	}
	addr := serveTLS(t, ServerConfig(cert, tls.VersionTLS13))
	if _, err := handshake(addr, &tls.Config{RootCAs: pool, ServerName: "localhost", MaxVersion: tls.VersionTLS12}); err == nil {
		t.Error("min 1.3: a TLS 1.2 client got in")
	}
}

func TestParseVersion(t *testing.T) {
	for s, want := range map[string]uint16{"": 0, "1.0": tls.VersionTLS10, "1.1": tls.VersionTLS11, "1.2": tls.VersionTLS12, "1.3": tls.VersionTLS13} {
		got, err := ParseVersion(s)
		if err != nil || got != want {
			t.Errorf("ParseVersion(%q) = %#x, %v; want %#x", s, got, err, want)
		}
		if want != 0 && VersionName(got) != s {
			t.Errorf("VersionName(%#x) = %q, want %q", got, VersionName(got), s)
		}
	}
	for _, s := range []string{"1", "TLS1.2", "1.4", "ssl3"} {
		if _, err := ParseVersion(s); err == nil {
			t.Errorf("ParseVersion(%q) accepted", s)
		}
	}
	if got := VersionName(0x0300); got != "SSL 3.0" {
		t.Errorf("VersionName(SSL 3.0) = %q", got)
	}
}

func TestClientName(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(dir, "c.pem")
	if got := ClientName(gen, "127.0.0.1"); got != "localhost" {
		t.Errorf("before the certificate is made: %q, want localhost", got)
	}
	if _, _, err := LoadOrCreate(gen, filepath.Join(dir, "k.pem")); err != nil {
		t.Fatal(err)
	}
	_, _, ipOnly, _ := issue(t, "127.0.0.1")
	ipFile := filepath.Join(dir, "ip.pem")
	if err := os.WriteFile(ipFile, ipOnly, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ cert, host, want string }{
		{gen, "127.0.0.1", "localhost"},
		{gen, "::1", "localhost"},
		{gen, "localhost", "localhost"},
		{gen, "192.168.1.5", "192.168.1.5"}, // allow_remote: the address clients reach
		{gen, "0.0.0.0", "0.0.0.0"},
		{ipFile, "127.0.0.1", "127.0.0.1"}, // a certificate without the name
		{filepath.Join(dir, "nothing", "c.pem"), "127.0.0.1", "localhost"},
	} {
		if got := ClientName(tc.cert, tc.host); got != tc.want {
			t.Errorf("ClientName(%s, %s) = %q, want %q", filepath.Base(tc.cert), tc.host, got, tc.want)
		}
	}
}
