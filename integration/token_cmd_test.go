package integration

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// curlBearer is curl with a bearer token for the account and the test
// CA, forced to XOAUTH2 (Exchange offers nothing else; Dovecot would also
// take OAUTHBEARER, which curl prefers).
func curlBearer(up *upstream, token string) []string {
	return []string{"--silent", "--show-error", "--fail", "--disable", "--max-time", "50", "--cacert", up.caFile,
		"--login-options", "AUTH=XOAUTH2", "--user", testUser + ":", "--oauth2-bearer", token}
}

// TestTokenCommandClients: `bridge token` hands clients that speak XOAUTH2
// themselves the account's token, used straight against Dovecot (standing
// in for Exchange). Without a server the command refreshes once itself;
// beside `bridge serve` every token comes from the server and the
// identity platform sees no refresh beyond the server's own. curl reads
// INBOX with --oauth2-bearer, and msmtp, with `passwordeval "bridge
// token ..."`, sends a message that arrives byte-identical.
func TestTokenCommandClients(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	msmtp := needTool(t, "msmtp", "msmtp")
	up := startUpstream(t, tokensOptions())
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)
	// The same HOME as `bridge serve` below, so the same control socket.
	home := filepath.Dir(files.config)
	token := func() string {
		t.Helper()
		r := mustRun(t, home, nil, nil, bin, "--config", files.config, "token", testUser)
		if bytes.Count(r.stdout, []byte("\n")) != 1 {
			t.Fatalf("bridge token printed %d lines, want the token alone on one", bytes.Count(r.stdout, []byte("\n")))
		}
		return strings.TrimSpace(string(r.stdout))
	}
	fetch := func(tok string) {
		t.Helper()
		got := mustRun(t, home, nil, nil, curl, append(curlBearer(up, tok), "imaps://"+up.dc.imaps+"/INBOX;MAILINDEX=1")...)
		if !bytes.Equal(got.stdout, up.seed[0].raw) {
			t.Errorf("curl --oauth2-bearer fetched %d bytes, want the %d seeded", len(got.stdout), len(up.seed[0].raw))
		}
	}

	before := up.idp.RefreshRequests()
	fetch(token())
	if n := up.idp.RefreshRequests() - before; n != 1 {
		t.Errorf("bridge token without a server made %d refreshes, want 1", n)
	}

	runBinary(t, bin, files.config)
	fetch(token()) // the server's first token costs it one refresh
	before = up.idp.RefreshRequests()

	rc := fmt.Sprintf(`defaults
tls on
tls_starttls on
tls_trust_file %s
timeout 30

account exchange
host 127.0.0.1
port %d
auth xoauth2
user %s
passwordeval "%s --config %s token %s"
from %s

account default : exchange
`, up.caFile, portOf(up.dc.subm), testUser, bin, files.config, testUser, testUser)
	rcFile := filepath.Join(home, "msmtprc")
	writeFile(t, rcFile, []byte(rc), 0o600)
	const rcpt = "token-cmd@example.net"
	msg := newMessage(testUser, rcpt, "Sent with bridge token", "msmtp got its XOAUTH2 token from `bridge token`.\r\n.\r\nA lone dot above.\r\n")
	mustRun(t, home, nil, msg.raw, msmtp, "-C", rcFile, "--", rcpt)
	up.sink.checkDelivered(t, msg, rcpt)
	fetch(token())
	for range 3 {
		token()
	}
	if n := up.idp.RefreshRequests() - before; n != 0 {
		t.Errorf("the identity platform saw %d refreshes while the server held a fresh token, want 0", n)
	}
}
