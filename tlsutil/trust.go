package tlsutil

import (
	"fmt"
	"strings"
)

// TrustHint explains to a person how to make mail clients trust the local
// certificate in certFile, on Linux, macOS and Windows. The bridge never
// installs the certificate itself: adding a root to a trust store is a
// decision for the machine's owner, and doing it silently is a known bad
// habit of similar tools.
func TrustHint(certFile string) string {
	sh := shellQuote(certFile)
	win := `"` + certFile + `"`
	var b strings.Builder
	fmt.Fprintf(&b, "The bridge never installs this certificate into a trust store; you decide.\n")
	fmt.Fprintf(&b, "Plain connections to 127.0.0.1 never leave this machine, so TLS to the bridge is\n")
	fmt.Fprintf(&b, "only needed by clients that insist on it. Many clients offer to accept the\n")
	fmt.Fprintf(&b, "certificate on first connect: compare the SHA-256 fingerprint before you do.\n")
	fmt.Fprintf(&b, "To trust it for the current user instead:\n\n")

	fmt.Fprintf(&b, "macOS (login keychain; asks for your password):\n")
	fmt.Fprintf(&b, "  security add-trusted-cert -r trustRoot -k ~/Library/Keychains/login.keychain-db %s\n\n", sh)

	fmt.Fprintf(&b, "Windows (current user's Trusted Root store; confirm the dialog):\n")
	fmt.Fprintf(&b, "  certutil -user -addstore Root %s\n\n", win)

	fmt.Fprintf(&b, "Linux (system-wide, needs root):\n")
	fmt.Fprintf(&b, "  Debian/Ubuntu: sudo cp %s /usr/local/share/ca-certificates/bridge-localhost.crt && sudo update-ca-certificates\n", sh)
	fmt.Fprintf(&b, "  Fedora/RHEL/Arch: sudo trust anchor --store %s\n", sh)
	fmt.Fprintf(&b, "  Thunderbird keeps its own list: Settings > Privacy & Security > Certificates >\n")
	fmt.Fprintf(&b, "  Manage Certificates > Authorities > Import, then pick %s.\n", certFile)
	fmt.Fprintf(&b, "  mutt: set ssl_ca_certificates_file=%s\n", sh)
	return b.String()
}

// shellQuote quotes path for a POSIX shell when it holds anything beyond
// the characters that are always safe there.
func shellQuote(path string) string {
	safe := path != "" && strings.IndexFunc(path, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' ||
			strings.ContainsRune("/._-+:@%,=", r))
	}) < 0
	if safe {
		return path
	}
	return "'" + strings.ReplaceAll(path, "'", `'\''`) + "'"
}
