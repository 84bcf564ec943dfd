// Package tlsutil provides the TLS pieces of the bridge: the certificate
// that the local listeners present (generated once, then loaded), the
// server configuration for those listeners, the verifying client
// configuration for the upstream mail servers, and a throwaway certificate
// authority for tests, `bridge demo` and integration harnesses.
//
// The package never installs a certificate into any trust store; TrustHint
// explains to a person how to do that themselves.
package tlsutil

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"strings"
)

// Fingerprint returns the SHA-256 digest of a DER-encoded certificate as
// upper-case hex bytes separated by colons ("AB:CD:..."), the form that
// browsers, openssl x509 -fingerprint and mail clients show, so a person
// can compare them by eye.
func Fingerprint(der []byte) string {
	sum := sha256.Sum256(der)
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	var b strings.Builder
	b.Grow(len(h) + len(sum) - 1)
	for i := 0; i < len(h); i += 2 {
		if i > 0 {
			b.WriteByte(':')
		}
		b.WriteString(h[i : i+2])
	}
	return b.String()
}

// ServerConfig returns the TLS configuration for the local listeners
// (STARTTLS and implicit TLS) presenting cert. TLS 1.2 is the floor: the
// old clients this bridge serves often lack 1.3, while 1.0 and 1.1 are
// broken enough that Go no longer enables them for servers by default.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS12,
	}
}
