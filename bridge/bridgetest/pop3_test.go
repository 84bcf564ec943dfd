package bridgetest

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/textproto"
	"strings"
	"testing"
	"time"
)

const popUser = "carol@example.com"

func newTestPOP3(t *testing.T, mode Mode) (*POP3, *tls.Config) {
	t.Helper()
	serverTLS, clientTLS := selfSignedTLS(t)
	s, err := NewPOP3(POP3Options{Validate: goodTokenOnly, TLS: serverTLS, Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, clientTLS
}

// popLogin performs the two-step AUTH XOAUTH2 that Exchange requires.
func popLogin(w *lineClient, user, token string) {
	w.t.Helper()
	w.expectPrefix("+OK The Microsoft Exchange POP3 service is ready. [")
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(user, token))
	w.expect("+OK User successfully authenticated.")
}

// dotBody reads a multi-line response body with go's textproto, which
// undoes dot-stuffing and turns CRLF into LF.
func dotBody(t *testing.T, w *lineClient) []byte {
	t.Helper()
	// A bound for a hang, not a speed test: the 10 MB message takes
	// seconds under the race detector on a busy machine.
	w.c.SetReadDeadline(time.Now().Add(90 * time.Second))
	b, err := textproto.NewReader(w.br).ReadDotBytes()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPOP3Transaction(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestPOP3(t, Normal)
	first := []byte("Subject: one\r\n\r\nline 1\r\n.hidden dot\r\n..two dots\r\nline 4\r\n")
	second := []byte("Subject: two\n\nbare LF body\n") // normalised to CRLF on Add
	third := []byte("Subject: three\r\n\r\nx\r\n")
	s.Add(popUser, first)
	s.Add(popUser, second)
	s.Add(popUser, third)
	s.Add("someone@else.example", third)
	secondCRLF := []byte("Subject: two\r\n\r\nbare LF body\r\n")

	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("+OK The Microsoft Exchange POP3 service is ready. [")
	w.send("CAPA")
	w.expect("+OK")
	if got := string(dotBody(t, w)); got != "TOP\nUIDL\nSASL PLAIN XOAUTH2\nUSER\n" {
		t.Fatalf("CAPA body %q", got)
	}
	w.send("STAT")
	w.expect("-ERR Command is not valid in this state.")
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "good-"+popUser))
	w.expect("+OK User successfully authenticated.")

	total := len(first) + len(secondCRLF) + len(third)
	w.send("STAT")
	w.expect(fmt.Sprintf("+OK 3 %d", total))
	w.send("LIST")
	w.expectPrefix("+OK")
	wantList := fmt.Sprintf("1 %d\n2 %d\n3 %d\n", len(first), len(secondCRLF), len(third))
	if got := string(dotBody(t, w)); got != wantList {
		t.Fatalf("LIST body %q, want %q", got, wantList)
	}
	w.send("LIST 2")
	w.expect(fmt.Sprintf("+OK 2 %d", len(secondCRLF)))
	w.send("LIST 9")
	w.expect("-ERR no such message")
	w.send("UIDL")
	w.expectPrefix("+OK")
	uidl := strings.Split(strings.TrimSpace(string(dotBody(t, w))), "\n")
	if len(uidl) != 3 || !strings.HasPrefix(uidl[0], "1 ") || uidl[0] == uidl[1] {
		t.Fatalf("UIDL %q", uidl)
	}
	w.send("UIDL 3")
	w.expect("+OK " + uidl[2])

	// RETR on the wire: the dot lines must be stuffed.
	w.send("RETR 1")
	w.expect(fmt.Sprintf("+OK %d octets", len(first)))
	for _, want := range []string{"Subject: one", "", "line 1", "..hidden dot", "...two dots", "line 4", "."} {
		w.expect(want)
	}
	w.send("RETR 2")
	w.expectPrefix("+OK")
	if got := dotBody(t, w); !bytes.Equal(got, bytes.ReplaceAll(secondCRLF, []byte("\r\n"), []byte("\n"))) {
		t.Fatalf("RETR 2 %q", got)
	}
	w.send("TOP 1 1")
	w.expect("+OK")
	if got := string(dotBody(t, w)); got != "Subject: one\n\nline 1\n" {
		t.Fatalf("TOP 1 1 %q", got)
	}
	w.send("TOP 1 0")
	w.expect("+OK")
	if got := string(dotBody(t, w)); got != "Subject: one\n\n" {
		t.Fatalf("TOP 1 0 %q", got)
	}

	w.send("DELE 1")
	w.expect("+OK message 1 deleted")
	w.send("RETR 1")
	w.expect("-ERR message 1 already deleted")
	w.send("STAT")
	w.expect(fmt.Sprintf("+OK 2 %d", len(secondCRLF)+len(third)))
	w.send("RSET")
	w.expect(fmt.Sprintf("+OK maildrop has 3 messages (%d octets)", total))
	w.send("DELE 1")
	w.expect("+OK message 1 deleted")
	w.send("DELE 3")
	w.expect("+OK message 3 deleted")
	w.send("NOOP")
	w.expect("+OK")
	if n := len(s.Messages(popUser)); n != 3 {
		t.Fatalf("before QUIT the store has %d messages, want 3", n)
	}
	w.send("QUIT")
	w.expectPrefix("+OK")
	w.expectEOF()

	got := s.Messages(popUser)
	if len(got) != 1 || !bytes.Equal(got[0], secondCRLF) {
		t.Fatalf("after DELE 1, DELE 3, QUIT the store is %q", got)
	}
	if n := len(s.Messages("someone@else.example")); n != 1 {
		t.Fatalf("other user's maildrop has %d messages, want 1", n)
	}
	if s.Connections() != 1 || s.Logins() != 1 || s.FailedLogins() != 0 {
		t.Errorf("counters: conns %d logins %d failed %d, want 1 1 0", s.Connections(), s.Logins(), s.FailedLogins())
	}
}

func TestPOP3DeleWithoutQuitKeeps(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestPOP3(t, Normal)
	s.Add(popUser, []byte("Subject: keep\r\n\r\nx\r\n"))
	w := dialLines(t, s.Addr(), cfg)
	popLogin(w, popUser, "good-"+popUser)
	w.send("DELE 1")
	w.expect("+OK message 1 deleted")
	w.c.Close()
	// The server sees EOF and must not enter the UPDATE state.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		s.mu.Lock()
		open := len(s.open)
		s.mu.Unlock()
		if open == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(s.Messages(popUser)); n != 1 {
		t.Fatalf("a dropped session deleted mail: %d messages left, want 1", n)
	}
}

func TestPOP3AuthRefusals(t *testing.T) {
	checkNoGoroutineLeak(t)
	const failure = "-ERR Authentication failure: unknown user name or bad password."
	s, cfg := newTestPOP3(t, Normal)
	w := dialLines(t, s.Addr(), cfg)
	w.expectPrefix("+OK ")

	// The blob on the AUTH line is refused, even with a good token.
	w.send("AUTH XOAUTH2 " + xoauth2B64(popUser, "good-"+popUser))
	w.expect(failure)
	w.send("USER " + popUser)
	w.expect("+OK")
	w.send("PASS secret")
	w.expect(failure)
	w.send("AUTH PLAIN")
	w.expect("+ ")
	w.send("AGNhcm9sQGV4YW1wbGUuY29tAHNlY3JldA==")
	w.expect(failure)
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "expired"))
	w.expect(failure)
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send("not base64!")
	w.expect(failure)
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send("*")
	w.expectPrefix("-ERR ")
	w.send("AUTH CRAM-MD5")
	w.expectPrefix("-ERR ")

	s.SetMode(Disabled)
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "good-"+popUser))
	w.expect(failure)

	s.SetMode(Normal)
	w.send("AUTH XOAUTH2")
	w.expect("+ ")
	w.send(xoauth2B64(popUser, "good-"+popUser))
	w.expect("+OK User successfully authenticated.")
	w.send("AUTH XOAUTH2")
	w.expect("-ERR Command is not valid in this state.")
	w.send("QUIT")
	w.expectPrefix("+OK")

	if s.Logins() != 1 || s.FailedLogins() != 6 {
		t.Errorf("counters: logins %d failed %d, want 1 6", s.Logins(), s.FailedLogins())
	}
}

func TestPOP3LargeMessage(t *testing.T) {
	checkNoGoroutineLeak(t)
	s, cfg := newTestPOP3(t, Normal)
	var b bytes.Buffer
	b.WriteString("Subject: big\r\n\r\n")
	for i := 0; b.Len() < 10<<20; i++ {
		if i%1000 == 0 {
			b.WriteString(".a line that needs stuffing\r\n")
		}
		fmt.Fprintf(&b, "%08d the quick brown fox jumps over the lazy dog\r\n", i)
	}
	big := b.Bytes()
	s.Add(popUser, big)
	w := dialLines(t, s.Addr(), cfg)
	popLogin(w, popUser, "good-"+popUser)
	w.send("RETR 1")
	w.expect(fmt.Sprintf("+OK %d octets", len(big)))
	got := dotBody(t, w)
	if !bytes.Equal(got, bytes.ReplaceAll(big, []byte("\r\n"), []byte("\n"))) {
		t.Fatalf("10 MB message did not round-trip: got %d bytes", len(got))
	}
	w.send("QUIT")
	w.expectPrefix("+OK")
}

func TestPOP3CloseEndsSessions(t *testing.T) {
	checkNoGoroutineLeak(t)
	serverTLS, clientTLS := selfSignedTLS(t)
	s, err := NewPOP3(POP3Options{Validate: goodTokenOnly, TLS: serverTLS})
	if err != nil {
		t.Fatal(err)
	}
	w := dialLines(t, s.Addr(), clientTLS)
	popLogin(w, popUser, "good-"+popUser)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	w.expectEOF()
	if s.Connections() != 1 {
		t.Errorf("connections %d, want 1", s.Connections())
	}
}
