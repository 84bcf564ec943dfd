package bridge

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// pop3PythonClient fetches message 1 with Python's poplib, a client the
// bridge did not write. Host, port, mode and credentials come from the
// environment, so the password is on no command line.
const pop3PythonClient = `
import os, poplib, ssl, sys
host, port, mode = os.environ["POP_HOST"], int(os.environ["POP_PORT"]), os.environ["POP_MODE"]
if mode == "plain":
    p = poplib.POP3(host, port, timeout=30)
else:
    ctx = ssl.create_default_context(cafile=os.environ["POP_CA"])
    if mode == "implicit":
        p = poplib.POP3_SSL(host, port, context=ctx, timeout=30)
    else:
        p = poplib.POP3(host, port, timeout=30)
        p.stls(ctx)
p.user(os.environ["POP_USER"])
p.pass_(os.environ["POP_PASS"])
count, _ = p.stat()
if count != 1:
    sys.exit("stat: %d messages" % count)
_, lines, _ = p.retr(1)
p.quit()
sys.stdout.buffer.write(b"".join(l + b"\r\n" for l in lines))
`

func TestPOP3PythonPoplib(t *testing.T) {
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed; it is needed to test with poplib as the client")
	}
	env := newPOP3Env(t, nil)
	msg := pop3BigMessage(256 << 10)
	env.up.Add(pop3TestUser, msg)
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, env.CA.CertPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ mode, addr string }{
		{"plain", env.plain}, {"stls", env.plain}, {"implicit", env.implTLS},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			host, port, _ := net.SplitHostPort(tc.addr)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, py, "-c", pop3PythonClient)
			cmd.Env = append(os.Environ(), "POP_HOST="+host, "POP_PORT="+port, "POP_MODE="+tc.mode,
				"POP_CA="+ca, "POP_USER="+pop3TestUser, "POP_PASS="+pop3TestPassword)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("poplib: %v\n%s", err, stderr.String())
			}
			if !bytes.Equal(stdout.Bytes(), msg) {
				t.Errorf("poplib retrieved %d octets, want %d identical ones", stdout.Len(), len(msg))
			}
		})
	}
}
