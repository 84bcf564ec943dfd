package bridge

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

func TestTraceCommand(t *testing.T) {
	for _, tc := range []struct {
		proto    Proto
		in, want string
		login    bool
	}{
		{IMAP, "a1 LOGIN alice s3cret", "a1 LOGIN [redacted]", true},
		{IMAP, "a1 login {5}", "a1 login [redacted]", true},
		{IMAP, "a1 AUTHENTICATE PLAIN AGFAYgBj", "a1 AUTHENTICATE PLAIN [redacted]", true},
		{IMAP, "a1 AUTHENTICATE PLAIN", "a1 AUTHENTICATE PLAIN", true},
		{IMAP, "B1 AUTHENTICATE XOAUTH2 dXNlcj1h", "B1 AUTHENTICATE XOAUTH2 [redacted]", true},
		{IMAP, "a1 AUTHENTICATE AGFsaWNl", "a1 AUTHENTICATE [redacted]", true},
		{IMAP, "a1 CAPABILITY", "a1 CAPABILITY", false},
		{IMAP, "a1 NOOP s3cret", "a1 NOOP [redacted]", false},
		{IMAP, `a1 ID ("name" "mutt")`, `a1 ID ("name" "mutt")`, false},
		// Lines the server refuses before parsing them are redacted whole.
		{IMAP, "a1  LOGIN alice s3cret", redacted, false},
		{IMAP, "a1 LOGIN\talice s3cret", redacted, false},
		{IMAP, "a1\tLOGIN alice s3cret", redacted, false},
		{IMAP, "+a LOGIN alice s3cret", redacted, false},
		{IMAP, "a1 SELECT s3cret", redacted, false},
		{IMAP, "s3cret", redacted, false},
		{POP3, "USER alice@example.com", "USER alice@example.com", false},
		{POP3, "PASS with spaces", "PASS [redacted]", true},
		{POP3, "pass  s3cret", "pass [redacted]", true},
		{POP3, "PASS\ts3cret", redacted, false},
		{POP3, "AUTH PLAIN AGFAYgBj", "AUTH PLAIN [redacted]", true},
		{POP3, "AUTH", "AUTH", true},
		{POP3, "CAPA", "CAPA", false},
		{POP3, "a1 LOGIN alice s3cret", redacted, false},
		{SMTP, "AUTH PLAIN AGFAYgBj", "AUTH PLAIN [redacted]", true},
		{SMTP, "AUTH LOGIN YWxpY2U=", "AUTH LOGIN [redacted]", true},
		{SMTP, "auth x\x00y z", "auth [redacted]", true},
		{SMTP, "AUTH  PLAIN AGFAYgBj", "AUTH [redacted]", true},
		{SMTP, "AUTH\tPLAIN AGFAYgBj", redacted, false},
		{SMTP, "EHLO host\x01", "EHLO host?", false},
		{SMTP, "czNjcmV0", redacted, false},
	} {
		got, login := traceCommand(tc.proto, []byte(tc.in), false)
		if got != tc.want || login != tc.login {
			t.Errorf("%s traceCommand(%q) = %q, %v; want %q, %v", tc.proto, tc.in, got, login, tc.want, tc.login)
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
		// Pipelined: the reply to the command before the login does not
		// end the login, and a literal is counted from its "{n}" whatever
		// the server answers.
		{IMAP, []step{
			{true, "a0 NOOP\r\na1 LOGIN alice {6}\r\n"},
			{false, "a0 OK NOOP completed\r\n+ Ready\r\n"},
			{true, "s3cret\r\n"},
			{false, "a1 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n"},
			{true, "a2 CAPABILITY\r\n"},
		}, []string{"C: a0 NOOP", "C: a1 LOGIN [redacted]", "S: a0 OK NOOP completed", "S: + Ready", "C: [redacted]",
			"S: a1 NO [AUTHENTICATIONFAILED] Invalid credentials", "C: a2 CAPABILITY"}},
		{IMAP, []step{
			{true, "a0 NOOP\r\na1 AUTHENTICATE PLAIN\r\n"},
			{false, "a0 OK NOOP completed\r\n+ \r\n"},
			{true, "AGFsaWNlAHMzY3JldA==\r\n"},
			{false, "a1 OK done\r\n"},
		}, []string{"C: a0 NOOP", "C: a1 AUTHENTICATE PLAIN", "S: a0 OK NOOP completed", "S: + ", "C: [redacted]", "S: a1 OK done"}},
		{IMAP, []step{
			{true, "a1 LOGIN {5}\r\n"}, {false, "+ Ready\r\n"},
			{true, "alice {10}\r\n"}, {false, "+ Ready\r\n"},
			{true, "s3cret\r\nxy\r\n"}, {false, "a1 OK\r\n"},
		}, []string{"C: a1 LOGIN [redacted]", "S: + Ready", "C: [redacted]", "S: + Ready", "C: [redacted]", "S: a1 OK"}},
		// Refused before parsing: redacted whole, and so is the literal.
		{IMAP, []step{
			{true, "a1  LOGIN alice {6+}\r\ns3cret\r\n"},
			{false, "a1 BAD Missing command\r\n"},
			{true, "a2 LOGIN\talice s3cret\r\na3\tLOGIN alice s3cret\r\n"},
		}, []string{"C: [redacted]", "C: [redacted]", "S: a1 BAD Missing command", "C: [redacted]", "C: [redacted]"}},
		{POP3, []step{
			{true, "NOOP\r\nAUTH PLAIN\r\n"},
			{false, "+OK\r\n+ \r\n"},
			{true, "AGFsaWNlAHMzY3JldA==\r\n"},
			{false, "-ERR [AUTH] Invalid credentials\r\n"},
			{true, "PASS\ts3cret\r\nCAPA\r\n"},
		}, []string{"C: NOOP", "C: AUTH PLAIN", "S: +OK", "S: + ", "C: [redacted]", "S: -ERR [AUTH] Invalid credentials", "C: [redacted]", "C: CAPA"}},
		{SMTP, []step{
			{true, "EHLO x\r\nNOOP\r\nAUTH PLAIN\r\n"},
			{false, "250-bridge\r\n250 AUTH PLAIN LOGIN\r\n250 2.0.0 OK\r\n334 \r\n"},
			{true, "AGFsaWNlAHMzY3JldA==\r\n"},
			{false, "535 5.7.8 Invalid credentials\r\n"},
			{true, "AUTH\tPLAIN AGFsaWNlAHMzY3JldA==\r\nQUIT\r\n"},
		}, []string{"C: EHLO x", "C: NOOP", "C: AUTH PLAIN", "S: 250-bridge", "S: 250 AUTH PLAIN LOGIN", "S: 250 2.0.0 OK",
			"S: 334 ", "C: [redacted]", "S: 535 5.7.8 Invalid credentials", "C: [redacted]", "C: QUIT"}},
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
		if strings.Contains(buf.String(), "s3cret") || strings.Contains(buf.String(), "czNjcmV0") || strings.Contains(buf.String(), "HMzY3JldA") {
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

// FuzzWireTrace drives one trace with what clients send for login
// commands (a password on the line, in literals, in SASL responses, in
// lines the server refuses before parsing them) and harmless commands,
// pipelined in any grouping and cut at any point, interleaved with
// arbitrary server bytes and arbitrary client lines taken from them, for
// each protocol. The password must never be logged, whatever the server
// answers, and no logged line may exceed the bound.
//
// Each script byte is one step: its low 3 bits the operation, the rest its
// argument.
func FuzzWireTrace(f *testing.F) {
	f.Add([]byte("+ Ready\r\n* OK\r\na1 NO x\r\n"), []byte{0, 3, 2, 5, 4, 7, 6}, uint8(0))
	f.Add([]byte("334 VXNlcm5hbWU6\r\n235 ok\r\n"), []byte{4, 41, 8, 9, 2}, uint8(2))
	f.Add([]byte("+OK\r\n+ \r\n-ERR\r\n"), []byte{2, 255, 0, 1, 6}, uint8(1))
	// "a0 NOOP" and "a1 LOGIN alice {8}" in one packet; the NOOP's reply,
	// then the continuation request, then the literal.
	f.Add([]byte("a0 OK NOOP completed\r\n+ Ready\r\na1 NO x\r\n"), []byte{21 << 3, 2, 1 << 3, 2, 7, 7, 2, 7}, uint8(0))
	// "NOOP" and "AUTH PLAIN" in one packet, the NOOP's reply, then the
	// challenge and the PLAIN response.
	f.Add([]byte("+OK\r\n+ \r\n-ERR no\r\n"), []byte{23 << 3, 2, 11 << 3, 2, 7, 7, 2, 7}, uint8(1))
	f.Add([]byte("250 2.0.0 OK\r\n334 \r\n535 no\r\n"), []byte{23 << 3, 2, 11 << 3, 2, 7, 7, 2, 7}, uint8(2))
	// Refused lines, and a client line taken from the server bytes.
	f.Add([]byte("a1 BAD x\r\na1 LOGIN {99}\r\n"), []byte{14 << 3, 17 << 3, 15 << 3, 3, 7, 5, 2, 7}, uint8(0))
	f.Fuzz(func(t *testing.T, server, script []byte, p uint8) {
		const pw = "PW-Zx81q"
		units := [][]string{
			{"a1 LOGIN alice " + pw + "\r\n"},
			{"a1 LOGIN alice {8}\r\n", pw + "\r\n"},
			{"a1 LOGIN alice {8+}\r\n" + pw + "\r\n"},
			{"a1 LOGIN {5}\r\n", "alice {13}\r\n", "x\r\n" + pw + " y\r\n"},
			{"a1 LOGIN \"alice\" \"" + pw + "\"\r\n"},
			{"a2 AUTHENTICATE PLAIN " + pw + "\r\n"},
			{"a2 AUTHENTICATE PLAIN\r\n", pw + "\r\n"},
			{"a2 authenticate LOGIN\r\n", pw + "\r\n", pw + "\r\n"},
			{"PASS " + pw + "\r\n"},
			{"pass  " + pw + " " + pw + "\r\n"},
			{"AUTH PLAIN " + pw + "\r\n"},
			{"AUTH PLAIN\r\n", pw + "\r\n"},
			{"auth login\r\n", pw + "\r\n", pw + "\r\n"},
			{"AUTH LOGIN " + pw + "\r\n", pw + "\r\n"},
			// Refused before parsing.
			{"a1  LOGIN alice " + pw + "\r\n"},
			{"a1 LOGIN\talice " + pw + "\r\n"},
			{"a1\tLOGIN alice " + pw + "\r\n"},
			{"a1  LOGIN alice {8}\r\n", pw + "\r\n"},
			{"PASS\t" + pw + "\r\n"},
			{"AUTH\tPLAIN " + pw + "\r\n"},
			{"AUTH  PLAIN " + pw + "\r\n"},
			// Harmless commands.
			{"a0 NOOP\r\n"}, {"a0 CAPABILITY\r\n"}, {"NOOP\r\n"}, {"USER alice\r\n"}, {"EHLO x\r\n"},
			{"CAPA\r\n"}, {"a0 ID NIL\r\n"},
		}
		// The server side is logged as sent; keep the password out of it.
		for bytes.Contains(server, []byte(pw)) {
			server = bytes.ReplaceAll(server, []byte(pw), nil)
		}
		proto := []Proto{IMAP, POP3, SMTP}[int(p)%3]
		var buf bytes.Buffer
		log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
		tr := newWireTrace(log, true, proto, "client", nil)
		send := func(s string, cut int) {
			k := cut % (len(s) + 1)
			tr.fromAuth([]byte(s[:k]))
			tr.fromAuth([]byte(s[k:]))
		}
		take := func(n int) []byte {
			n = min(n, len(server))
			b := server[:n]
			server = server[n:]
			return b
		}
		takeLine := func() []byte { return take(bytes.IndexByte(server, '\n') + 1) }
		var queued []string // parts not yet sent, in order
		for _, b := range script {
			arg := int(b >> 3)
			switch b & 7 {
			case 0, 1:
				queued = append(queued, units[arg%len(units)]...)
			case 2: // the next part, cut in two
				if len(queued) > 0 {
					send(queued[0], arg)
					queued = queued[1:]
				}
			case 3: // every queued part in one packet
				send(strings.Join(queued, ""), arg*7)
				queued = nil
			case 4:
				tr.fromOther(take(arg + 1))
			case 5: // a client line of arbitrary bytes, between parts
				if l := bytes.TrimRight(takeLine(), "\r\n"); len(l) > 0 {
					send(string(l)+"\r\n", arg)
				}
			case 6:
				tr.fromOther(take(len(server)))
			case 7:
				tr.fromOther(takeLine())
			}
		}
		send(strings.Join(queued, ""), 0)
		tr.fromOther(server)
		out := buf.String()
		if strings.Contains(out, pw) {
			t.Fatalf("the password was logged:\n%s", strings.ReplaceAll(out, pw, "<the password>"))
		}
		for _, l := range strings.Split(out, "\n") {
			if len(l) > 2*traceLineMax+200 {
				t.Fatalf("log line of %d bytes", len(l))
			}
		}
	})
}
