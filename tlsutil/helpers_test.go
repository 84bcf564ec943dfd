package tlsutil

import (
	"crypto/tls"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// serveTLS accepts TLS connections on 127.0.0.1:0 with cfg, completes the
// handshake on each and closes it. The listener and every accept goroutine
// end before the test does.
func serveTLS(t *testing.T, cfg *tls.Config) string {
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
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(5 * time.Second))
				tc := tls.Server(c, cfg)
				if tc.Handshake() == nil {
					// Send one byte so the client sees a working session.
					tc.Write([]byte{'!'})
				}
			}()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	return ln.Addr().String()
}

// handshake dials addr with cfg and returns the connection state after a
// full handshake and one byte read from the server.
func handshake(addr string, cfg *tls.Config) (tls.ConnectionState, error) {
	d := &net.Dialer{Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", addr, cfg)
	if err != nil {
		return tls.ConnectionState{}, err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	var b [1]byte
	if _, err := io.ReadFull(c, b[:]); err != nil {
		return tls.ConnectionState{}, err
	}
	if b[0] != '!' {
		return tls.ConnectionState{}, errors.New("unexpected byte from server")
	}
	return c.ConnectionState(), nil
}

// issue returns a fresh test CA and a certificate it issued for hosts,
// with the certificate's and key's PEM.
func issue(t *testing.T, hosts ...string) (*TestCA, tls.Certificate, []byte, []byte) {
	t.Helper()
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, certPEM, keyPEM, err := ca.Issue(hosts...)
	if err != nil {
		t.Fatal(err)
	}
	return ca, cert, certPEM, keyPEM
}
