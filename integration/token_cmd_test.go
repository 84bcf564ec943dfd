package integration

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// curlBearer is curl for the account with the test CA, forced to
// XOAUTH2 (Exchange offers nothing else; Dovecot would also take
// OAUTHBEARER, which curl prefers); the bearer token comes on stdin as
// curl config (curlToken), the README's way of keeping it out of ps.
func curlBearer(up *upstream) []string {
	return []string{"--silent", "--show-error", "--fail", "--disable", "--max-time", "50", "--cacert", up.caFile,
		"--login-options", "AUTH=XOAUTH2", "--user", testUser + ":", "--config", "-"}
}

// curlToken is the curl config line that gives it the bearer token.
func curlToken(token string) []byte { return []byte("oauth2-bearer = \"" + token + "\"\n") }

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
		got := mustRun(t, home, nil, curlToken(tok), curl, append(curlBearer(up), "imaps://"+up.dc.imaps+"/INBOX;MAILINDEX=1")...)
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

// tokenFiles starts Dovecot and writes the bridge's files; it returns the
// upstream, the binary, the files and the `bridge token` command line for
// the account.
func tokenFiles(t *testing.T) (*upstream, *bridgeFiles, string) {
	t.Helper()
	up := startUpstream(t, tokensOptions())
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)
	return up, files, fmt.Sprintf("%s --config %s token %s", bin, files.config, testUser)
}

// TestTokenCommandMutt: mutt reads INBOX from Dovecot with XOAUTH2, its
// token from `imap_oauth_refresh_command`, copying every message into a
// local Maildir that then matches the seed.
func TestTokenCommandMutt(t *testing.T) {
	t.Parallel()
	mutt := needTool(t, "mutt", "mutt")
	script := needTool(t, "script", "bsdutils")
	up, files, tokenCmd := tokenFiles(t)
	home := filepath.Dir(files.config)
	out := filepath.Join(home, "copied")
	rc := fmt.Sprintf(`set ssl_ca_certificates_file = "%s"
set ssl_force_tls = yes
set imap_user = "%s"
set imap_authenticators = "xoauth2"
set imap_oauth_refresh_command = "%s"
set imap_check_subscribed = no
set folder = "imaps://%s@%s/"
set spoolfile = "+INBOX"
set record = ""
set postpone = no
set mbox_type = Maildir
set confirmcreate = no
set confirmappend = no
set quit = yes
set move = no
set wait_key = no
set header_cache = ""
set message_cachedir = ""
set certificate_file = "%s/certificates"
set timeout = 5
push "<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><quit>"
`, up.caFile, testUser, tokenCmd, testUser, up.dc.imaps, home, out)
	writeFile(t, filepath.Join(home, ".muttrc"), []byte(rc), 0o600)
	cmd := fmt.Sprintf("%s -n -F %s/.muttrc", mutt, home)
	r := runTool(t, home, []string{"TERM=xterm", "COLUMNS=120", "LINES=40"}, nil, script, "-q", "-e", "-c", cmd, "/dev/null")
	got, err := maildirFiles(out)
	if err != nil || r.err != nil {
		t.Fatalf("mutt did not copy the messages (exit: %v, maildir: %v); terminal output:\n%s", r.err, err, stripANSI(tail(r.stdout, 3000)))
	}
	checkFiles(t, "mutt with imap_oauth_refresh_command", got, up.seed)
}

// TestTokenCommandMbsync: isync's mbsync syncs INBOX from Dovecot with
// AuthMechs XOAUTH2 (Cyrus SASL's XOAUTH2 plugin) and PassCmd "bridge
// token ...".
func TestTokenCommandMbsync(t *testing.T) {
	t.Parallel()
	mbsync := needTool(t, "mbsync", "isync")
	plugins, _ := filepath.Glob("/usr/lib/*/sasl2/lib*xoauth2.so")
	if len(plugins) == 0 {
		t.Skip("no XOAUTH2 plugin for Cyrus SASL (Debian package libsasl2-modules-kdexoauth2)")
	}
	up, files, tokenCmd := tokenFiles(t)
	home := filepath.Dir(files.config)
	local := filepath.Join(home, "mail")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	rc := fmt.Sprintf(`IMAPAccount exchange
Host localhost
Port %d
User %s
PassCmd "%s"
AuthMechs XOAUTH2
SSLType IMAPS
SystemCertificates no
CertificateFile %s
Timeout 30

IMAPStore remote
Account exchange

MaildirStore local
Path %s/
Inbox %s/INBOX

Channel inbox
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
`, portOf(up.dc.imaps), testUser, tokenCmd, up.caFile, local, local)
	rcFile := filepath.Join(home, ".mbsyncrc")
	writeFile(t, rcFile, []byte(rc), 0o600)
	mustRun(t, home, nil, nil, mbsync, "-c", rcFile, "inbox")
	got, err := maildirFiles(filepath.Join(local, "INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, "mbsync with PassCmd bridge token", got, up.seed)
}

// TestTokenCommandMuttSend: mutt sends in batch mode through Dovecot's
// submission service (STARTTLS) with XOAUTH2, its token from
// `smtp_oauth_refresh_command`; the message arrives byte-identical.
func TestTokenCommandMuttSend(t *testing.T) {
	t.Parallel()
	mutt := needTool(t, "mutt", "mutt")
	up, files, tokenCmd := tokenFiles(t)
	home := filepath.Dir(files.config)
	rc := fmt.Sprintf(`set ssl_ca_certificates_file = "%s"
set ssl_force_tls = yes
set ssl_starttls = yes
set smtp_url = "smtp://%s@127.0.0.1:%d/"
set smtp_authenticators = "xoauth2"
set smtp_oauth_refresh_command = "%s"
set from = "%s"
set use_from = yes
set record = ""
set copy = no
set send_charset = "us-ascii"
set certificate_file = "%s/certificates"
`, up.caFile, testUser, portOf(up.dc.subm), tokenCmd, testUser, home)
	rcFile := filepath.Join(home, ".muttrc")
	writeFile(t, rcFile, []byte(rc), 0o600)
	const rcpt, subject = "mutt-token@example.net", "Sent by mutt with bridge token"
	body := "mutt got its XOAUTH2 token from `bridge token`.\n"
	mustRun(t, home, nil, []byte(body), mutt, "-n", "-F", rcFile, "-s", subject, "--", rcpt)
	got := up.sink.waitFor(t, subject, 30*time.Second)
	if want := crlf([]byte(body)); !bytes.Equal(bodyOf(got.data), want) {
		sameBody(t, "mutt message in the sink", bodyOf(got.data), want)
		t.Errorf("the message mutt sent is not byte-identical in the sink")
	}
}
