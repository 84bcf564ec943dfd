package bridge

import (
	"encoding/base64"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestSMTPBDATClientVanishesMidChunk: go-smtp offers CHUNKING (RFC 3030),
// and a client that closes its connection inside the last BDAT chunk must
// not get its truncated message submitted upstream. A complete chunk is
// still sent.
func TestSMTPBDATClientVanishesMidChunk(t *testing.T) {
	e := newSMTPEnv(t, smtpEnvOptions{})
	resp := base64.StdEncoding.EncodeToString([]byte("\x00" + smtpUser + "\x00" + e.password(smtpUser)))
	body := "Subject: chunked\r\n\r\nthe whole body\r\n"

	w := e.wire()
	w.expect("EHLO client.example", "250 ")
	w.expect("AUTH PLAIN "+resp, "235 ")
	w.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	w.expect("RCPT TO:<"+smtpOther+">", "250 ")
	w.send("BDAT " + strconv.Itoa(len(body)) + " LAST\r\n" + strings.TrimSuffix(body, "\r\n"))
	if got := w.reply(); !strings.HasPrefix(got, "250 ") {
		t.Fatalf("complete BDAT chunk: got %q", got)
	}
	w.expect("QUIT", "221 ")
	if n := len(e.fake.Messages()); n != 1 {
		t.Fatalf("%d messages upstream after one complete BDAT, want 1", n)
	}

	w = e.wire()
	w.expect("EHLO client.example", "250 ")
	w.expect("AUTH PLAIN "+resp, "235 ")
	w.expect("MAIL FROM:<"+smtpUser+">", "250 ")
	w.expect("RCPT TO:<"+smtpOther+">", "250 ")
	// The chunk announces 1000 bytes; the client sends 20 and is gone.
	if _, err := w.c.Write([]byte("BDAT 1000 LAST\r\nSubject: truncated\r\n")); err != nil {
		t.Fatal(err)
	}
	w.c.(*net.TCPConn).CloseWrite()
	w.c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := w.br.ReadString('\n')
	if strings.HasPrefix(line, "250") {
		t.Errorf("truncated BDAT chunk answered %q", strings.TrimSpace(line))
	}
	if !eventually(5*time.Second, func() bool { return e.B.Status().Sessions[SMTP] == 0 }) {
		t.Fatal("session still counted after the client left")
	}
	for _, m := range e.fake.Messages() {
		if strings.Contains(string(m.Data), "truncated") {
			t.Fatalf("truncated message submitted upstream: %q", m.Data)
		}
	}
}
