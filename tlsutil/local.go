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
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/mailbridge/bridge/internal/atomicfile"
)

// LocalValidity is how long a generated local certificate stays valid.
// It is 820 days rather than years because macOS and iOS refuse any TLS
// server certificate valid for more than 825 days, even one a user has
// trusted by hand; a longer certificate would silently break Apple Mail.
const LocalValidity = 820 * 24 * time.Hour

// LocalHosts are the names a generated local certificate covers: the
// loopback names a mail client may be configured with.
var LocalHosts = []string{"localhost", "127.0.0.1", "::1"}

// Info describes the local certificate in use.
type Info struct {
	// CertFile and KeyFile are the PEM files the certificate was loaded
	// from or written to.
	CertFile, KeyFile string
	// SHA256 is the Fingerprint of the leaf certificate's DER.
	SHA256 string
	// NotAfter is when the leaf certificate expires.
	NotAfter time.Time
	// Generated is true when LoadOrCreate created the pair in this call.
	Generated bool
}

// DefaultPaths returns where the local certificate and key live when the
// configuration names none: <UserConfigDir>/bridge/cert.pem and key.pem.
// It does no I/O beyond asking the OS for the user config directory.
func DefaultPaths() (certFile, keyFile string, err error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", "", fmt.Errorf("tlsutil: locating the user config directory: %w", err)
	}
	dir = filepath.Join(dir, "bridge")
	return filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem"), nil
}

// LoadOrCreate returns the local listeners' certificate. If both files
// exist they are loaded (and must match each other). If neither exists, a
// new ECDSA P-256 self-signed certificate for LocalHosts, valid for
// LocalValidity, is generated and written: the key with mode 0600, the
// certificate with 0644, missing directories with 0700. If exactly one of
// the two exists, it returns an error rather than overwrite it, since the
// other half may be a certificate someone already trusts.
//
// When certFile and keyFile are both empty, DefaultPaths is used.
// An existing certificate is loaded even when expired; callers compare
// Info.NotAfter with the clock to warn.
func LoadOrCreate(certFile, keyFile string) (tls.Certificate, Info, error) {
	cert, info, found, err := LoadLocal(certFile, keyFile)
	if err != nil || found {
		return cert, info, err
	}
	certPEM, keyPEM, err := generateLocal(time.Now())
	if err != nil {
		return tls.Certificate{}, Info{}, err
	}
	// The key goes first: a crash between the two writes leaves a lone key,
	// which the next start reports instead of pairing it with nothing.
	if err := writeFile(info.KeyFile, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, Info{}, err
	}
	if err := writeFile(info.CertFile, certPEM, 0o644); err != nil {
		return tls.Certificate{}, Info{}, err
	}
	// Reading back what was written proves the files are usable as stored.
	return load(info.CertFile, info.KeyFile, true)
}

// LoadLocal is LoadOrCreate without the creating, for checks that must
// change nothing: when neither file exists it returns found false, no
// error, and Info with only CertFile and KeyFile set (where LoadOrCreate
// would write the pair). Every other outcome is LoadOrCreate's.
func LoadLocal(certFile, keyFile string) (cert tls.Certificate, info Info, found bool, err error) {
	if certFile == "" && keyFile == "" {
		if certFile, keyFile, err = DefaultPaths(); err != nil {
			return tls.Certificate{}, Info{}, false, err
		}
	}
	if certFile == "" || keyFile == "" {
		return tls.Certificate{}, Info{}, false, errors.New("tlsutil: set both cert_file and key_file, or neither to use a generated certificate")
	}
	certExists, err := exists(certFile)
	if err != nil {
		return tls.Certificate{}, Info{}, false, err
	}
	keyExists, err := exists(keyFile)
	if err != nil {
		return tls.Certificate{}, Info{}, false, err
	}
	switch {
	case certExists && keyExists:
		cert, info, err := load(certFile, keyFile, false)
		return cert, info, err == nil, err
	case certExists:
		return tls.Certificate{}, Info{}, false, fmt.Errorf("tlsutil: certificate %s exists but its key %s does not; restore the key, or remove the certificate to have a new pair generated", certFile, keyFile)
	case keyExists:
		return tls.Certificate{}, Info{}, false, fmt.Errorf("tlsutil: key %s exists but its certificate %s does not; restore the certificate, or remove the key to have a new pair generated", keyFile, certFile)
	}
	return tls.Certificate{}, Info{CertFile: certFile, KeyFile: keyFile}, false, nil
}

func exists(path string) (bool, error) {
	_, err := os.Stat(path)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	default:
		return false, fmt.Errorf("tlsutil: %w", err)
	}
}

func load(certFile, keyFile string, generated bool) (tls.Certificate, Info, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return tls.Certificate{}, Info{}, fmt.Errorf("tlsutil: loading certificate %s with key %s: %w", certFile, keyFile, err)
	}
	leaf := cert.Leaf
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return tls.Certificate{}, Info{}, fmt.Errorf("tlsutil: parsing certificate %s: %w", certFile, err)
		}
		cert.Leaf = leaf
	}
	return cert, Info{
		CertFile:  certFile,
		KeyFile:   keyFile,
		SHA256:    Fingerprint(cert.Certificate[0]),
		NotAfter:  leaf.NotAfter,
		Generated: generated,
	}, nil
}

// generateLocal makes the self-signed local certificate. It is an end
// entity (not a CA): Firefox/Thunderbird reject a CA certificate presented
// as a server certificate, and a leaf-only certificate cannot be abused to
// sign others if a user trusts it.
func generateLocal(now time.Time) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: generating key: %w", err)
	}
	serial, err := randomSerial()
	if err != nil {
		return nil, nil, err
	}
	host, _ := os.Hostname()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject: pkix.Name{
			CommonName:   "localhost",
			Organization: []string{"bridge local certificate"},
			// The host name tells apart the certificates of several machines
			// once they sit side by side in a trust store.
			OrganizationalUnit: []string{host},
		},
		// An hour of slack absorbs small clock differences.
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(LocalValidity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	addHosts(tmpl, LocalHosts)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return nil, nil, fmt.Errorf("tlsutil: creating certificate: %w", err)
	}
	keyPEM, err = encodeKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), keyPEM, nil
}

// addHosts puts each host into the certificate's subject alternative
// names, as an IP address when it parses as one (RFC 5280 section 4.2.1.6).
func addHosts(tmpl *x509.Certificate, hosts []string) {
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
}

func randomSerial() (*big.Int, error) {
	// 128 random bits: serials must be unique per issuer, and random ones
	// need no state (RFC 5280 section 4.1.2.2 allows up to 20 octets).
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, fmt.Errorf("tlsutil: generating serial number: %w", err)
	}
	return n.Add(n, big.NewInt(1)), nil
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("tlsutil: encoding key: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// writeFile writes data to path through a temporary file in the same
// directory and a rename, so a reader never sees half a file and the key
// is never readable by others, not even briefly.
func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("tlsutil: creating directory for %s: %w", path, err)
	}
	if err := atomicfile.Write(path, data, mode); err != nil {
		return fmt.Errorf("tlsutil: writing %s: %w", path, err)
	}
	return nil
}

// ClientName returns the server name to give mail clients for a local
// listener on host (the config's listen address), so that TLS verifies
// against the certificate in certFile: "localhost" for a loopback address
// when the certificate names localhost, because offlineimap, s-nail,
// c-client (PHP's imap) and imapfilter match a certificate against its DNS
// names only and refuse 127.0.0.1 even when the certificate holds that IP;
// host otherwise. A certificate that does not exist yet will be generated
// for LocalHosts, which name localhost. It reads certFile.
func ClientName(certFile, host string) string {
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return host
	}
	data, err := os.ReadFile(certFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "localhost"
	}
	if err != nil {
		return host
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return host
	}
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil || leaf.VerifyHostname("localhost") != nil {
		return host
	}
	return "localhost"
}
