package integration

import (
	"bytes"
	"fmt"
	"net/mail"
	"strings"
	"testing"
)

// message is a mail message in its wire form: CRLF line ends, headers, a
// blank line, the body.
type message struct {
	subject string
	raw     []byte
}

// body returns the part after the header block.
func (m message) body() []byte { return bodyOf(m.raw) }

// bodyOf returns what follows the first blank line, in either line-end
// convention.
func bodyOf(raw []byte) []byte {
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		return raw[i+4:]
	}
	if i := bytes.Index(raw, []byte("\n\n")); i >= 0 {
		return raw[i+2:]
	}
	return nil
}

// subjectOf parses the Subject header of raw ("" when there is none).
func subjectOf(raw []byte) string {
	m, err := mail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return m.Header.Get("Subject")
}

// lf turns CRLF line ends into LF, for comparing what a client stored on
// disk (Maildir files and mbox usually hold LF) with the wire form.
func lf(b []byte) []byte { return bytes.ReplaceAll(b, []byte("\r\n"), []byte("\n")) }

// crlf turns bare LF line ends into CRLF.
func crlf(b []byte) []byte {
	return bytes.ReplaceAll(lf(b), []byte("\n"), []byte("\r\n"))
}

// newMessage builds a plain-text message from from to to with subject and
// body (LF or CRLF; the result has CRLF).
func newMessage(from, to, subject, body string) message {
	var b strings.Builder
	fmt.Fprintf(&b, "From: %s\r\nTo: %s\r\nSubject: %s\r\n", from, to, subject)
	fmt.Fprintf(&b, "Date: Mon, 02 Jan 2006 15:04:05 +0000\r\n")
	fmt.Fprintf(&b, "Message-ID: <%s@bridge.test>\r\n", strings.ReplaceAll(strings.ToLower(subject), " ", "-"))
	b.WriteString("MIME-Version: 1.0\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n")
	b.Write(crlf([]byte(body)))
	return message{subject: subject, raw: []byte(b.String())}
}

// bigBody is about size bytes of numbered ASCII lines, each different, so
// a lost, doubled or reordered chunk shows up in a comparison.
func bigBody(size int) string {
	var b strings.Builder
	b.Grow(size + 100)
	for i := 0; b.Len() < size; i++ {
		fmt.Fprintf(&b, "line %07d of the large message: the quick brown fox jumps over the lazy dog %04x\n", i, i*7919%65536)
	}
	return b.String()
}

// seedMessages are the messages every test mailbox starts with: two small
// ones and one of about 3 MB.
func seedMessages(user string) []message {
	return []message{
		newMessage("Alice <alice@example.org>", user, "Welcome to the bridge",
			"Hello,\n\nthis is the first seeded message.\nIt has three lines of text.\n"),
		newMessage("Bob <bob@example.org>", user, "Quarterly numbers",
			"Revenue: 100\nCosts: 80\n.\nA line with only a dot is above; POP3 and SMTP must stuff it.\n"),
		newMessage("Carol <carol@example.org>", user, "Large attachment stand-in",
			bigBody(3<<20)),
	}
}

// sameBody fails the test unless got and want have equal bodies once line
// ends are ignored, reporting sizes rather than megabytes of text.
func sameBody(t testing.TB, what string, got, want []byte) {
	t.Helper()
	g, w := lf(got), lf(want)
	if bytes.Equal(g, w) {
		return
	}
	// Some clients add or drop one final newline; that is not a change to
	// the message the user wrote, but everything before it must match.
	if bytes.Equal(bytes.TrimRight(g, "\n"), bytes.TrimRight(w, "\n")) {
		return
	}
	i := 0
	for i < len(g) && i < len(w) && g[i] == w[i] {
		i++
	}
	t.Errorf("%s: body differs at byte %d (got %d bytes, want %d)\ngot:  %q\nwant: %q", what, i, len(g), len(w), snippet(g, i), snippet(w, i))
}

func snippet(b []byte, at int) []byte {
	lo, hi := max(0, at-40), min(len(b), at+40)
	return b[lo:hi]
}
