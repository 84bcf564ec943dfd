package bridge

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestRedactCommand(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		secret   bool
	}{
		{"a1 LOGIN alice s3cret", "a1 LOGIN [redacted]", true},
		{"a1 login {5}", "a1 login [redacted]", true},
		{"a1 AUTHENTICATE PLAIN AGFAYgBj", "a1 AUTHENTICATE PLAIN [redacted]", true},
		{"a1 AUTHENTICATE PLAIN", "a1 AUTHENTICATE PLAIN", true},
		{"B1 AUTHENTICATE XOAUTH2 dXNlcj1h", "B1 AUTHENTICATE XOAUTH2 [redacted]", true},
		{"AUTH PLAIN AGFAYgBj", "AUTH PLAIN [redacted]", true},
		{"AUTH LOGIN YWxpY2U=", "AUTH LOGIN [redacted]", true},
		{"auth x\x00y z", "auth [redacted]", true},
		{"PASS with spaces", "PASS [redacted]", true},
		{"USER alice@example.com", "USER alice@example.com", false},
		{"a1 CAPABILITY", "a1 CAPABILITY", false},
		{"EHLO host\x01", "EHLO host?", false},
	} {
		got, secret := redactCommand([]byte(tc.in))
		if got != tc.want || secret != tc.secret {
			t.Errorf("redactCommand(%q) = %q, %v; want %q, %v", tc.in, got, secret, tc.want, tc.secret)
		}
	}
}

// TestWireTraceExchanges replays login exchanges in chunks that split
// lines and checks what the trace logs.
func TestWireTraceExchanges(t *testing.T) {
	type step struct {
		auth bool
		data string
	}
	for _, tc := range []struct {
		proto Proto
		steps []step
		want  []string // "C: ..." and "S: ..." lines
	}{
		{IMAP, []step{
			{false, "* OK ready\r\n"},
			{true, "a1 LOGIN alice {6}\r\n"},
			{false, "+ Ready\r\n"},
			{true, "s3c"}, {true, "ret\r\n"},
			{false, "a1 OK done\r\n"},
			{true, "a2 NOOP\r\n"},
		}, []string{"S: * OK ready", "C: a1 LOGIN [redacted]", "S: + Ready", "C: [redacted]", "S: a1 OK done", "C: a2 NOOP"}},
		{IMAP, []step{
			{true, "a1 LOGIN alice {6+}\r\ns3cret\r\na2 NOOP\r\n"},
			{false, "a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"},
			{true, "a3 CAPABILITY\r\n"},
		}, []string{"C: a1 LOGIN [redacted]", "C: [redacted]", "C: [redacted]", "S: a1 NO [AUTHENTICATIONFAILED] Invalid credentials", "C: a3 CAPABILITY"}},
		{POP3, []step{
			{true, "USER alice\r\n"}, {false, "+OK Send PASS\r\n"},
			{true, "PASS s3cret\r\n"}, {false, "+OK Logged in\r\n"},
			{true, "AUTH PLAIN\r\n"}, {false, "+ \r\n"}, {true, "AGFsaWNlAHMzY3JldA==\r\n"}, {false, "+OK\r\n"},
			{true, "STAT\r\n"},
		}, []string{"C: USER alice", "S: +OK Send PASS", "C: PASS [redacted]", "S: +OK Logged in", "C: AUTH PLAIN", "S: + ", "C: [redacted]", "S: +OK", "C: STAT"}},
		{SMTP, []step{
			{true, "AUTH LOGIN\r\n"}, {false, "334 VXNlcm5hbWU6\r\n"}, {true, "YWxpY2U=\r\n"},
			{false, "334 UGFzc3dvcmQ6\r\n"}, {true, "czNjcmV0\r\n"}, {false, "235 2.7.0 ok\r\n"}, {true, "MAIL FROM:<a@b>\r\n"},
		}, []string{"C: AUTH LOGIN", "S: 334 VXNlcm5hbWU6", "C: [redacted]", "S: 334 UGFzc3dvcmQ6", "C: [redacted]", "S: 235 2.7.0 ok", "C: MAIL FROM:<a@b>"}},
	} {
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey || a.Key == slog.LevelKey || a.Key == slog.MessageKey {
				return slog.Attr{}
			}
			return a
		}}))
		tr := newWireTrace(log, true, tc.proto, "client", nil)
		for _, s := range tc.steps {
			if s.auth {
				tr.fromAuth([]byte(s.data))
			} else {
				tr.fromOther([]byte(s.data))
			}
		}
		var got []string
		for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
			_, rest, _ := strings.Cut(l, "dir=")
			dir, line, _ := strings.Cut(rest, " line=")
			got = append(got, dir+": "+strings.Trim(line, `"`))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%s trace:\n%s\nwant:\n%s", tc.proto, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
		if strings.Contains(buf.String(), "s3cret") || strings.Contains(buf.String(), "czNjcmV0") {
			t.Errorf("%s: the secret is in the trace", tc.proto)
		}
		tr.stop()
		n := buf.Len()
		tr.fromAuth([]byte("a9 LOGIN x y\r\n"))
		if buf.Len() != n {
			t.Errorf("%s: traced after stop", tc.proto)
		}
	}
	if newWireTrace(slog.Default(), false, IMAP, "client", nil) != nil {
		t.Error("a trace when tracing is off")
	}
}

// FuzzWireTrace interleaves arbitrary server bytes with client lines that
// carry a password after LOGIN, PASS, AUTH or AUTHENTICATE, each line cut
// at an arbitrary point, for each protocol. The password must never be
// logged, and no logged line may exceed the bound.
func FuzzWireTrace(f *testing.F) {
	f.Add([]byte("+ Ready\r\n* OK\r\na1 NO x\r\n"), []byte{0, 3, 2, 5, 4, 7, 6}, uint8(0))
	f.Add([]byte("334 VXNlcm5hbWU6\r\n235 ok\r\n"), []byte{4, 41, 8, 9, 2}, uint8(2))
	f.Add([]byte("+OK\r\n+ \r\n-ERR\r\n"), []byte{2, 255, 0, 1, 6}, uint8(1))
	f.Fuzz(func(t *testing.T, server, script []byte, p uint8) {
		const pw = "PW-Zx81q"
		lines := []string{"a1 LOGIN alice " + pw, "PASS " + pw, "AUTH PLAIN " + pw, "a2 AUTHENTICATE PLAIN " + pw,
			"a3 NOOP", "a4 login {8}", "auth login " + pw, "a5 Login \"alice\" \"" + pw + "\""}
		// The server side is logged as sent; keep the password out of it.
		for bytes.Contains(server, []byte(pw)) {
			server = bytes.ReplaceAll(server, []byte(pw), nil)
		}
		proto := []Proto{IMAP, POP3, SMTP}[int(p)%3]
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tr := newWireTrace(log, true, proto, "client", nil)
		for _, b := range script {
			if b&1 == 0 {
				l := lines[int(b>>1)%len(lines)] + "\r\n"
				k := int(b>>4) % len(l)
				tr.fromAuth([]byte(l[:k]))
				tr.fromAuth([]byte(l[k:]))
				continue
			}
			n := min(int(b>>1), len(server))
			tr.fromOther(server[:n])
			server = server[n:]
		}
		tr.fromOther(server)
		out := buf.String()
		if strings.Contains(out, pw) {
			t.Fatalf("the password was logged:\n%s", out)
		}
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 2*traceLineMax+200 {
				t.Fatalf("log line of %d bytes", len(l))
			}
		}
	})
}
