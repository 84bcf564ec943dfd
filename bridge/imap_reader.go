package bridge

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// Bounds on what a client may send before login. A LOGIN or AUTHENTICATE
// line is a few hundred bytes; anything near these sizes is an attack or a
// broken client, and the reader refuses it without buffering it.
const (
	// imapMaxLine bounds one line (or one line segment between literals),
	// CRLF excluded.
	imapMaxLine = 8 << 10
	// imapMaxLiteral bounds one literal.
	imapMaxLiteral = 8 << 10
	// imapMaxCommand bounds a whole command: its line segments and literals.
	imapMaxCommand = 16 << 10
	// imapMaxArgs bounds the arguments of one command, list items included.
	imapMaxArgs = 64
)

// errLineTooLong is returned for a line longer than the limit given to
// readLine; the rest of the line has not been read.
var errLineTooLong = errors.New("bridge: line too long")

// readLine reads one line from br into buf (reused) and returns it without
// its CRLF (a bare LF is accepted too). It never holds more than max+2
// bytes: a longer line yields errLineTooLong.
func readLine(br *bufio.Reader, buf []byte, max int) ([]byte, error) {
	buf = buf[:0]
	for {
		chunk, err := br.ReadSlice('\n')
		if len(buf)+len(chunk) > max+2 {
			return buf, errLineTooLong
		}
		buf = append(buf, chunk...)
		if err == nil {
			buf = buf[:len(buf)-1]
			if n := len(buf); n > 0 && buf[n-1] == '\r' {
				buf = buf[:n-1]
			}
			if len(buf) > max {
				return buf, errLineTooLong
			}
			return buf, nil
		}
		if err != bufio.ErrBufferFull {
			if err == io.EOF && len(buf) > 0 {
				err = io.ErrUnexpectedEOF
			}
			return buf, err
		}
	}
}

// imapArg is one command argument: a string (atom, quoted or literal) or a
// parenthesised list of strings and NILs (only ID takes one).
type imapArg struct {
	s      string
	list   []string
	isList bool
	quoted bool // a quoted string or literal, so "NIL" is not NIL
}

// imapCmd is one parsed pre-login command.
type imapCmd struct {
	tag  string
	name string // upper case
	args []imapArg
}

// imapReadError is a command the reader refused. The session replies with
// text, tagged with tag when the tag was read, and closes the connection
// when fatal is set (the rest of the input cannot be skipped safely).
type imapReadError struct {
	tag   string
	text  string
	fatal bool
}

func (e *imapReadError) Error() string { return "bridge: imap: " + e.text }

// imapReader reads the commands a client may send before login, following
// the grammar of RFC 3501 section 9 for what those commands need: tag SP
// atom *(SP astring / SP "(" list ")"), where an astring is an atom, a
// quoted string (with \" and \\) or a literal: synchronising {n} (RFC 3501
// section 7.5, answered with a "+" continuation) or non-synchronising {n+}
// (RFC 7888). It is not safe for concurrent use.
type imapReader struct {
	br *bufio.Reader
	// cont writes the continuation request for a synchronising literal.
	cont func() error

	line  []byte // the current line segment
	pos   int
	total int // bytes of the current command so far
	tag   string
	buf   []byte // reused by readLine
}

// readCommand reads one command. An *imapReadError is a refusal the session
// answers; any other error is the connection's (EOF, timeout).
func (r *imapReader) readCommand() (*imapCmd, error) {
	r.tag, r.total = "", 0
	if err := r.nextSegment(); err != nil {
		return nil, err
	}
	if len(r.line) == 0 {
		return nil, &imapReadError{text: "Empty command line"}
	}
	cmd, err := r.parse()
	if err != nil {
		var re *imapReadError
		if errors.As(err, &re) && !re.fatal && bytes.HasSuffix(r.line, []byte("+}")) {
			// A non-synchronising literal follows that was not read: its
			// bytes would be taken for commands.
			re.fatal = true
		}
		return nil, err
	}
	return cmd, nil
}

// nextSegment reads the next line segment of the current command.
func (r *imapReader) nextSegment() error {
	line, err := readLine(r.br, r.buf, imapMaxLine)
	r.buf = line
	if err == errLineTooLong || err == nil && r.total+len(line) > imapMaxCommand {
		return &imapReadError{tag: r.tag, text: "Command line too long", fatal: true}
	}
	if err != nil {
		return err
	}
	r.total += len(line)
	// Trailing spaces, which some old clients send, are outside any
	// argument: a quoted string ends with '"', a literal line with '}'.
	r.line, r.pos = bytes.TrimRight(line, " "), 0
	return nil
}

func (r *imapReader) parse() (*imapCmd, error) {
	tag := r.word()
	if !validTag(tag) {
		return nil, r.syntax("Invalid tag")
	}
	r.tag = string(tag)
	if !r.space() {
		return nil, r.syntax("Missing command")
	}
	name := r.word()
	if len(name) == 0 || !isAtom(name) {
		return nil, r.syntax("Invalid command name")
	}
	cmd := &imapCmd{tag: r.tag, name: asciiUpper(name)}
	for r.pos < len(r.line) {
		if !r.space() {
			return nil, r.syntax("Expected a space")
		}
		if len(cmd.args) == imapMaxArgs {
			return nil, r.syntax("Too many arguments")
		}
		if r.line[r.pos] == '(' {
			a, err := r.list()
			if err != nil {
				return nil, err
			}
			cmd.args = append(cmd.args, a)
			continue
		}
		s, quoted, err := r.astring()
		if err != nil {
			return nil, err
		}
		cmd.args = append(cmd.args, imapArg{s: s, quoted: quoted})
	}
	return cmd, nil
}

// list reads "(" [astring *(SP astring)] ")"; a NIL item is the atom "NIL".
func (r *imapReader) list() (imapArg, error) {
	r.pos++ // "("
	a := imapArg{isList: true}
	for {
		if r.pos == len(r.line) {
			return a, r.syntax("Unterminated list")
		}
		if r.line[r.pos] == ')' {
			r.pos++
			return a, nil
		}
		if len(a.list) > 0 && !r.space() {
			return a, r.syntax("Expected a space in list")
		}
		if len(a.list) == 2*imapMaxArgs {
			return a, r.syntax("List too long")
		}
		s, _, err := r.astring()
		if err != nil {
			return a, err
		}
		a.list = append(a.list, s)
	}
}

// astring reads an atom, a quoted string or a literal.
func (r *imapReader) astring() (s string, quoted bool, err error) {
	if r.pos == len(r.line) {
		return "", false, r.syntax("Missing argument")
	}
	switch r.line[r.pos] {
	case '"':
		s, err = r.quoted()
		return s, true, err
	case '{':
		s, err = r.literal()
		return s, true, err
	}
	w := r.word()
	if i := bytes.IndexByte(w, ')'); i >= 0 {
		// A list's closing parenthesis ends the atom before it.
		r.pos -= len(w) - i
		w = w[:i]
	}
	if len(w) == 0 || !isAtom(w) {
		return "", false, r.syntax("Invalid atom")
	}
	return string(w), false, nil
}

// quoted reads a quoted string (RFC 3501 section 4.3): only \" and \\ are
// escapes, and CR, LF and NUL may not appear.
func (r *imapReader) quoted() (string, error) {
	r.pos++ // opening quote
	var out []byte
	for r.pos < len(r.line) {
		c := r.line[r.pos]
		r.pos++
		switch c {
		case '"':
			return string(out), nil
		case '\\':
			if r.pos == len(r.line) || r.line[r.pos] != '"' && r.line[r.pos] != '\\' {
				return "", r.syntax("Invalid escape in quoted string")
			}
			out = append(out, r.line[r.pos])
			r.pos++
		case 0, '\r':
			return "", r.syntax("Invalid character in quoted string")
		default:
			out = append(out, c)
		}
	}
	return "", r.syntax("Unterminated quoted string")
}

// literal reads "{" number ["+"] "}" at the end of a line segment, the
// literal's bytes, and the next line segment.
func (r *imapReader) literal() (string, error) {
	rest := r.line[r.pos+1:]
	end := bytes.IndexByte(rest, '}')
	if end < 0 || end != len(rest)-1 {
		return "", r.syntax("A literal must end the line")
	}
	digits := rest[:end]
	nonSync := len(digits) > 0 && digits[len(digits)-1] == '+'
	if nonSync {
		digits = digits[:len(digits)-1]
	}
	n, ok := parseLiteralSize(digits)
	if !ok {
		return "", r.syntax("Invalid literal size")
	}
	if n > imapMaxLiteral || r.total+n > imapMaxCommand {
		// RFC 7888 section 4: a non-synchronising literal will arrive
		// whatever the answer, and it is too big to skip; close.
		return "", &imapReadError{tag: r.tag, text: "[TOOBIG] Literal too big", fatal: nonSync}
	}
	if !nonSync {
		if err := r.cont(); err != nil {
			return "", err
		}
	}
	data := make([]byte, n)
	if _, err := io.ReadFull(r.br, data); err != nil {
		return "", err
	}
	if bytes.IndexByte(data, 0) >= 0 {
		// Read the rest so the error does not desynchronise the session.
		if err := r.nextSegment(); err != nil {
			return "", err
		}
		return "", r.syntax("NUL in literal")
	}
	r.total += n
	if err := r.nextSegment(); err != nil {
		return "", err
	}
	return string(data), nil
}

// parseLiteralSize parses 1-9 decimal digits; larger sizes are reported as
// imapMaxCommand+1, which every bound refuses.
func parseLiteralSize(d []byte) (int, bool) {
	if len(d) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range d {
		if c < '0' || c > '9' {
			return 0, false
		}
		if n <= imapMaxCommand {
			n = n*10 + int(c-'0')
		}
	}
	return min(n, imapMaxCommand+1), true
}

// word returns the bytes up to the next space or the end of the segment.
func (r *imapReader) word() []byte {
	start := r.pos
	for r.pos < len(r.line) && r.line[r.pos] != ' ' {
		r.pos++
	}
	return r.line[start:r.pos]
}

func (r *imapReader) space() bool {
	if r.pos < len(r.line) && r.line[r.pos] == ' ' {
		r.pos++
		return true
	}
	return false
}

func (r *imapReader) syntax(text string) error {
	return &imapReadError{tag: r.tag, text: text}
}

// readSASL reads one line of a SASL exchange (RFC 3501 section 6.2.2).
func (r *imapReader) readSASL() ([]byte, error) {
	r.tag = ""
	line, err := readLine(r.br, r.buf, imapMaxLine)
	r.buf = line
	if err == errLineTooLong {
		return nil, &imapReadError{text: "Line too long", fatal: true}
	}
	return line, err
}

// isAtom reports whether w is made of ATOM-CHARs (RFC 3501 section 9),
// plus "]" (ASTRING-CHAR) and 8-bit bytes, which UTF-8 user names need.
func isAtom(w []byte) bool {
	for _, c := range w {
		switch {
		case c <= ' ' || c == 0x7f:
			return false
		case c == '(' || c == ')' || c == '{' || c == '"' || c == '\\' || c == '%' || c == '*':
			return false
		}
	}
	return true
}

// asciiUpper upper-cases ASCII letters only; command names are ASCII
// (RFC 3501 section 9), and other bytes pass unchanged rather than being
// rewritten as UTF-8.
func asciiUpper(w []byte) string {
	out := make([]byte, len(w))
	for i, c := range w {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		out[i] = c
	}
	return string(out)
}

// validTag: 1*<any ASTRING-CHAR except "+"> (RFC 3501 section 9).
func validTag(w []byte) bool {
	return len(w) > 0 && isAtom(w) && bytes.IndexByte(w, '+') < 0
}
