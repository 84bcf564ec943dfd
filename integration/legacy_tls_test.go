package integration

import (
	"os"
	"strings"
	"testing"
)

// pythonTLS10 is a client that can only speak TLS 1.0, as PHP's imap
// extension (c-client) and old Outlook versions do: Python's ssl limited
// to TLSv1, with OpenSSL's security level lowered so that it offers TLS
// 1.0 at all. It logs in over implicit TLS or STARTTLS, verifying the
// certificate against the name localhost, and exits 3 when the handshake
// is refused.
const pythonTLS10 = `
import imaplib, os, ssl, sys, warnings
warnings.simplefilter("ignore", DeprecationWarning)
mode, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.load_verify_locations(os.environ["MAIL_CA"])
ctx.minimum_version = ssl.TLSVersion.TLSv1
ctx.maximum_version = ssl.TLSVersion.TLSv1
ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
try:
    if mode == "imaps":
        c = imaplib.IMAP4_SSL(host, port, ssl_context=ctx, timeout=30)
    else:
        c = imaplib.IMAP4(host, port, timeout=30)
        c.starttls(ssl_context=ctx)
except (ssl.SSLError, ConnectionError) as e:
    print("refused:", e)
    sys.exit(3)
print("version", c.sock.version())
c.login(os.environ["MAIL_USER"], os.environ["MAIL_PASSWORD"])
typ, data = c.select("INBOX", readonly=True)
print("exists", int(data[0]))
c.logout()
`

// TestPythonTLS10: a TLS 1.0-only client is refused by default, and the
// bridge logs at warn what it offered and the setting that lets it in;
// with [tls] local_min_version = "1.0" it logs in over implicit TLS and
// STARTTLS. The upstream leg is unaffected (Dovecot speaks TLS 1.2+).
func TestPythonTLS10(t *testing.T) {
	t.Parallel()
	py := python(t)
	up := startUpstream(t, tokensOptions())
	home := clientDir(t)
	script := home + "/tls10.py"
	writeFile(t, script, []byte(pythonTLS10), 0o600)
	run := func(e *env, mode, addr string) result {
		env := []string{"MAIL_USER=" + e.user, "MAIL_PASSWORD=" + e.password, "MAIL_CA=" + e.caFile}
		return runTool(t, home, env, nil, py, script, mode, "localhost", itoa(portOf(addr)))
	}

	def := startBridgeFor(t, up)
	r := run(def, "imaps", def.ep.imaps)
	if r.err == nil || !strings.Contains(string(r.stdout), "refused:") {
		t.Fatalf("a TLS 1.0 client got past the default minimum: %v\n%s\n%s", r.err, r.stdout, r.stderr)
	}
	logs := string(def.logs.Bytes())
	for _, want := range []string{"level=WARN", "local TLS handshake refused", "offered=1.0", "minimum=1.2", `local_min_version = \"1.0\"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the refusal's log line lacks %q:\n%s", want, tail([]byte(logs), 3000))
		}
	}

	files := writeBridgeFiles(t, up)
	conf, err := os.ReadFile(files.config)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, files.config, []byte(strings.Replace(string(conf), "[tls]\n", "[tls]\nlocal_min_version = \"1.0\"\n", 1)), 0o600)
	legacy := startBridgeFiles(t, up, files)
	for _, m := range []struct{ mode, addr string }{{"imaps", legacy.ep.imaps}, {"imap", legacy.ep.imap}} {
		r := run(legacy, m.mode, m.addr)
		if r.err != nil {
			t.Fatalf("%s with local_min_version 1.0: %v\n%s\n%s", m.mode, r.err, r.stdout, r.stderr)
		}
		if out := string(r.stdout); !strings.Contains(out, "version TLSv1\n") || !strings.Contains(out, "exists ") {
			t.Errorf("%s: %s", m.mode, out)
		}
	}
}
