package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/internal/xoauth2"
)

// TestServeTraceAndDoctorLeakNoSecret runs `bridge serve` with debug
// logging and the wire trace on, logs in over IMAP, POP3 and SMTP, runs
// `bridge doctor`, and searches the server's log and the doctor's output
// for every secret of the account in every form.
func TestServeTraceAndDoctorLeakNoSecret(t *testing.T) {
	w := newDoctorWorld(t, "")
	body, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(body), "\n[store]")
	if !ok {
		t.Fatal("doctor world config has no [store]")
	}
	text := "[log]\nlevel = \"debug\"\ntrace = true\n\n[listen]\nimap = \"127.0.0.1:0\"\npop3 = \"127.0.0.1:0\"\nsmtp = \"127.0.0.1:0\"\n\n[store]" + rest
	text = strings.Replace(text, "[tls]\n", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(w.dir, "cert.pem"), filepath.Join(w.dir, "key.pem")), 1)
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	rt := t.TempDir()
	logs := startServe(t, rt, w.cfg)
	ls := statusJSON(t, rt, w.cfg).Server.Listeners
	const user = "a@b.test"

	dial := func(addr string) (net.Conn, func(string) string) {
		c, err := net.DialTimeout("tcp", addr, 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		c.SetDeadline(time.Now().Add(20 * time.Second))
		buf := make([]byte, 0, 4096)
		readLine := func(prefix string) string {
			t.Helper()
			for {
				if i := strings.IndexByte(string(buf), '\n'); i >= 0 {
					l := strings.TrimRight(string(buf[:i]), "\r")
					buf = buf[i+1:]
					if strings.HasPrefix(l, prefix) {
						return l
					}
					continue
				}
				var tmp [4096]byte
				n, err := c.Read(tmp[:])
				if err != nil {
					t.Fatalf("waiting for %q: %v", prefix, err)
				}
				buf = append(buf, tmp[:n]...)
			}
		}
		return c, readLine
	}

	c, line := dial(ls["listen.imap"])
	line("* OK")
	fmt.Fprintf(c, "a1 LOGIN %s %s\r\na2 SELECT INBOX\r\na3 LOGOUT\r\n", user, doctorPassword)
	if l := line("a1 "); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("IMAP login: %q", l)
	}
	line("a3 ")

	c, line = dial(ls["listen.pop3"])
	line("+OK")
	fmt.Fprintf(c, "AUTH PLAIN %s\r\nQUIT\r\n", base64.StdEncoding.EncodeToString([]byte("\x00"+user+"\x00"+doctorPassword)))
	if l := line(""); l != "+OK Logged in" {
		t.Fatalf("POP3 login: %q", l)
	}

	sc, err := smtp.Dial(ls["listen.smtp"])
	if err != nil {
		t.Fatal(err)
	}
	defer sc.Close()
	if err := sc.Auth(sasl.NewLoginClient(user, doctorPassword)); err != nil {
		t.Fatalf("SMTP AUTH LOGIN: %v", err)
	}
	if err := sc.SendMail(user, []string{user}, strings.NewReader("Subject: t\r\n\r\nx\r\n")); err != nil {
		t.Fatalf("SMTP send: %v", err)
	}
	sc.Quit()

	// The doctor, text and JSON, with its own refresh and logins.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	docText, docErr, _ := runIn(ctx, rt, "--config", w.cfg, "doctor", user)
	docJSON, docErr2, _ := runIn(ctx, rt, "--config", w.cfg, "doctor", user, "--json")

	if !strings.Contains(docJSON, "format_version") || !strings.Contains(docText, "IMAP") {
		t.Fatalf("the doctor did not run:\n%s\n%s\n%s", docText, docErr, docErr2)
	}
	all := logs.String() + docText + docErr + docJSON + docErr2
	for _, want := range []string{"trace=client", "trace=upstream", "a1 LOGIN [redacted]", "AUTH PLAIN [redacted]", "AUTH LOGIN", "line=[redacted]"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the server log has no %q", want)
		}
	}
	b64 := base64.StdEncoding.EncodeToString
	secrets := map[string]string{
		"stored refresh token":                w.rt,
		"rotated refresh token":               w.idp.LatestRefresh(user),
		"local password":                      doctorPassword,
		"local password, base64":              b64([]byte(doctorPassword)),
		"PLAIN payload, base64":               b64([]byte("\x00" + user + "\x00" + doctorPassword)),
		"XOAUTH2 payload, base64 (any token)": b64(xoauth2.Payload(user, ""))[:24],
		"a JWT access token (any)":            "eyJ",
	}
	for what, s := range secrets {
		if s != "" && strings.Contains(all, s) {
			t.Errorf("the log or the doctor's output holds a secret: %s", what)
		}
	}
}
