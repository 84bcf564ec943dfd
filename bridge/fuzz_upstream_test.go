package bridge

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// scriptConn is a net.Conn over fixed bytes: reads come from the script,
// writes are kept. Deadlines are accepted and ignored, since the script
// ends with EOF.
type scriptConn struct {
	r io.Reader
	w bytes.Buffer
}

func (c *scriptConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *scriptConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *scriptConn) Close() error                     { return nil }
func (c *scriptConn) LocalAddr() net.Addr              { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1} }
func (c *scriptConn) RemoteAddr() net.Addr             { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2} }
func (c *scriptConn) SetDeadline(time.Time) error      { return nil }
func (c *scriptConn) SetReadDeadline(time.Time) error  { return nil }
func (c *scriptConn) SetWriteDeadline(time.Time) error { return nil }

// fuzzToken is the access token the upstream fuzz targets log in with; no
// error may carry it, raw or in its XOAUTH2 form.
const fuzzToken = "EwBIA+l3BAAUfuzzAccessTokenThatMustNotLeak"

func checkNoTokenInError(t *testing.T, user string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	raw := string(xoauth2.Payload(user, fuzzToken))
	for _, s := range []string{fuzzToken, string(xoauth2.Encoded(user, fuzzToken)), raw, base64.StdEncoding.EncodeToString([]byte(fuzzToken))} {
		if strings.Contains(msg, s) {
			t.Fatalf("error carries the token: %q", msg)
		}
	}
}

// FuzzIMAPUpstreamLogin plays arbitrary upstream bytes against the IMAP
// login exchange (greeting, AUTHENTICATE XOAUTH2, "+" challenges,
// CAPABILITY). It must end, answer a bounded number of challenges, send
// the token only in the one AUTHENTICATE line, and never put the token in
// an error.
func FuzzIMAPUpstreamLogin(f *testing.F) {
	for _, s := range []string{
		"* OK ready\r\nB1 OK [CAPABILITY IMAP4rev1 IDLE MOVE] done\r\n",
		"* OK ready\r\n* CAPABILITY IMAP4rev1 AUTH=XOAUTH2\r\nB1 OK done\r\n",
		"* OK ready\r\nB1 OK done\r\n* CAPABILITY IMAP4rev1 IDLE\r\nB2 OK done\r\n",
		"* OK ready\r\n+ eyJzdGF0dXMiOiI0MDEiLCJzY2hlbWVzIjoiQmVhcmVyIn0=\r\nB1 NO AUTHENTICATE failed.\r\n",
		"* BYE [UNAVAILABLE] Server busy\r\n",
		"* OK\r\n" + strings.Repeat("+\r\n", 70),
		"* OK\r\nB1 OK [CAPABILITY\r\n",
		"* OK\r\nB1 NO [AUTHENTICATIONFAILED\r\n",
		"* OK\n" + strings.Repeat("x", 9000) + "\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const user = "alice@example.com"
		c := &scriptConn{r: bytes.NewReader(data)}
		caps, err := IMAPUpstreamLogin(c, bufio.NewReaderSize(c, imapUpstreamBuf), user, fuzzToken)
		checkNoTokenInError(t, user, err)
		out := c.w.String()
		if n := strings.Count(out, fuzzToken); n > 0 {
			t.Fatalf("the raw token was written %d times", n)
		}
		if n := strings.Count(out, string(xoauth2.Encoded(user, fuzzToken))); n > 1 {
			t.Fatalf("the XOAUTH2 response was sent %d times", n)
		}
		if lines := strings.Count(out, "\r\n"); lines > 2*imapUpstreamLines+2 {
			t.Fatalf("%d lines written to the upstream", lines)
		}
		var fl *diag.Failure
		if err != nil && errors.As(err, &fl) && fl.Stage != "greeting" && fl.Stage != "auth" {
			t.Fatalf("failure stage %q", fl.Stage)
		}
		if err == nil {
			for _, c := range postLoginCaps(caps) {
				if strings.ContainsAny(c, " \r\n") {
					t.Fatalf("capability %q holds a separator", c)
				}
			}
		}
	})
}

// FuzzPOP3UpstreamAuth plays arbitrary upstream bytes against the
// two-step POP3 AUTH XOAUTH2: it must end, send the credentials at most
// once and only after a continuation, answer at most three challenges,
// and keep the token out of errors.
func FuzzPOP3UpstreamAuth(f *testing.F) {
	for _, s := range []string{
		"+OK ready\r\n+ \r\n+OK User successfully authenticated.\r\n",
		"+OK ready\r\n+\r\n+ eyJzdGF0dXMiOiI0MDEifQ==\r\n-ERR Authentication failure: unknown user name or bad password.\r\n",
		"+OK ready\r\n-ERR unknown command\r\n",
		"-ERR [SYS/TEMP] busy\r\n",
		"+OK\r\n+ \r\n+ \r\n+ \r\n+ \r\n+ \r\n",
		"+OK\r\n+ \r\n+OK\r\n+OK 2 320\r\n",
		"+OK\n" + strings.Repeat("y", 9000),
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const user = "alice@example.com"
		c := &scriptConn{r: bytes.NewReader(data)}
		_, err := POP3UpstreamLogin(context.Background(), c, user, fuzzToken)
		checkNoTokenInError(t, user, err)
		out := c.w.String()
		blob := string(xoauth2.Encoded(user, fuzzToken))
		if n := strings.Count(out, blob); n > 1 {
			t.Fatalf("credentials sent %d times", n)
		}
		if strings.Contains(out, blob) && !bytes.Contains(data, []byte("\n+")) {
			t.Fatal("credentials sent without a continuation")
		}
		if n := strings.Count(out, "\r\n"); n > 2+3 {
			t.Fatalf("%d lines written to the upstream", n)
		}
	})
}

// FuzzSMTPUpstreamAuth plays arbitrary upstream replies against
// SMTPUpstreamLogin on go-smtp's client: after EHLO, AUTH XOAUTH2,
// the credentials after a 334, and empty answers to later challenges.
// It must end, send the credentials at most once, and keep the token out
// of errors.
func FuzzSMTPUpstreamAuth(f *testing.F) {
	for _, s := range []string{
		"220 ready\r\n250-hi\r\n250 AUTH LOGIN XOAUTH2\r\n334 \r\n235 2.7.0 Authentication successful\r\n",
		"220 ready\r\n250-hi\r\n250 AUTH XOAUTH2\r\n334 \r\n334 eyJzdGF0dXMiOiI0MDAifQ==\r\n535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Tenant.\r\n",
		"220 ready\r\n250 hi\r\n504 5.7.4 Unrecognized authentication type\r\n",
		"220 ready\r\n250 AUTH XOAUTH2\r\n334 !!!notbase64\r\n",
		"421 4.3.2 Service not available\r\n",
		"220 x\r\n250 x\r\n" + strings.Repeat("334 \r\n", 20),
		"220 x\r\n250 x\r\n334\r\n235\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		const user = "alice@example.com"
		c := &scriptConn{r: bytes.NewReader(data)}
		cl := smtp.NewClient(c)
		cl.CommandTimeout = time.Second
		err := cl.Hello("localhost")
		if err == nil {
			err = SMTPUpstreamLogin(cl, user, fuzzToken)
		}
		checkNoTokenInError(t, user, err)
		cl.Close()
		out := c.w.String()
		enc := string(xoauth2.Encoded(user, fuzzToken))
		if n := strings.Count(out, enc); n > 1 {
			t.Fatalf("credentials sent %d times", n)
		}
		if strings.Contains(out, fuzzToken) {
			t.Fatal("the raw token was written")
		}
	})
}
