package tlsutil

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"
)

// testValidity is how long TestCA certificates last: long enough for a
// `bridge demo` left running, short enough that a leaked one soon dies.
const testValidity = 30 * 24 * time.Hour

// TestCA is a throwaway certificate authority held in memory. Tests,
// `bridge demo` and integration harnesses use it to give an imitation
// upstream a certificate that the bridge verifies for real, through
// UpstreamRoots with the file written by WriteCA. It is not in a _test
// file because those callers live outside this package's tests.
type TestCA struct {
	// Cert is the CA certificate, CertPEM its PEM encoding.
	Cert    *x509.Certificate
	CertPEM []byte
	// Pool holds only Cert, for clients that should trust this CA alone.
	Pool *x509.CertPool
	// Key signs the leaves.
	Key *ecdsa.PrivateKey
}

// NewTestCA creates a CA with a fresh ECDSA P-256 key. Each CA has a
// distinct subject, so two of them never pass for each other.
func NewTestCA() (*TestCA, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: generating test CA key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "bridge test CA " + serial.Text(16)[:8],
			Organization: []string{"bridge test"},
		},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(testValidity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: creating test CA: %w", err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: parsing test CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &TestCA{
		Cert:    cert,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		Pool:    pool,
		Key:     key,
	}, nil
}

// Issue returns a server certificate signed by the CA for hosts, each a
// DNS name or an IP address, as a tls.Certificate (Leaf set) and as PEM
// for servers configured by file, such as Dovecot.
func (ca *TestCA) Issue(hosts ...string) (cert tls.Certificate, certPEM, keyPEM []byte, err error) {
	if len(hosts) == 0 {
		return tls.Certificate{}, nil, nil, errors.New("tlsutil: Issue needs at least one host name or IP address")
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsutil: generating leaf key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(testValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	addHosts(tmpl, hosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.Cert, key.Public(), ca.Key)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsutil: issuing leaf: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, nil, fmt.Errorf("tlsutil: parsing leaf: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return tls.Certificate{}, nil, nil, err
	}
	cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// WriteCA writes the CA certificate as PEM to path (mode 0644), ready for
// tls.upstream_ca_file.
func (ca *TestCA) WriteCA(path string) error {
	if err := os.WriteFile(path, ca.CertPEM, 0o644); err != nil {
		return fmt.Errorf("tlsutil: writing test CA: %w", err)
	}
	return nil
}
