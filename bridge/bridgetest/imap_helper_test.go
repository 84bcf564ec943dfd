package bridgetest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/internal/xoauth2"
)

// goodTokenOnly accepts exactly the token "good-"+user.
func goodTokenOnly(user, token string) error {
	if token != "good-"+user {
		return errors.New("bad token")
	}
	return nil
}

// selfSignedTLS returns a server config with a fresh self-signed certificate for
// 127.0.0.1 and a client config that trusts only it.
func selfSignedTLS(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "bridgetest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	server = &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}}
	client = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	return server, client
}

// checkNoGoroutineLeak fails the test if goroutines started during it are still
// running shortly after its cleanups. Call it first so its cleanup runs last.
func checkNoGoroutineLeak(t *testing.T) {
	t.Helper()
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(3 * time.Second)
		for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := runtime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			buf = buf[:runtime.Stack(buf, true)]
			t.Errorf("goroutines: %d before, %d after:\n%s", before, n, buf)
		}
	})
}

// xoauth2B64 is the base64 XOAUTH2 initial response.
func xoauth2B64(user, token string) string { return string(xoauth2.Encoded(user, token)) }

// lineClient is a raw line-oriented client for scripted exchanges.
type lineClient struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

func dialLines(t *testing.T, addr string, cfg *tls.Config) *lineClient {
	t.Helper()
	var c net.Conn
	var err error
	if cfg != nil {
		c, err = tls.Dial("tcp", addr, cfg)
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &lineClient{t: t, c: c, br: bufio.NewReaderSize(c, 1<<16)}
}

func (w *lineClient) send(line string) {
	w.t.Helper()
	w.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := w.c.Write([]byte(line + "\r\n")); err != nil {
		w.t.Fatalf("write: %v", err)
	}
}

// line reads one line without its CRLF.
func (w *lineClient) line() string {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := w.br.ReadString('\n')
	if err != nil {
		w.t.Fatalf("read: %v (got %q)", err, s)
	}
	if !strings.HasSuffix(s, "\r\n") {
		w.t.Fatalf("line %q does not end in CRLF", s)
	}
	return strings.TrimSuffix(s, "\r\n")
}

// expect reads one line and checks it equals want.
func (w *lineClient) expect(want string) {
	w.t.Helper()
	if got := w.line(); got != want {
		w.t.Fatalf("got %q, want %q", got, want)
	}
}

// expectPrefix reads one line and checks it starts with prefix.
func (w *lineClient) expectPrefix(prefix string) string {
	w.t.Helper()
	got := w.line()
	if !strings.HasPrefix(got, prefix) {
		w.t.Fatalf("got %q, want prefix %q", got, prefix)
	}
	return got
}

// expectEOF checks the server closed the connection.
func (w *lineClient) expectEOF() {
	w.t.Helper()
	w.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	s, err := w.br.ReadString('\n')
	if err == nil {
		w.t.Fatalf("got %q, want the connection closed", s)
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		w.t.Fatalf("connection still open: %v", err)
	}
}
