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
// `[log] trace = true`. Credentials never reach the log: a LOGIN,
// AUTHENTICATE, AUTH or PASS line keeps its command name (and SASL
// mechanism) and loses its arguments, and every later line from the
// authenticating side is replaced by "[redacted]" until the other side
// answers with something other than a continuation (IMAP and POP3 "+",
// SMTP 334), which covers SASL responses, IMAP literals and pipelined
// lines alike. It is safe for concurrent use.
type wireTrace struct {
	log   *slog.Logger
	proto Proto

	off atomic.Bool

	mu     sync.Mutex
	secret bool // lines from the authenticating side are redacted
	// Partial lines per direction: the authenticating side's and the
	// other side's.
	auth, other traceLine
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
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := traceLineMax - len(l.buf); len(part) > room {
			part, l.long = part[:max(room, 0)], true
		}
		l.buf = append(l.buf, part...)
		if i < 0 {
			return
		}
		t.line(bytes.TrimSuffix(l.buf, []byte("\r")), l.long, auth)
		l.buf, l.long = l.buf[:0], false
		p = p[i+1:]
	}
}

// line logs one complete line; t.mu is held.
func (t *wireTrace) line(l []byte, long, auth bool) {
	dir := "S"
	if auth {
		dir = "C"
	}
	var text string
	switch {
	case auth && t.secret:
		text = redacted
	case auth:
		var secret bool
		text, secret = redactCommand(l)
		t.secret = secret
	default:
		if !t.continuation(l) {
			t.secret = false
		}
		text = string(printable(l))
	}
	if long && text != redacted {
		text += "..."
	}
	t.log.Debug("wire", "dir", dir, "line", text)
}

// continuation reports a SASL or literal continuation request, after
// which the authenticating side sends more secret bytes.
func (t *wireTrace) continuation(l []byte) bool {
	switch t.proto {
	case SMTP:
		return bytes.HasPrefix(l, []byte("334"))
	case POP3:
		return len(l) == 1 && l[0] == '+' || bytes.HasPrefix(l, []byte("+ "))
	}
	return bytes.HasPrefix(l, []byte("+"))
}

// traceSecretCommands carry credentials in their arguments or in the lines
// that follow them.
var traceSecretCommands = map[string]bool{"LOGIN": true, "AUTHENTICATE": true, "AUTH": true, "PASS": true}

// redactCommand returns a command line as it may be logged, and whether
// the lines after it are secret too. The command word is the first word
// (POP3, SMTP) or the second (IMAP, after the tag).
func redactCommand(l []byte) (string, bool) {
	words := bytes.SplitN(l, []byte(" "), 4)
	for i := 0; i < len(words) && i < 2; i++ {
		name := string(bytes.ToUpper(words[i]))
		if !traceSecretCommands[name] {
			continue
		}
		keep := bytes.Join(words[:i+1], []byte(" "))
		// A SASL mechanism name is no secret and says what was tried.
		if (name == "AUTH" || name == "AUTHENTICATE") && i+1 < len(words) && isMechanism(words[i+1]) {
			keep = bytes.Join(words[:i+2], []byte(" "))
			i++
		}
		out := string(printable(keep))
		if i+1 < len(words) {
			out += " " + redacted
		}
		return out, true
	}
	return string(printable(l)), false
}

// isMechanism reports a plausible SASL mechanism name (RFC 4422 section
// 3.1: upper-case letters, digits, "-" and "_", at most 20).
func isMechanism(w []byte) bool {
	if len(w) == 0 || len(w) > 20 {
		return false
	}
	for _, c := range w {
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

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
