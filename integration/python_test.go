package integration

import (
	"encoding/base64"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"testing"
)

// pythonClient is a script using only Python's standard library: imaplib,
// poplib and smtplib, each over STARTTLS/STLS or implicit TLS with the
// certificate verified against the test CA. It prints what it fetched as
// JSON (bodies base64) so the test can compare bytes. The password comes
// from the environment, never from the command line.
const pythonClient = `
import base64, imaplib, json, os, poplib, smtplib, ssl, sys

mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
user, pw = os.environ["MAIL_USER"], os.environ["MAIL_PASSWORD"]
ctx = ssl.create_default_context(cafile=os.environ["MAIL_CA"])
out = {}

if mode in ("imap", "imaps"):
    if mode == "imaps":
        c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=30)
    else:
        c = imaplib.IMAP4(host, port, timeout=30)
        c.starttls(ssl_context=ctx)
    c.login(user, pw)
    typ, data = c.select("INBOX", readonly=True)
    out["exists"] = int(data[0])
    typ, data = c.search(None, "ALL")
    msgs = []
    for num in data[0].split():
        typ, parts = c.fetch(num, "(BODY.PEEK[])")
        msgs.append(base64.b64encode(parts[0][1]).decode())
    out["messages"] = msgs
    typ, data = c.list()
    out["mailboxes"] = [d.decode() for d in data]
    c.logout()
elif mode in ("pop3", "pop3s"):
    if mode == "pop3s":
        c = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
    else:
        c = poplib.POP3(host, port, timeout=30)
        c.stls(context=ctx)
    c.user(user)
    c.pass_(pw)
    count, size = c.stat()
    out["exists"] = count
    msgs = []
    for i in range(1, count + 1):
        resp, lines, octets = c.retr(i)
        msgs.append(base64.b64encode(b"\r\n".join(lines) + b"\r\n").decode())
    out["messages"] = msgs
    c.quit()
elif mode in ("smtp", "smtps"):
    raw = sys.stdin.buffer.read()
    if mode == "smtps":
        c = smtplib.SMTP_SSL(host, port, context=ctx, timeout=30)
    else:
        c = smtplib.SMTP(host, port, timeout=30)
        c.starttls(context=ctx)
    c.login(user, pw)
    refused = c.sendmail(user, [os.environ["MAIL_RCPT"]], raw)
    out["refused"] = list(refused)
    c.quit()
json.dump(out, sys.stdout)
`

// python returns Debian's python3 (preferred: a pyenv shim needs the
// user's HOME, which the clients here do not get) or the one on PATH.
func python(t testing.TB) string {
	t.Helper()
	if p, err := exec.LookPath("/usr/bin/python3"); err == nil {
		return p
	}
	return needTool(t, "python3", "python3")
}

type pyResult struct {
	Exists    int      `json:"exists"`
	Messages  []string `json:"messages"`
	Mailboxes []string `json:"mailboxes"`
	Refused   []string `json:"refused"`
}

// runPython runs the client script in mode against addr.
func runPython(t *testing.T, e *env, mode, addr, rcpt string, stdin []byte) pyResult {
	t.Helper()
	py := python(t)
	home := clientDir(t)
	script := filepath.Join(home, "client.py")
	writeFile(t, script, []byte(pythonClient), 0o600)
	host, port := "127.0.0.1", portOf(addr)
	env := []string{"MAIL_USER=" + e.user, "MAIL_PASSWORD=" + e.password, "MAIL_CA=" + e.caFile, "MAIL_RCPT=" + rcpt}
	r := mustRun(t, home, env, stdin, py, script, mode, host, itoa(port))
	var out pyResult
	if err := json.Unmarshal(r.stdout, &out); err != nil {
		t.Fatalf("python %s: output is not JSON: %v\n%s", mode, err, tail(r.stdout, 2000))
	}
	return out
}

// checkFetched compares fetched messages (base64) with the seed.
func checkFetched(t *testing.T, what string, got []string, seed []message) {
	t.Helper()
	if len(got) != len(seed) {
		t.Fatalf("%s: %d messages, want %d", what, len(got), len(seed))
	}
	for i, b64 := range got {
		raw, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		if s := subjectOf(raw); s != seed[i].subject {
			t.Errorf("%s: message %d subject %q, want %q", what, i+1, s, seed[i].subject)
		}
		sameBody(t, what+" "+seed[i].subject, bodyOf(raw), seed[i].body())
	}
}

// TestPythonIMAP reads INBOX with imaplib through both IMAP listeners.
func TestPythonIMAP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ mode, addr string }{{"imap", e.ep.imap}, {"imaps", e.ep.imaps}} {
		out := runPython(t, e, c.mode, c.addr, "", nil)
		if out.Exists != len(e.seed) {
			t.Errorf("imaplib %s: SELECT says %d messages, want %d", c.mode, out.Exists, len(e.seed))
		}
		if len(out.Mailboxes) == 0 {
			t.Errorf("imaplib %s: LIST returned nothing", c.mode)
		}
		checkFetched(t, "imaplib "+c.mode, out.Messages, e.seed)
	}
}

// TestPythonPOP3 retrieves every message with poplib through both POP3
// listeners. poplib undoes dot-stuffing, so the seeded "." line must come
// back as it was.
func TestPythonPOP3(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for _, c := range []struct{ mode, addr string }{{"pop3", e.ep.pop3}, {"pop3s", e.ep.pop3s}} {
		out := runPython(t, e, c.mode, c.addr, "", nil)
		if out.Exists != len(e.seed) {
			t.Errorf("poplib %s: STAT says %d messages, want %d", c.mode, out.Exists, len(e.seed))
		}
		checkFetched(t, "poplib "+c.mode, out.Messages, e.seed)
	}
}

// TestPythonSMTP sends with smtplib through both SMTP listeners and finds
// each message in the sink.
func TestPythonSMTP(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const rcpt = "python@example.net"
	for _, c := range []struct{ mode, addr string }{{"smtp", e.ep.smtp}, {"smtps", e.ep.smtps}} {
		msg := newMessage(e.user, rcpt, "smtplib over "+c.mode, "Sent by Python's smtplib.\n..starts with two dots\n")
		out := runPython(t, e, c.mode, c.addr, rcpt, msg.raw)
		if len(out.Refused) != 0 {
			t.Errorf("smtplib %s: refused %v", c.mode, out.Refused)
		}
		e.sink.checkDelivered(t, msg, rcpt)
	}
}
