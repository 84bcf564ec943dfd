package tlsutil

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
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

// UpstreamConfig returns the client TLS configuration for dialing an
// upstream mail server. serverName is the host the certificate must name
// and is also sent as SNI, which Exchange Online needs to pick its
// certificate; a "host:port" is accepted and the port dropped. Roots come
// from UpstreamRoots(caFile). The result always verifies: there is no
// switch to skip verification, because the upstream leg carries OAuth
// access tokens.
func UpstreamConfig(serverName, caFile string) (*tls.Config, error) {
	name := serverName
	if host, _, err := net.SplitHostPort(serverName); err == nil {
		name = host
	}
	name = strings.TrimSuffix(strings.TrimPrefix(name, "["), "]")
	if name == "" {
		return nil, errors.New("tlsutil: upstream server name is empty; it is needed to verify the server's certificate")
	}
	roots, err := UpstreamRoots(caFile)
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		ServerName: name,
		RootCAs:    roots,
		MinVersion: tls.VersionTLS12,
	}, nil
}
