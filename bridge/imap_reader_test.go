package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// readAll runs the reader over input and returns what it parsed, the
// continuations it asked for, and the error that stopped it.
func readAll(input string) (cmds []*imapCmd, conts int, err error) {
	r := imapReader{br: bufio.NewReaderSize(strings.NewReader(input), 64)}
	r.cont = func() error { conts++; return nil }
	for range 100 {
		cmd, err := r.readCommand()
		if err != nil {
			var re *imapReadError
			if errors.As(err, &re) && !re.fatal {
				cmds = append(cmds, nil)
				continue
			}
			return cmds, conts, err
		}
		cmds = append(cmds, cmd)
	}
	return cmds, conts, errors.New("too many commands")
}

func TestIMAPReaderParses(t *testing.T) {
	cases := []struct {
		in    string
		tag   string
		name  string
		args  []string
		conts int
	}{
		{"a1 LOGIN alice secret\r\n", "a1", "LOGIN", []string{"alice", "secret"}, 0},
		{"a1 login \"al ice\" \"p\\\"w\\\\d\"\r\n", "a1", "LOGIN", []string{"al ice", `p"w\d`}, 0},
		{"a1 LOGIN {5}\r\nalice {3+}\r\nx y\r\n", "a1", "LOGIN", []string{"alice", "x y"}, 1},
		{"a1 LOGIN \"\" {0}\r\n\r\n", "a1", "LOGIN", []string{"", ""}, 1},
		{"a1 LOGIN ü]x p\n", "a1", "LOGIN", []string{"ü]x", "p"}, 0},
		{"* NOOP\r\n", "", "", nil, 0}, // "*" is not a tag
		{"a.b-c NOOP   \r\n", "a.b-c", "NOOP", nil, 0},
	}
	for _, tc := range cases {
		cmds, conts, err := readAll(tc.in)
		if !errors.Is(err, io.EOF) {
			t.Errorf("%q: stopped with %v, want EOF", tc.in, err)
			continue
		}
		if len(cmds) != 1 {
			t.Errorf("%q: %d commands", tc.in, len(cmds))
			continue
		}
		if conts != tc.conts {
			t.Errorf("%q: %d continuations, want %d", tc.in, conts, tc.conts)
		}
		cmd := cmds[0]
		if tc.name == "" {
			if cmd != nil {
				t.Errorf("%q: parsed as %+v, want a refusal", tc.in, cmd)
			}
			continue
		}
		if cmd == nil {
			t.Errorf("%q: refused", tc.in)
			continue
		}
		var got []string
		for _, a := range cmd.args {
			got = append(got, a.s)
		}
		if cmd.tag != tc.tag || cmd.name != tc.name || strings.Join(got, "|") != strings.Join(tc.args, "|") || len(got) != len(tc.args) {
			t.Errorf("%q: got %s %s %q, want %s %s %q", tc.in, cmd.tag, cmd.name, got, tc.tag, tc.name, tc.args)
		}
	}
}

func TestIMAPReaderLists(t *testing.T) {
	cmds, _, _ := readAll("a ID (\"name\" NIL \"os\" {2}\r\nhi)\r\n")
	if len(cmds) != 1 || cmds[0] == nil {
		t.Fatalf("ID list refused: %v", cmds)
	}
	a := cmds[0].args
	if len(a) != 1 || !a[0].isList || strings.Join(a[0].list, ",") != "name,NIL,os,hi" {
		t.Errorf("list = %+v", a)
	}
	for _, bad := range []string{"a ID (\"x\" (\"y\"))\r\n", "a ID (\"x\"\r\n", "a ID (\"x\"\"y\")\r\n"} {
		cmds, _, _ := readAll(bad)
		if len(cmds) != 1 || cmds[0] != nil {
			t.Errorf("%q accepted: %+v", bad, cmds)
		}
	}
}

func TestIMAPReaderBounds(t *testing.T) {
	long := "a LOGIN " + strings.Repeat("x", imapMaxLine) + "\r\n"
	_, _, err := readAll(long)
	var re *imapReadError
	if !errors.As(err, &re) || !re.fatal || re.text != "Command line too long" {
		t.Errorf("long line: %v", err)
	}

	// A huge synchronising literal is refused without a continuation and
	// without reading it; the session goes on.
	cmds, conts, err := readAll("a LOGIN {99999999999999999999}\r\nb NOOP\r\n")
	if conts != 0 || len(cmds) != 2 || cmds[0] != nil || cmds[1] == nil || !errors.Is(err, io.EOF) {
		t.Errorf("huge sync literal: %d conts, cmds %v, err %v", conts, cmds, err)
	}

	// A huge non-synchronising one ends the session: its bytes follow.
	_, _, err = readAll("a LOGIN {1000000+}\r\n" + strings.Repeat("y", 100))
	if !errors.As(err, &re) || !re.fatal || re.tag != "a" {
		t.Errorf("huge non-sync literal: %v", err)
	}

	// Literals that each fit but together exceed the command bound.
	lit := strings.Repeat("z", imapMaxLiteral)
	_, _, err = readAll("a LOGIN {8192+}\r\n" + lit + " {8192+}\r\n" + lit + "\r\n")
	if !errors.As(err, &re) || !re.fatal {
		t.Errorf("command over the bound: %v", err)
	}

	// A syntax error on a line announcing a non-synchronising literal
	// cannot be recovered from.
	_, _, err = readAll("a LOGIN \"x {5+}\r\nhello\r\n")
	if !errors.As(err, &re) || !re.fatal {
		t.Errorf("syntax error before {n+}: %v", err)
	}

	// NUL is refused in a literal, and the session stays in step.
	cmds, _, err = readAll("a LOGIN {3}\r\na\x00b x\r\nb NOOP\r\n")
	if len(cmds) != 2 || cmds[0] != nil || cmds[1] == nil || cmds[1].name != "NOOP" || !errors.Is(err, io.EOF) {
		t.Errorf("NUL literal: %v %v", cmds, err)
	}
}

func TestReadLine(t *testing.T) {
	br := bufio.NewReaderSize(strings.NewReader("abc\r\nde\nfgh"), 16)
	var buf []byte
	for _, want := range []string{"abc", "de"} {
		l, err := readLine(br, buf, 10)
		if err != nil || string(l) != want {
			t.Fatalf("readLine = %q, %v; want %q", l, err, want)
		}
	}
	if _, err := readLine(br, buf, 10); err != io.ErrUnexpectedEOF {
		t.Errorf("partial last line: %v", err)
	}
	br = bufio.NewReaderSize(bytes.NewReader(bytes.Repeat([]byte("x"), 100)), 16)
	if _, err := readLine(br, buf, 40); err != errLineTooLong {
		t.Errorf("long line: %v", err)
	}
}

// FuzzIMAPReader feeds arbitrary input to the pre-login reader: it must
// not panic, must stop, and must never return more than a command's
// worth of data.
func FuzzIMAPReader(f *testing.F) {
	for _, s := range []string{
		"a1 LOGIN alice secret\r\n",
		"a1 LOGIN \"a\\\"b\" {3}\r\nx\\y\r\n",
		"a1 LOGIN {3+}\r\nabc {1}\r\nd\r\n",
		"a1 ID (\"name\" \"x\" \"v\" NIL)\r\n",
		"a1 AUTHENTICATE PLAIN AGFsaWNlAHNlY3JldA==\r\n",
		"a1 LOGIN {99999999999+}\r\n",
		"\r\n\r\n* BAD\r\n+ x\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r := imapReader{br: bufio.NewReaderSize(bytes.NewReader(data), 32), cont: func() error { return nil }}
		for range len(data) + 2 {
			cmd, err := r.readCommand()
			if err != nil {
				var re *imapReadError
				if errors.As(err, &re) && !re.fatal {
					continue
				}
				return
			}
			size := len(cmd.tag) + len(cmd.name)
			for _, a := range cmd.args {
				size += len(a.s)
				for _, s := range a.list {
					size += len(s)
				}
			}
			if size > imapMaxCommand || size > len(data) {
				t.Fatalf("command of %d bytes from %d input bytes", size, len(data))
			}
			if cmd.tag == "" || strings.ContainsAny(cmd.tag, " +\r\n") {
				t.Fatalf("bad tag %q", cmd.tag)
			}
		}
		if r.br.Buffered() > 0 {
			t.Fatalf("reader stopped with input left")
		}
	})
}
