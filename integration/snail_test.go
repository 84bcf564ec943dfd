package integration

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
)

// TestSNailVerifiesLocalhost reads INBOX with s-nail over STARTTLS,
// verifying the bridge's certificate against the test CA. s-nail matches a
// certificate against its DNS names only, so with the name `bridge login`
// prints (localhost) it gets in, while with 127.0.0.1 it refuses the same
// certificate although the certificate holds that address too.
func TestSNailVerifiesLocalhost(t *testing.T) {
	t.Parallel()
	snail := needTool(t, "s-nail", "s-nail")
	e := newEnv(t)
	home := clientDir(t)
	user := strings.ReplaceAll(e.user, "@", "%40")
	port := itoa(portOf(e.ep.imap))
	// The password comes from a resource file, never the command line.
	rc := filepath.Join(home, "mailrc")
	writeFile(t, rc, []byte(fmt.Sprintf(`set v15-compat
set tls-ca-file=%s
set tls-ca-no-defaults
set imap-use-starttls
set password=%s
`, e.caFile, e.password)), 0o600)
	read := func(host string) result {
		return runTool(t, home, []string{"MAILRC=" + rc}, nil, snail, "-N", "-#", "-Y", "headers", "-Y", "xit",
			"-f", "imap://"+user+"@"+host+":"+port+"/INBOX")
	}
	r := read("localhost")
	if r.err != nil {
		t.Fatalf("s-nail with localhost: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	for _, m := range e.seed {
		if !strings.Contains(string(r.stdout), m.subject[:min(len(m.subject), 20)]) { // the list cuts subjects
			t.Errorf("s-nail's header list lacks %q:\n%s", m.subject, r.stdout)
		}
	}
	r = read("127.0.0.1")
	if r.err == nil || !strings.Contains(string(r.stderr), "certificate does not match") {
		t.Errorf("s-nail with 127.0.0.1: %v (it used to refuse the certificate, which is why clients are given localhost)\n%s", r.err, r.stderr)
	}
}
