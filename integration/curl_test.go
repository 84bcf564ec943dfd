package integration

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// curlBase are the options every curl run shares: TLS verified against the
// test CA, no config files, failures as exit codes.
func curlBase(e *env) []string {
	return []string{"--silent", "--show-error", "--fail", "--disable", "--max-time", "50",
		"--cacert", e.caFile, "-u", e.user + ":" + e.password}
}

// TestCurlIMAP lists the mailboxes and fetches every seeded message through
// the bridge's IMAP with STARTTLS and its implicit-TLS IMAP, and compares
// subjects and bodies with what the Maildir was seeded with.
func TestCurlIMAP(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	e := newEnv(t)
	home := clientDir(t)

	list := mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "imap://"+e.ep.imap+"/")...)
	if !bytes.Contains(list.stdout, []byte("INBOX")) {
		t.Fatalf("curl LIST through the bridge has no INBOX:\n%s", list.stdout)
	}
	exam := mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "--request", "EXAMINE INBOX", "imap://"+e.ep.imap+"/")...)
	if want := fmt.Sprintf("* %d EXISTS", len(e.seed)); !bytes.Contains(exam.stdout, []byte(want)) {
		t.Fatalf("EXAMINE INBOX: no %q in:\n%s", want, exam.stdout)
	}
	for i, m := range e.seed {
		url := fmt.Sprintf("imaps://%s/INBOX;MAILINDEX=%d", e.ep.imaps, i+1)
		got := mustRun(t, home, nil, nil, curl, append(curlBase(e), url)...)
		if s := subjectOf(got.stdout); s != m.subject {
			t.Errorf("message %d: subject %q, want %q", i+1, s, m.subject)
		}
		if !bytes.Equal(got.stdout, m.raw) {
			sameBody(t, "curl IMAP fetch of "+m.subject, bodyOf(got.stdout), m.body())
			t.Errorf("curl IMAP fetch of %q: %d bytes, want the %d bytes seeded", m.subject, len(got.stdout), len(m.raw))
		}
	}
}

// TestCurlPOP3 lists and retrieves the seeded messages through the bridge's
// POP3 with STLS and its implicit-TLS POP3.
func TestCurlPOP3(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	e := newEnv(t)
	home := clientDir(t)
	list := mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "pop3://"+e.ep.pop3+"/")...)
	lines := strings.Fields(strings.ReplaceAll(string(list.stdout), "\r\n", "\n"))
	if len(lines) != 2*len(e.seed) {
		t.Fatalf("POP3 LIST through the bridge: %q, want %d entries", list.stdout, len(e.seed))
	}
	for i, m := range e.seed {
		got := mustRun(t, home, nil, nil, curl, append(curlBase(e), fmt.Sprintf("pop3s://%s/%d", e.ep.pop3s, i+1))...)
		if s := subjectOf(got.stdout); s != m.subject {
			t.Errorf("message %d: subject %q, want %q", i+1, s, m.subject)
		}
		sameBody(t, "curl POP3 RETR of "+m.subject, bodyOf(got.stdout), m.body())
	}
}

// TestCurlSMTP sends one message through the bridge's SMTP with STARTTLS
// and one through its implicit-TLS SMTP, and finds both in the sink behind
// Dovecot with byte-identical bodies.
func TestCurlSMTP(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	e := newEnv(t)
	home := clientDir(t)
	for _, c := range []struct{ name, url string }{
		{"starttls", "smtp://" + e.ep.smtp},
		{"implicit", "smtps://" + e.ep.smtps},
	} {
		const rcpt = "friend@example.net"
		msg := newMessage(e.user, rcpt, "curl over SMTP "+c.name, "Sent by curl through the bridge.\n.\nThe dot line above must survive.\n")
		file := filepath.Join(home, c.name+".eml")
		writeFile(t, file, msg.raw, 0o600)
		args := append(curlBase(e), "--ssl-reqd", "--mail-from", e.user, "--mail-rcpt", rcpt, "--upload-file", file, c.url)
		mustRun(t, home, nil, nil, curl, args...)
		e.sink.checkDelivered(t, msg, rcpt)
	}
}
