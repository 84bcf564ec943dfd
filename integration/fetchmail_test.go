package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// TestFetchmail fetches the mailbox through the bridge with fetchmail, over
// POP3 with STLS and over IMAP with implicit TLS, each into an MDA that
// writes one file per message, and compares the files with the seed.
// "keep" leaves the messages on the server, so both runs see all of them.
func TestFetchmail(t *testing.T) {
	t.Parallel()
	fetchmail := needTool(t, "fetchmail", "fetchmail")
	e := newEnv(t)
	for _, c := range []struct {
		name, proto string
		port        int
		tls         string
	}{
		{"pop3-stls", "POP3", portOf(e.ep.pop3), "sslproto TLS1.2+"},
		{"imap-implicit", "IMAP", portOf(e.ep.imaps), "ssl"},
	} {
		t.Run(c.name, func(t *testing.T) {
			home := clientDir(t)
			out := filepath.Join(home, "delivered")
			if err := os.MkdirAll(out, 0o700); err != nil {
				t.Fatal(err)
			}
			mda := filepath.Join(home, "mda.sh")
			writeFile(t, mda, []byte("#!/bin/sh\nexec cat > \"$1/$(date +%s%N).$$.eml\"\n"), 0o700)
			// fetchmail matches the certificate against the host it
			// polls, by DNS name, hence "localhost".
			rc := fmt.Sprintf(`set no bouncemail
set no syslog
poll localhost protocol %s port %d timeout 30
  user "%s" there with password "%s" is "tester" here
  %s
  sslcertck
  sslcertfile "%s"
  keep
  fetchall
  mda "%s %s"
`, c.proto, c.port, e.user, e.password, c.tls, e.caFile, mda, out)
			rcFile := filepath.Join(home, ".fetchmailrc")
			writeFile(t, rcFile, []byte(rc), 0o600)
			mustRun(t, home, nil, nil, fetchmail, "--fetchmailrc", rcFile, "--idfile", filepath.Join(home, ".fetchids"),
				"--pidfile", filepath.Join(home, ".fetchmail.pid"), "--nodetach", "--silent")
			files, err := filepath.Glob(filepath.Join(out, "*.eml"))
			if err != nil {
				t.Fatal(err)
			}
			checkFiles(t, "fetchmail "+c.name, files, e.seed)
		})
	}
}
