package bridge

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"testing"
)

// pop3LineFeeder hands out its input one line per Read, as a client that
// waits for each reply would, so that STLS finds nothing pipelined.
type pop3LineFeeder struct{ rest []byte }

func (f *pop3LineFeeder) Read(p []byte) (int, error) {
	if len(f.rest) == 0 {
		return 0, io.EOF
	}
	n := bytes.IndexByte(f.rest, '\n') + 1
	if n == 0 {
		n = len(f.rest)
	}
	n = copy(p, f.rest[:n])
	f.rest = f.rest[n:]
	return n, nil
}

type pop3ReadWriter struct {
	io.Reader
	io.Writer
}

// pop3ScriptOutcome is what driving the reader over a script produced.
type pop3ScriptOutcome struct {
	out    string   // every byte the reader wrote
	logins []string // "user/pass" of each login request
	err    error    // why the dialogue ended; nil for QUIT or a login
}

// drivePOP3Reader runs the reader over input the way the session does, with
// a login that succeeds only for user@example.com / secret. With lineByLine
// each Read returns one line; otherwise everything arrives at once.
func drivePOP3Reader(o FrontOptions, secure, lineByLine bool, input string) pop3ScriptOutcome {
	var out bytes.Buffer
	var in io.Reader = strings.NewReader(input)
	if lineByLine {
		in = &pop3LineFeeder{rest: []byte(input)}
	}
	rw := pop3ReadWriter{in, &out}
	r := newPOP3Reader(rw, secure, o)
	r.reply(pop3Greeting)
	var res pop3ScriptOutcome
	for range 1000 {
		req, err := r.next()
		if err != nil {
			res.err = err
			break
		}
		if req.kind == pop3Quit {
			break
		}
		if req.kind == pop3STLS {
			r.reset(rw)
			continue
		}
		res.logins = append(res.logins, req.user+"/"+req.pass)
		if req.user == "user@example.com" && req.pass == "secret" {
			r.reply(pop3LoggedIn)
			break
		}
		r.reply(pop3BadCreds)
		if r.fail() {
			res.err = errPOP3TooManyFails
			break
		}
	}
	res.out = out.String()
	return res
}

func pop3Plain(authz, user, pass string) string {
	return base64.StdEncoding.EncodeToString([]byte(authz + "\x00" + user + "\x00" + pass))
}

func TestPOP3ReaderScripts(t *testing.T) {
	withTLS := FrontOptions{TLS: &tls.Config{}}
	long := strings.Repeat("x", 300)
	tests := []struct {
		name    string
		o       FrontOptions
		secure  bool
		in      []string
		want    []string // replies after the greeting
		logins  []string
		wantErr error
	}{
		{
			name: "user pass",
			in:   []string{"USER user@example.com", "PASS secret"},
			want: []string{pop3UserOK, pop3LoggedIn}, logins: []string{"user@example.com/secret"},
		},
		{
			name: "password with spaces and lower-case commands",
			in:   []string{"user a@b.c", "pass s p a c e", "QUIT"},
			want: []string{pop3UserOK, pop3BadCreds, pop3Bye}, logins: []string{"a@b.c/s p a c e"},
		},
		{
			name: "pass without user",
			in:   []string{"PASS secret", "QUIT"},
			want: []string{pop3NeedUser, pop3Bye},
		},
		{
			name: "capa without TLS",
			in:   []string{"CAPA", "QUIT"},
			want: []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
				"USER", "SASL PLAIN", "IMPLEMENTATION bridge", ".", pop3Bye},
		},
		{
			name: "capa offers STLS",
			o:    withTLS,
			in:   []string{"CAPA", "QUIT"},
			want: []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE",
				"USER", "SASL PLAIN", "STLS", "IMPLEMENTATION bridge", ".", pop3Bye},
		},
		{
			name: "STLS then capa without STLS",
			o:    withTLS,
			in:   []string{"USER x", "STLS", "CAPA", "PASS secret", "QUIT"},
			want: []string{pop3UserOK, pop3BeginTLS, "+OK Capability list follows", "TOP", "UIDL", "RESP-CODES",
				"AUTH-RESP-CODE", "USER", "SASL PLAIN", "IMPLEMENTATION bridge", ".", pop3NeedUser, pop3Bye},
		},
		{
			name: "STLS without a certificate",
			in:   []string{"STLS", "QUIT"},
			want: []string{pop3NoSTLS, pop3Bye},
		},
		{
			name:   "STLS twice",
			o:      withTLS,
			secure: true,
			in:     []string{"STLS", "QUIT"},
			want:   []string{pop3NoSTLS, pop3Bye},
		},
		{
			name: "require TLS refuses plain logins and hides them in CAPA",
			o:    FrontOptions{TLS: &tls.Config{}, RequireTLS: true},
			in: []string{"CAPA", "USER user@example.com", "PASS secret", "AUTH PLAIN " + pop3Plain("", "user@example.com", "secret"),
				"STLS", "USER user@example.com", "PASS secret"},
			want: []string{"+OK Capability list follows", "TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "STLS",
				"IMPLEMENTATION bridge", ".", pop3TLSRequired, pop3TLSRequired, pop3TLSRequired,
				pop3BeginTLS, pop3UserOK, pop3LoggedIn},
			logins: []string{"user@example.com/secret"},
		},
		{
			name: "auth plain initial response",
			in:   []string{"AUTH PLAIN " + pop3Plain("", "user@example.com", "secret")},
			want: []string{pop3LoggedIn}, logins: []string{"user@example.com/secret"},
		},
		{
			name: "auth plain continuation with matching authzid",
			in:   []string{"auth plain", pop3Plain("user@example.com", "user@example.com", "secret")},
			want: []string{"+ ", pop3LoggedIn}, logins: []string{"user@example.com/secret"},
		},
		{
			name: "auth plain canceled",
			in:   []string{"AUTH PLAIN", "*", "QUIT"},
			want: []string{"+ ", pop3AuthCanceled, pop3Bye},
		},
		{
			name: "auth plain empty initial response and bad base64 count as failures",
			o:    FrontOptions{MaxFailures: 2},
			in:   []string{"AUTH PLAIN =", "AUTH PLAIN !!!", "QUIT"},
			want: []string{pop3BadPlain, pop3BadPlain}, wantErr: errPOP3TooManyFails,
		},
		{
			name: "auth plain as someone else",
			in:   []string{"AUTH PLAIN " + pop3Plain("boss@example.com", "user@example.com", "secret"), "QUIT"},
			want: []string{pop3BadPlain, pop3Bye},
		},
		{
			name: "auth mechanisms",
			in:   []string{"AUTH", "AUTH XOAUTH2", "AUTH LOGIN", "QUIT"},
			want: []string{"+OK", "PLAIN", ".", pop3NoMech, pop3NoMech, pop3Bye},
		},
		{
			name: "transaction commands and unknown ones",
			in:   []string{"STAT", "RETR 1", "NOOP", "HELO x", "", "QUIT"},
			want: []string{pop3NotLoggedIn, pop3NotLoggedIn, pop3NoopOK, pop3Unknown, pop3Unknown, pop3Bye},
		},
		{
			name:    "three failures close",
			in:      []string{"USER a", "PASS 1", "USER a", "PASS 2", "USER a", "PASS 3", "USER a"},
			want:    []string{pop3UserOK, pop3BadCreds, pop3UserOK, pop3BadCreds, pop3UserOK, pop3BadCreds},
			logins:  []string{"a/1", "a/2", "a/3"},
			wantErr: errPOP3TooManyFails,
		},
		{
			name: "command longer than 255 octets",
			in:   []string{"USER " + long, "QUIT"},
			want: []string{pop3LineTooLong, pop3Bye},
		},
		{
			name: "command of exactly 255 octets",
			in:   []string{"USER " + strings.Repeat("y", 255-2-5), "QUIT"},
			want: []string{pop3UserOK, pop3Bye},
		},
		{
			name: "auth line may be longer, up to 1 KB",
			in:   []string{"AUTH PLAIN " + pop3Plain("", "user@example.com", strings.Repeat("p", 400)), "QUIT"},
			want: []string{pop3BadCreds, pop3Bye}, logins: []string{"user@example.com/" + strings.Repeat("p", 400)},
		},
		{
			name:    "line over 1 KB closes",
			in:      []string{"AUTH PLAIN " + strings.Repeat("A", 1100), "QUIT"},
			want:    []string{pop3LineTooLong},
			wantErr: errPOP3LineTooLong,
		},
		{
			name:    "continuation over 1 KB closes",
			in:      []string{"AUTH PLAIN", strings.Repeat("A", 1100)},
			want:    []string{"+ ", pop3LineTooLong},
			wantErr: errPOP3LineTooLong,
		},
		{
			name:    "client goes away",
			in:      []string{"NOOP"},
			want:    []string{pop3NoopOK},
			wantErr: io.EOF,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := strings.Join(tc.in, "\r\n") + "\r\n"
			res := drivePOP3Reader(tc.o, tc.secure, true, in)
			want := pop3Greeting + "\r\n" + strings.Join(tc.want, "\r\n") + "\r\n"
			if res.out != want {
				t.Errorf("replies:\n got %q\nwant %q", res.out, want)
			}
			if strings.Join(res.logins, "|") != strings.Join(tc.logins, "|") {
				t.Errorf("logins %q, want %q", res.logins, tc.logins)
			}
			if !errors.Is(res.err, tc.wantErr) {
				t.Errorf("ended with %v, want %v", res.err, tc.wantErr)
			}
		})
	}
}

// TestPOP3ReaderBareLF accepts LF line ends and pipelined commands.
func TestPOP3ReaderBareLF(t *testing.T) {
	res := drivePOP3Reader(FrontOptions{}, false, false, "NOOP\nUSER user@example.com\nPASS secret\n")
	want := pop3Greeting + "\r\n" + pop3NoopOK + "\r\n" + pop3UserOK + "\r\n" + pop3LoggedIn + "\r\n"
	if res.out != want || res.err != nil {
		t.Fatalf("got %q, %v; want %q", res.out, res.err, want)
	}
}

// TestPOP3ReaderSTLSPipelined refuses STLS followed by bytes sent in the
// clear (the STARTTLS command-injection attack, RFC 2595 section 4).
func TestPOP3ReaderSTLSPipelined(t *testing.T) {
	res := drivePOP3Reader(FrontOptions{TLS: &tls.Config{}}, false, false, "STLS\r\nUSER user@example.com\r\n")
	want := pop3Greeting + "\r\n" + pop3STLSPipeline + "\r\n"
	if res.out != want || !errors.Is(res.err, errPOP3STLSPipeline) {
		t.Fatalf("got %q, %v; want %q", res.out, res.err, want)
	}
}

// TestPOP3ReaderCommandLimit closes a connection that sends too many
// commands without logging in.
func TestPOP3ReaderCommandLimit(t *testing.T) {
	res := drivePOP3Reader(FrontOptions{}, false, false, strings.Repeat("NOOP\r\n", pop3MaxCommands+5))
	want := pop3Greeting + "\r\n" + strings.Repeat(pop3NoopOK+"\r\n", pop3MaxCommands) + pop3TooMany + "\r\n"
	if res.out != want || !errors.Is(res.err, errPOP3TooMany) {
		t.Fatalf("got %d bytes ending %q, err %v", len(res.out), res.out[max(0, len(res.out)-60):], res.err)
	}
}

func TestDecodePlain(t *testing.T) {
	for _, tc := range []struct {
		in         string
		user, pass string
		ok         bool
	}{
		{pop3Plain("", "a", "b"), "a", "b", true},
		{pop3Plain("A", "a", "b"), "a", "b", true},
		{pop3Plain("c", "a", "b"), "", "", false},
		{pop3Plain("", "", "b"), "", "", false},
		{pop3Plain("", "a", ""), "", "", false},
		{base64.StdEncoding.EncodeToString([]byte("a\x00b")), "", "", false},
		{base64.StdEncoding.EncodeToString([]byte("\x00a\x00b\x00c")), "", "", false},
		{"not base64", "", "", false},
		{"", "", "", false},
	} {
		u, p, ok := decodePlain(tc.in)
		if u != tc.user || p != tc.pass || ok != tc.ok {
			t.Errorf("decodePlain(%q) = %q, %q, %v", tc.in, u, p, ok)
		}
	}
}

// pop3KnownReplies is every line the reader may write: it never echoes the
// client's bytes.
var pop3KnownReplies = map[string]bool{
	pop3Greeting: true, pop3Bye: true, pop3TLSRequired: true, pop3BadCreds: true, pop3LineTooLong: true,
	pop3TooMany: true, pop3Unknown: true, pop3NotLoggedIn: true, pop3NeedUser: true, pop3NeedArg: true,
	pop3NoMech: true, pop3AuthCanceled: true, pop3BadPlain: true, pop3NoSTLS: true, pop3STLSPipeline: true,
	pop3BeginTLS: true, pop3UserOK: true, pop3NoopOK: true, pop3Challenge: true, pop3LoggedIn: true,
	"+OK Capability list follows": true, "TOP": true, "UIDL": true, "RESP-CODES": true, "AUTH-RESP-CODE": true,
	"USER": true, "SASL PLAIN": true, "STLS": true, "IMPLEMENTATION bridge": true, ".": true, "PLAIN": true,
}

// FuzzPOP3Reader feeds arbitrary client bytes to the pre-login reader. It
// must end (bounded), write only its own fixed replies, each CRLF-ended,
// and hand back only credentials that were really sent.
func FuzzPOP3Reader(f *testing.F) {
	for _, s := range []string{
		"CAPA\r\nUSER user@example.com\r\nPASS secret\r\n",
		"AUTH PLAIN " + pop3Plain("", "user@example.com", "secret") + "\r\n",
		"AUTH PLAIN\r\n" + pop3Plain("x", "user@example.com", "secret") + "\r\n",
		"AUTH PLAIN\r\n*\r\nQUIT\r\n",
		"STLS\r\nCAPA\r\nQUIT\r\n",
		"USER a\r\nPASS b\r\nUSER a\r\nPASS b\r\nUSER a\r\nPASS b\r\n",
		"user\r\npass\r\nauth\r\nauth plain =\r\n\r\n\n\r",
		"USER " + strings.Repeat("z", 300) + "\r\nNOOP\n",
		"AUTH PLAIN " + strings.Repeat("Q", 2000),
		"RETR 1\r\nSTAT\r\nTOP 1 2\r\nAPOP a b\r\n\x00\xff\r\n",
	} {
		f.Add([]byte(s), false, false)
	}
	f.Fuzz(func(t *testing.T, in []byte, lineByLine, requireTLS bool) {
		o := FrontOptions{TLS: &tls.Config{}, RequireTLS: requireTLS}
		res := drivePOP3Reader(o, false, lineByLine, string(in))
		if !strings.HasSuffix(res.out, "\r\n") {
			t.Fatalf("output %q does not end with CRLF", res.out)
		}
		for _, l := range strings.Split(strings.TrimSuffix(res.out, "\r\n"), "\r\n") {
			if !pop3KnownReplies[l] {
				t.Fatalf("unexpected reply line %q", l)
			}
		}
		for _, l := range res.logins {
			if user, _, _ := strings.Cut(l, "/"); user == "" {
				t.Fatalf("login with an empty name: %q", l)
			}
			if requireTLS && !strings.Contains(res.out, pop3BeginTLS) {
				t.Fatalf("login %q before TLS with RequireTLS", l)
			}
		}
		if len(res.logins) > 3 {
			t.Fatalf("%d logins allowed on one connection", len(res.logins))
		}
	})
}
