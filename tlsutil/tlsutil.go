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
	"fmt"
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
// (STARTTLS and implicit TLS) presenting cert, accepting TLS minVersion
// and newer; 0 means TLS 1.2, the floor the old clients this bridge serves
// mostly reach, while 1.0 and 1.1 are broken enough that Go enables them
// for servers only when asked. Asked, they work with Go's default cipher
// suites: the ECDHE ones with AES-CBC and SHA-1, which is what TLS 1.0
// clients offer (they have no AEAD suites).
func ServerConfig(cert tls.Certificate, minVersion uint16) *tls.Config {
	if minVersion == 0 {
		minVersion = tls.VersionTLS12
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   minVersion,
	}
}

// versions are the TLS versions by the names the config uses.
var versions = []struct {
	name string
	v    uint16
}{{"1.0", tls.VersionTLS10}, {"1.1", tls.VersionTLS11}, {"1.2", tls.VersionTLS12}, {"1.3", tls.VersionTLS13}}

// ParseVersion turns "1.0", "1.1", "1.2" or "1.3" into the crypto/tls
// version; "" is 0 (the default).
func ParseVersion(s string) (uint16, error) {
	if s == "" {
		return 0, nil
	}
	for _, v := range versions {
		if v.name == s {
			return v.v, nil
		}
	}
	return 0, fmt.Errorf("tlsutil: %q is not a TLS version; want \"1.0\", \"1.1\", \"1.2\" or \"1.3\"", s)
}

// VersionName is the config's name of a TLS version ("1.2"), "SSL 3.0",
// or the number in hex for anything else.
func VersionName(v uint16) string {
	for _, n := range versions {
		if n.v == v {
			return n.name
		}
	}
	if v == 0x0300 {
		return "SSL 3.0"
	}
	return fmt.Sprintf("0x%04x", v)
}
