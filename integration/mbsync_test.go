package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestMbsync syncs INBOX through the bridge (STARTTLS, LOGIN) into a local
// Maildir with isync's mbsync, checks the message count and bodies, then
// syncs again after a new delivery and finds exactly one more message.
func TestMbsync(t *testing.T) {
	t.Parallel()
	mbsync := needTool(t, "mbsync", "isync")
	e := newEnv(t)
	home := clientDir(t)
	pwFile := filepath.Join(home, "password")
	writeFile(t, pwFile, []byte(e.password+"\n"), 0o600)
	local := filepath.Join(home, "mail")
	if err := os.MkdirAll(local, 0o700); err != nil {
		t.Fatal(err)
	}
	// isync matches the certificate's DNS names, so the host is
	// "localhost"; the bridge listens on both loopback families.
	rc := fmt.Sprintf(`IMAPAccount bridge
Host localhost
Port %d
User %s
PassCmd "cat %s"
AuthMechs LOGIN
SSLType STARTTLS
SystemCertificates no
CertificateFile %s
Timeout 30

IMAPStore remote
Account bridge

MaildirStore local
Path %s/
Inbox %s/INBOX
SubFolders Verbatim

Channel inbox
Far :remote:
Near :local:
Patterns INBOX
Create Near
Sync Pull
SyncState *
`, portOf(e.ep.imap), e.user, pwFile, e.caFile, local, local)
	rcFile := filepath.Join(home, ".mbsyncrc")
	writeFile(t, rcFile, []byte(rc), 0o600)

	mustRun(t, home, nil, nil, mbsync, "-c", rcFile, "inbox")
	files, err := maildirFiles(filepath.Join(local, "INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, "mbsync", files, e.seed)

	extra := newMessage("Dave <dave@example.org>", e.user, "Arrived between syncs", "A message delivered after the first sync.\n")
	if err := e.dc.mail.deliver(extra); err != nil {
		t.Fatal(err)
	}
	mustRun(t, home, nil, nil, mbsync, "-c", rcFile, "inbox")
	files, err = maildirFiles(filepath.Join(local, "INBOX"))
	if err != nil {
		t.Fatal(err)
	}
	checkFiles(t, "mbsync second sync", files, append(append([]message(nil), e.seed...), extra))
}
