package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
)

// UpstreamRoots returns the roots that verify the upstream mail servers:
// the system roots plus every certificate in the PEM file caFile when it
// is set. The extra file serves tests and networks whose proxy re-signs
// TLS. A caFile that cannot be read or holds no certificate is an error
// naming the file, never a silent fall back to the system roots.
//
// With caFile empty it returns the system pool, or nil (which crypto/tls
// treats as "the system roots") where the platform cannot produce one.
func UpstreamRoots(caFile string) (*x509.CertPool, error) {
	// On macOS and Windows the system pool defers to the platform verifier
	// and consults the added certificates only when that fails, so users'
	// own trust settings keep working alongside caFile.
	pool, sysErr := x509.SystemCertPool()
	if caFile == "" {
		if sysErr != nil {
			return nil, nil
		}
		return pool, nil
	}
	data, err := os.ReadFile(caFile)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: reading upstream CA file %s: %w", caFile, err)
	}
	if sysErr != nil {
		slog.Warn("tlsutil: system roots unavailable; trusting only the upstream CA file", "file", caFile, "err", sysErr)
		pool = x509.NewCertPool()
	}
	if !pool.AppendCertsFromPEM(data) {
		return nil, fmt.Errorf("tlsutil: upstream CA file %s holds no PEM certificate", caFile)
	}
	return pool, nil
}

// UpstreamConfig returns the client TLS configuration for an upstream
// mail server at hostport ("host:port", or a bare host): the certificate
// must name the host, which is also sent as SNI (Exchange Online needs it
// to pick its certificate); roots verify it (UpstreamRoots; nil means the
// system roots); TLS 1.2 or newer. The result always verifies: there is no
// switch to skip verification, because the upstream leg carries OAuth
// access tokens. An empty host is refused, as there is no name to verify.
func UpstreamConfig(hostport string, roots *x509.CertPool) (*tls.Config, error) {
	name := hostport
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		name = host
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if name == "" {
		return nil, fmt.Errorf("tlsutil: upstream server %q names no host; one is needed to verify the server's certificate", hostport)
	}
	return &tls.Config{
		ServerName: name,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
	}, nil
}
