package bridge

import (
	"bytes"
	"strconv"
)

// replyLines follows an upstream's bytes on their way to the client just
// closely enough to tell when the upstream is between replies: the one
// place where a goodbye line may go without breaking what the client is
// reading. That is at the start of a line and, for IMAP, outside a literal
// (RFC 3501 section 4.3: "{n}" at the end of a line announces n bytes
// that line ends do not end).
type replyLines struct {
	imap    bool
	midLine bool  // bytes of a line have come, its LF has not
	literal int64 // literal bytes still to come
	tail    [24]byte
	n       int // bytes in tail: the end of the current line
}

// feed follows p, the next bytes written to the client.
func (l *replyLines) feed(p []byte) {
	for len(p) > 0 {
		if l.literal > 0 {
			k := min(l.literal, int64(len(p)))
			l.literal -= k
			p = p[k:]
			continue
		}
		i := bytes.IndexByte(p, '\n')
		if i < 0 {
			l.keep(p)
			l.midLine = true
			return
		}
		l.keep(p[:i])
		// After a literal the line goes on, up to its own line end.
		l.midLine = false
		if l.imap {
			l.literal, l.midLine = l.literalSize()
		}
		l.n = 0
		p = p[i+1:]
	}
}

// keep appends p to the tail of the current line, dropping the oldest
// bytes beyond its size.
func (l *replyLines) keep(p []byte) {
	if len(p) >= len(l.tail) {
		l.n = copy(l.tail[:], p[len(p)-len(l.tail):])
		return
	}
	if over := l.n + len(p) - len(l.tail); over > 0 {
		copy(l.tail[:], l.tail[over:l.n])
		l.n -= over
	}
	l.n += copy(l.tail[l.n:], p)
}

// literalSize returns n and true when the line that just ended closes
// with "{n}" (before its CR).
func (l *replyLines) literalSize() (int64, bool) {
	t := bytes.TrimSuffix(l.tail[:l.n], []byte("\r"))
	if !bytes.HasSuffix(t, []byte("}")) {
		return 0, false
	}
	open := bytes.LastIndexByte(t, '{')
	if open < 0 {
		return 0, false
	}
	n, err := strconv.ParseUint(string(t[open+1:len(t)-1]), 10, 62)
	if err != nil {
		return 0, false
	}
	return int64(n), true
}

// between reports whether the upstream is between replies.
func (l *replyLines) between() bool { return !l.midLine && l.literal == 0 }
