package xoauth2

import (
	"bufio"
	"encoding/base64"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

var _ sasl.Client = (*Client)(nil)

// jwtToken is shaped like an Entra access token: three base64url parts,
// 1,800 bytes in all.
func jwtToken() string {
	enc := base64.RawURLEncoding
	head := enc.EncodeToString([]byte(`{"typ":"JWT","alg":"RS256"}`))
	sig := strings.Repeat("s", 342)
	body := enc.EncodeToString([]byte(`{"aud":"https://outlook.office.com","aio":"` + strings.Repeat("a", 2000) + `"}`))
	body = body[:1800-len(head)-len(sig)-2]
	return head + "." + body + "." + sig
}

func TestPayload(t *testing.T) {
	const want = "user=a@b.test\x01auth=Bearer T0K\x01\x01"
	if got := string(Payload("a@b.test", "T0K")); got != want {
		t.Errorf("Payload = %q, want %q", got, want)
	}
	// base64 of the payload above, worked out by hand.
	const wantB64 = "dXNlcj1hQGIudGVzdAFhdXRoPUJlYXJlciBUMEsBAQ=="
	if got := string(Encoded("a@b.test", "T0K")); got != wantB64 {
		t.Errorf("Encoded = %q, want %q", got, wantB64)
	}
}

func TestOneStep(t *testing.T) {
	tok := jwtToken()
	c := OneStep("a@b.test", tok)
	cmd := string(c.Command("B1 AUTHENTICATE"))
	if want := "B1 AUTHENTICATE XOAUTH2 " + string(Encoded("a@b.test", tok)) + "\r\n"; cmd != want {
		t.Errorf("Command = %.60q..., want %.60q...", cmd, want)
	}
	// The only challenge a one-step client sees is the error report.
	for i := range 2 {
		if got := string(c.Answer()); got != "\r\n" {
			t.Errorf("answer %d to an error challenge = %q, want an empty line", i+1, got)
		}
	}

	s := OneStep("a@b.test", tok)
	mech, ir, err := s.Start()
	if mech != "XOAUTH2" || string(ir) != string(Payload("a@b.test", tok)) || err != nil {
		t.Errorf("Start = %q, %d bytes, %v; want XOAUTH2 and the payload", mech, len(ir), err)
	}
	if resp, err := s.Next([]byte(`{"status":"401"}`)); resp == nil || len(resp) != 0 || err != nil {
		t.Errorf("Next after the payload = %q, %v; want an empty, non-nil response", resp, err)
	}
}

func TestTwoStep(t *testing.T) {
	tok := jwtToken()
	c := TwoStep("a@b.test", tok)
	if got := string(c.Command("AUTH")); got != "AUTH XOAUTH2\r\n" {
		t.Errorf("Command = %q, want the mechanism alone", got)
	}
	if got, want := string(c.Answer()), string(Encoded("a@b.test", tok))+"\r\n"; got != want {
		t.Errorf("answer to the first challenge = %.40q..., want the payload", got)
	}
	if got := string(c.Answer()); got != "\r\n" {
		t.Errorf("answer to the error challenge = %q, want an empty line", got)
	}

	s := TwoStep("a@b.test", tok)
	if mech, ir, err := s.Start(); mech != "XOAUTH2" || ir != nil || err != nil {
		t.Errorf("Start = %q, %q, %v; want XOAUTH2 and no initial response", mech, ir, err)
	}
	if resp, _ := s.Next(nil); string(resp) != string(Payload("a@b.test", tok)) {
		t.Errorf("first Next is not the payload")
	}
	if resp, _ := s.Next([]byte(`{"status":"401"}`)); resp == nil || len(resp) != 0 {
		t.Errorf("second Next = %q, want an empty, non-nil response", resp)
	}
}

func TestIsChallenge(t *testing.T) {
	for line, want := range map[string]bool{
		"+": true, "+ ": true, "+ eyJzdGF0dXMiOiI0MDEifQ==": true,
		"+OK": false, "+OK Logged in.": false, "-ERR [AUTH] Authentication failed.": false, "": false,
	} {
		if got := IsChallenge(line); got != want {
			t.Errorf("IsChallenge(%q) = %v, want %v", line, got, want)
		}
	}
}

// smtpScript plays an SMTP server on one end of a pipe: it greets, answers
// EHLO, and then replies to each line after the EHLO with the next of
// replies, recording the lines.
func smtpScript(t *testing.T, replies ...string) (net.Conn, <-chan []string) {
	t.Helper()
	client, server := net.Pipe()
	t.Cleanup(func() { client.Close() })
	got := make(chan []string, 1)
	go func() {
		defer server.Close()
		server.SetDeadline(time.Now().Add(10 * time.Second))
		br := bufio.NewReader(server)
		var lines []string
		defer func() { got <- lines }()
		if _, err := server.Write([]byte("220 smtp.test ESMTP\r\n")); err != nil {
			return
		}
		if l, err := br.ReadString('\n'); err != nil || !strings.HasPrefix(l, "EHLO ") {
			return
		}
		if _, err := server.Write([]byte("250-smtp.test\r\n250 AUTH XOAUTH2\r\n")); err != nil {
			return
		}
		for _, r := range replies {
			l, err := br.ReadString('\n')
			if err != nil {
				return
			}
			lines = append(lines, strings.TrimSuffix(l, "\r\n"))
			if _, err := server.Write([]byte(r + "\r\n")); err != nil {
				return
			}
		}
	}()
	return client, got
}

// TestSMTPTwoStep runs a two-step client through go-smtp: AUTH XOAUTH2
// alone (a 1.8 KB token never rides on the AUTH line), the payload after
// the empty 334, and an empty line for the 334 that carries the error
// report, so the 535 comes back as the error.
func TestSMTPTwoStep(t *testing.T) {
	tok := jwtToken()
	payload := string(Encoded("a@b.test", tok))
	report := base64.StdEncoding.EncodeToString([]byte(`{"status":"401","schemes":"bearer","scope":"https://outlook.office.com/SMTP.Send"}`))

	t.Run("accepted", func(t *testing.T) {
		conn, got := smtpScript(t, "334 ", "235 2.7.0 Authentication successful")
		c := smtp.NewClient(conn)
		if err := c.Auth(TwoStep("a@b.test", tok)); err != nil {
			t.Fatalf("Auth: %v", err)
		}
		c.Close()
		lines := <-got
		if len(lines) != 2 || lines[0] != "AUTH XOAUTH2" || lines[1] != payload {
			t.Errorf("lines sent: %.80q", lines)
		}
	})

	t.Run("refused", func(t *testing.T) {
		conn, got := smtpScript(t, "334 ", "334 "+report, "535 5.7.3 Authentication unsuccessful")
		c := smtp.NewClient(conn)
		err := c.Auth(TwoStep("a@b.test", tok))
		c.Close()
		var se *smtp.SMTPError
		if !errors.As(err, &se) || se.Code != 535 || se.Message != "Authentication unsuccessful" {
			t.Errorf("Auth = %v, want the server's 535", err)
		}
		lines := <-got
		if len(lines) != 3 || lines[0] != "AUTH XOAUTH2" || lines[1] != payload || lines[2] != "" {
			t.Errorf("lines sent: %.80q; want AUTH XOAUTH2, the payload, an empty line", lines)
		}
		for _, l := range lines {
			if len(l)+2 > 512 && l != payload {
				t.Errorf("a %d-byte line went out besides the payload line", len(l))
			}
		}
	})
}

// TestLongTokenNeverInline: the two-step command line stays within POP3's
// 255 octets and SMTP's 512 whatever the token's size.
func TestLongTokenNeverInline(t *testing.T) {
	tok := jwtToken()
	if len(tok) < 1800 {
		t.Fatalf("test token of %d bytes", len(tok))
	}
	for _, verb := range []string{"AUTH", "B1 AUTHENTICATE"} {
		line := TwoStep(strings.Repeat("u", 64)+"@example.com", tok).Command(verb)
		if len(line) > 255 || strings.Contains(string(line), "dXNlcj") {
			t.Errorf("two-step %s line is %d bytes: %.40q", verb, len(line), line)
		}
	}
}
