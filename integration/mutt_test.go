package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// muttrc is a complete mutt configuration for the bridge: IMAP over
// STARTTLS for reading, SMTP with STARTTLS for sending, the test CA as the
// only trust anchor, and no prompts that batch use could trip on.
func muttrc(e *env, home string) string {
	return fmt.Sprintf(`set ssl_ca_certificates_file = "%[1]s"
set ssl_force_tls = yes
set ssl_starttls = yes
set ssl_verify_host = yes
set imap_user = "%[2]s"
set imap_pass = "%[3]s"
set imap_authenticators = "login"
set imap_check_subscribed = no
set folder = "imap://%[2]s@%[4]s/"
set spoolfile = "+INBOX"
set smtp_url = "smtp://%[2]s@%[5]s/"
set smtp_pass = "%[3]s"
set smtp_authenticators = "plain:login"
set from = "%[2]s"
set use_from = yes
set realname = "Mutt Tester"
set record = ""
set postpone = no
set copy = no
set send_charset = "us-ascii"
set mbox_type = Maildir
set confirmcreate = no
set confirmappend = no
set quit = yes
set move = no
set beep = no
set wait_key = no
set header_cache = ""
set message_cachedir = ""
set certificate_file = "%[6]s/certificates"
set timeout = 5
set mail_check = 60
`, e.caFile, e.user, e.password, "127.0.0.1:"+itoa(portOf(e.ep.imap)), "127.0.0.1:"+itoa(portOf(e.ep.smtp)), home)
}

// TestMuttRead opens INBOX through the bridge in mutt (under a pseudo
// terminal, since mutt's index needs one), copies every message to a local
// Maildir with its own commands, and compares that Maildir with the seed.
func TestMuttRead(t *testing.T) {
	t.Parallel()
	mutt := needTool(t, "mutt", "mutt")
	script := needTool(t, "script", "bsdutils")
	e := newEnv(t)
	home := clientDir(t)
	out := filepath.Join(home, "copied")
	rc := muttrc(e, home) + fmt.Sprintf(
		"push \"<tag-pattern>~A<enter><tag-prefix><copy-message>%s<enter><quit>\"\n", out)
	writeFile(t, filepath.Join(home, ".muttrc"), []byte(rc), 0o600)
	cmd := fmt.Sprintf("%s -n -F %s/.muttrc", mutt, home)
	r := runTool(t, home, []string{"TERM=xterm", "COLUMNS=120", "LINES=40"}, nil, script, "-q", "-e", "-c", cmd, "/dev/null")
	files, err := maildirFiles(out)
	if err != nil || r.err != nil {
		t.Fatalf("mutt did not copy the messages (exit: %v, maildir: %v); terminal output:\n%s", r.err, err, stripANSI(tail(r.stdout, 3000)))
	}
	checkFiles(t, "mutt", files, e.seed)
}

// TestMuttSend sends one message with mutt in batch mode (-s, body on
// stdin) through the bridge's SMTP and finds it in the sink.
func TestMuttSend(t *testing.T) {
	t.Parallel()
	mutt := needTool(t, "mutt", "mutt")
	e := newEnv(t)
	home := clientDir(t)
	writeFile(t, filepath.Join(home, ".muttrc"), []byte(muttrc(e, home)), 0o600)
	const rcpt = "mutt@example.net"
	const subject = "Sent from mutt in batch mode"
	body := "Hello from mutt.\n\nThe bridge should carry this unchanged.\n"
	mustRun(t, home, nil, []byte(body), mutt, "-n", "-F", filepath.Join(home, ".muttrc"), "-s", subject, "--", rcpt)
	got := e.sink.waitFor(t, subject, 30*time.Second)
	if want := crlf([]byte(body)); string(bodyOf(got.data)) != string(want) {
		sameBody(t, "mutt message in the sink", bodyOf(got.data), want)
		t.Errorf("mutt message body in the sink is not byte-identical: %q, want %q", bodyOf(got.data), want)
	}
	if len(got.to) != 1 || got.to[0] != rcpt {
		t.Errorf("sink recipients %v, want [%s]", got.to, rcpt)
	}
}

// checkFiles compares message files a client wrote with the seed, matched
// by subject, bodies compared with line ends ignored.
func checkFiles(t *testing.T, who string, files []string, seed []message) {
	t.Helper()
	if len(files) != len(seed) {
		t.Fatalf("%s stored %d messages, want %d", who, len(files), len(seed))
	}
	bySubject := map[string][]byte{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		bySubject[subjectOf(raw)] = raw
	}
	for _, m := range seed {
		raw, ok := bySubject[m.subject]
		if !ok {
			t.Errorf("%s: no stored message has subject %q", who, m.subject)
			continue
		}
		sameBody(t, who+" "+m.subject, bodyOf(raw), m.body())
	}
}

// stripANSI drops terminal escape sequences from a captured screen.
func stripANSI(b []byte) string {
	var out strings.Builder
	for i := 0; i < len(b); i++ {
		if b[i] == 0x1b {
			for i++; i < len(b) && !(b[i] >= '@' && b[i] <= '~' && b[i] != '['); i++ {
			}
			continue
		}
		out.WriteByte(b[i])
	}
	return out.String()
}
