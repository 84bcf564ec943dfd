package bridge

import (
	"bytes"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
)

// traceLineMax bounds the part of one traced line that is logged; a
// pre-login line longer than this is a broken or hostile client, and the
// rest says nothing more.
const traceLineMax = 200

// redacted replaces whatever may hold a credential in a trace.
const redacted = "[redacted]"

// wireTrace logs the pre-login lines of one leg of a connection (the
// client's, or the bridge's own login upstream) at debug level, for
// `[log] trace = true`. It is safe for concurrent use.
//
// Credentials never reach the log. What is redacted follows the
// authenticating side's protocol state, never the other side's last reply,
// because commands may be pipelined and a reply may answer an earlier one:
//
//   - a line is shown only when it is a command on traceCommands; any other
//     line is redacted whole, for a line the server refuses before parsing
//     it (a doubled space, a tab after the command) may still hold a
//     password;
//   - a login command (IMAP LOGIN and AUTHENTICATE, POP3 PASS and AUTH,
//     SMTP AUTH) keeps its name and SASL mechanism, and every line after
//     it is redacted until the other side's final reply to that command:
//     the reply with its tag (IMAP), or the one owed to it in order (POP3
//     and SMTP answer commands in order);
//   - the bytes of an IMAP literal, and the rest of the command after it,
//     are redacted whatever the command, counted from the "{n}" that
//     announces them.
type wireTrace struct {
	log   *slog.Logger
	proto Proto

	off atomic.Bool

	mu sync.Mutex
	// Partial lines per direction: the authenticating side's and the
	// other side's.
	auth, other traceLine

	// IMAP literals from the authenticating side: the marker at the end
	// of the line so far, the literal bytes still to come, and whether the
	// next line segment continues a command (after a literal).
	lit     literalScan
	literal int
	cont    bool

	// login is set from a login command until the other side's final reply
	// to it: the reply tagged loginTag (IMAP), or the owed-th final reply
	// (POP3, SMTP; owed counts the final replies still owed).
	login    bool
	loginTag []byte
	owed     int
}

type traceLine struct {
	buf  []byte
	long bool // the line went past traceLineMax
}

// newWireTrace returns a trace for one leg, or nil when tracing is off.
// leg is "client" (a mail client talking to the bridge) or "upstream" (the
// bridge logging in to the provider).
func newWireTrace(log *slog.Logger, on bool, p Proto, leg string, peer net.Addr) *wireTrace {
	if !on || log == nil {
		return nil
	}
	return &wireTrace{log: log.With("trace", leg, "proto", p, "peer", peerString(peer)), proto: p}
}

// stop ends the trace: the session is handed to the relay (or has moved
// to TLS where the bytes seen are records, not lines).
func (t *wireTrace) stop() {
	if t != nil {
		t.off.Store(true)
	}
}

// note logs one event that is not a wire line.
func (t *wireTrace) note(msg string) {
	if t == nil || t.off.Load() {
		return
	}
	t.log.Debug(msg)
}

// fromAuth records bytes sent by the authenticating side: the mail client
// on the client leg, the bridge on the upstream leg.
func (t *wireTrace) fromAuth(p []byte) { t.bytes(p, true) }

// fromOther records bytes sent by the other side (the server role).
func (t *wireTrace) fromOther(p []byte) { t.bytes(p, false) }

func (t *wireTrace) bytes(p []byte, auth bool) {
	if t == nil || len(p) == 0 || t.off.Load() {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	l := &t.other
	if auth {
		l = &t.auth
	}
	for len(p) > 0 {
		if auth && t.literal > 0 {
			// Literal bytes are not lines: a CRLF in them ends nothing.
			n := min(t.literal, len(p))
			t.literal -= n
			p = p[n:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if auth && t.proto == IMAP {
			for _, c := range part {
				t.lit.add(c)
			}
		}
		if room := traceLineMax - len(l.buf); len(part) > room {
			part, l.long = part[:max(room, 0)], true
		}
		l.buf = append(l.buf, part...)
		if i < 0 {
			return
		}
		line := bytes.TrimSuffix(l.buf, []byte("\r"))
		if auth {
			t.log.Debug("wire", "dir", "C", "line", t.authLine(line, l.long))
		} else {
			t.otherLine(line)
			text := string(printable(line))
			if l.long {
				text += "..."
			}
			t.log.Debug("wire", "dir", "S", "line", text)
		}
		l.buf, l.long = l.buf[:0], false
		p = p[i+1:]
	}
}

// authLine returns a complete line of the authenticating side as it may
// be logged, and follows the protocol state; t.mu is held.
func (t *wireTrace) authLine(l []byte, long bool) string {
	cont := t.cont
	t.cont = false
	if n, ok := t.lit.end(); ok {
		// RFC 3501 section 4.3: n octets follow, then the rest of the
		// command. The count holds whether or not the server asks for
		// them: a client may send them anyway, and the server then reads
		// them as commands.
		t.literal, t.cont = n, true
	}
	t.lit = literalScan{}
	if cont || t.login {
		return redacted
	}
	if t.proto != IMAP {
		t.owed++ // an empty line gets its reply too
	}
	if len(l) == 0 {
		return ""
	}
	text, login := traceCommand(t.proto, l, long)
	if login {
		tag, _, _ := bytes.Cut(l, []byte(" "))
		t.login, t.loginTag = true, append(t.loginTag[:0], tag...)
	}
	return text
}

// otherLine follows the other side's replies to the end of a login
// command; t.mu is held.
func (t *wireTrace) otherLine(l []byte) {
	switch t.proto {
	case IMAP:
		// RFC 3501 section 7.1.5: BYE ends the connection, and with it
		// any command in progress.
		if t.login && (bytes.HasPrefix(l, t.loginTag) && len(l) > len(t.loginTag) && l[len(t.loginTag)] == ' ' ||
			bytes.HasPrefix(l, []byte("* BYE"))) {
			t.login = false
		}
		return
	case POP3:
		// RFC 1939 section 3: "+OK" or "-ERR" ends a reply; "+" is a SASL
		// challenge (RFC 5034 section 4), anything else a line of a
		// multi-line reply.
		if !bytes.HasPrefix(l, []byte("+OK")) && !bytes.HasPrefix(l, []byte("-ERR")) {
			return
		}
	case SMTP:
		if !smtpFinalReply(l) {
			return
		}
	}
	if t.owed > 0 {
		if t.owed--; t.owed == 0 {
			t.login = false
		}
	}
}

// smtpFinalReply reports the last line of a reply that answers a command
// (RFC 5321 section 4.2.1): not "xyz-", which continues it, nor a 3yz
// (334, 354), which asks for more.
func smtpFinalReply(l []byte) bool {
	if len(l) == 3 {
		l = append(l[:3:3], ' ')
	}
	return isSMTPReply(l) && l[3] == ' ' && l[0] != '3'
}

// traceKind says how much of a command line a trace shows.
type traceKind uint8

const (
	// traceName shows the command name; any arguments are redacted.
	traceName traceKind = iota + 1
	// traceArgs shows the whole line.
	traceArgs
	// traceLogin shows the name and SASL mechanism; the arguments, and
	// every line until the reply to the command, are redacted.
	traceLogin
)

// traceCommands are the commands a trace shows, per protocol: the ones a
// client or the bridge sends before login. Their names are upper case.
var traceCommands = map[Proto]map[string]traceKind{
	IMAP: {"CAPABILITY": traceName, "NOOP": traceName, "LOGOUT": traceName, "STARTTLS": traceName,
		"ID": traceArgs, "LOGIN": traceLogin, "AUTHENTICATE": traceLogin},
	POP3: {"CAPA": traceName, "NOOP": traceName, "QUIT": traceName, "STLS": traceName, "RSET": traceName, "STAT": traceName,
		"USER": traceArgs, "PASS": traceLogin, "AUTH": traceLogin, "APOP": traceLogin},
	SMTP: {"STARTTLS": traceName, "NOOP": traceName, "RSET": traceName, "QUIT": traceName, "DATA": traceName,
		"HELP": traceName, "EHLO": traceArgs, "HELO": traceArgs, "MAIL": traceArgs, "RCPT": traceArgs,
		"AUTH": traceLogin},
}

// traceCommand returns a command line as it may be logged, and whether
// it is a login command. The command is the first word (POP3, SMTP) or
// the second (IMAP, after a valid tag), words separated by single spaces
// (RFC 3501 section 9, RFC 1939 section 3, RFC 5321 section 4.1.1); a
// line that is not a listed command in that form is redacted whole.
func traceCommand(p Proto, l []byte, long bool) (text string, login bool) {
	rest := l
	if p == IMAP {
		tag, r, ok := bytes.Cut(l, []byte(" "))
		if !ok || !validTag(tag) {
			return redacted, false
		}
		rest = r
	}
	name, args, hasArgs := bytes.Cut(rest, []byte(" "))
	shown := len(l) - len(rest) + len(name)
	switch traceCommands[p][asciiUpper(name)] {
	case traceArgs:
		text := string(printable(l))
		if long {
			text += "..."
		}
		return text, false
	case traceName:
	case traceLogin:
		login = true
		// A SASL mechanism name is no secret and says what was tried.
		mech, _, more := bytes.Cut(args, []byte(" "))
		if hasArgs && isMechanism(mech) && (bytes.EqualFold(name, []byte("AUTH")) || bytes.EqualFold(name, []byte("AUTHENTICATE"))) {
			shown += 1 + len(mech)
			hasArgs = more
		}
	default:
		return redacted, false
	}
	text = string(printable(l[:shown]))
	if hasArgs || long {
		text += " " + redacted
	}
	return text, login
}

// saslMechanisms are the SASL mechanisms (RFC 4422) a trace names; another
// word where a mechanism goes may be a credential sent without one.
var saslMechanisms = map[string]bool{"PLAIN": true, "LOGIN": true, "XOAUTH2": true, "OAUTHBEARER": true,
	"CRAM-MD5": true, "DIGEST-MD5": true, "SCRAM-SHA-1": true, "SCRAM-SHA-256": true, "EXTERNAL": true,
	"ANONYMOUS": true, "GSSAPI": true, "NTLM": true}

// isMechanism reports a SASL mechanism a trace may name.
func isMechanism(w []byte) bool { return saslMechanisms[asciiUpper(w)] }

// literalScan follows the end of an IMAP line, byte by byte, for a literal
// marker: "{" digits ["+"] "}" (RFC 3501 section 9, RFC 7888 section 3),
// then trailing spaces, which the reader trims, and one CR.
type literalScan struct {
	state uint8 // 0: none; 1: in "{" digits; 2: after "+"; 3: after "}"; 4: after "}" and CR
	n     int
	digit bool
}

func (s *literalScan) add(c byte) {
	switch {
	case c == '{':
		*s = literalScan{state: 1}
	case s.state == 1 && '0' <= c && c <= '9':
		// The reader's bound: a larger size is refused as too big.
		s.n, s.digit = min(s.n*10+int(c-'0'), imapMaxCommand+1), true
	case s.state == 1 && s.digit && c == '+':
		s.state = 2
	case (s.state == 1 && s.digit || s.state == 2) && c == '}':
		s.state = 3
	case s.state == 3 && c == ' ':
	case s.state == 3 && c == '\r':
		s.state = 4
	default:
		*s = literalScan{}
	}
}

// end reports a literal marker at the end of the line, and its size.
func (s *literalScan) end() (int, bool) { return s.n, s.state >= 3 }

// printable replaces control and 8-bit bytes, so a trace line stays one
// line of text. Unlike diag.ReplyText, which fits text into a protocol
// reply (whitespace folded and trimmed, one '?' per character), it keeps
// one byte for one byte: a trace shows the wire as it was, a leading or
// doubled space and a stray tab included.
func printable(l []byte) []byte {
	out := make([]byte, len(l))
	for i, c := range l {
		if c < 0x20 || c > 0x7e {
			c = '?'
		}
		out[i] = c
	}
	return out
}

// traceConn is a net.Conn whose reads and writes feed a wireTrace. The
// front ends wrap the plain-text connection (above TLS) with it before
// login and take the underlying connection back for the relay.
type traceConn struct {
	net.Conn
	t *wireTrace
	// readIsAuth: bytes read come from the authenticating side (a mail
	// client); false on the upstream leg, where the bridge writes them.
	readIsAuth bool
}

// traced wraps c when t is not nil.
func traced(c net.Conn, t *wireTrace, readIsAuth bool) net.Conn {
	if t == nil {
		return c
	}
	return &traceConn{Conn: c, t: t, readIsAuth: readIsAuth}
}

// untraced returns the connection under a traceConn.
func untraced(c net.Conn) net.Conn {
	if tc, ok := c.(*traceConn); ok {
		return tc.Conn
	}
	return c
}

func (c *traceConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.t.bytes(p[:n], c.readIsAuth)
	}
	return n, err
}

func (c *traceConn) Write(p []byte) (int, error) {
	c.t.bytes(p, !c.readIsAuth)
	return c.Conn.Write(p)
}

// traceWriter adapts a wireTrace to go-smtp's client DebugWriter, which
// sees both directions in one stream. Upstream SMTP replies start with
// three digits (RFC 5321 section 4.2); anything else is the bridge's.
type traceWriter struct {
	t   *wireTrace
	buf []byte
}

func (w *traceWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			if len(w.buf) < traceLineMax*2 {
				w.buf = append(w.buf, p[:min(len(p), traceLineMax*2-len(w.buf))]...)
			}
			break
		}
		line := append(w.buf, p[:i+1]...)
		w.buf = nil
		w.t.bytes(line, !isSMTPReply(line))
		clear(line)
		p = p[i+1:]
	}
	return n, nil
}

func isSMTPReply(l []byte) bool {
	return len(l) >= 4 && '2' <= l[0] && l[0] <= '5' && '0' <= l[1] && l[1] <= '9' && '0' <= l[2] && l[2] <= '9' &&
		(l[3] == ' ' || l[3] == '-' || l[3] == '\r' || l[3] == '\n')
}
