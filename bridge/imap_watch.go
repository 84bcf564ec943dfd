package bridge

import (
	"bytes"

	"github.com/mailbridge/bridge/bridge/diag"
)

const (
	// imapWatchLines is how many upstream lines after login are checked for
	// Exchange's refusal of the first mailbox command.
	imapWatchLines = 32
	// imapWatchLineMax bounds the part of each such line that is kept.
	imapWatchLineMax = 256
	// imapTail is how many of the last upstream bytes are kept to find the
	// BYE that ended a session.
	imapTail = 512
)

var (
	imapNotConnected = []byte("User is authenticated but not connected")
	imapByeInvalid   = []byte("Session invalidated")
	imapTokenExpired = []byte("AccessTokenExpired")
)

// imapWatch is the Watcher of a relayed IMAP session. It recognises the
// ways Exchange ends a session it accepted (docs/microsoft-facts.md §1.2): a BAD
// "User is authenticated but not connected." to the first mailbox command
// (the token's identity has no rights on the mailbox), or the same words
// in a BYE right after the login, which some mailboxes send instead; and
// "* BYE Session invalidated - AccessTokenExpired". Each is recorded in the
// account's status; the relayed bytes are never changed.
type imapWatch struct {
	b    *Bridge
	acct *Account
	// token is the access token the session logged in with, so that an
	// AccessTokenExpired BYE can keep it from being handed out again.
	// Never log it.
	token string

	lines int
	head  []byte // the current line among the first imapWatchLines, capped
	seen  bool   // "not connected" already recorded

	tail [imapTail]byte
	n    int // bytes ever written to tail
}

// Upstream implements Watcher.
func (w *imapWatch) Upstream(p []byte) {
	if w.lines < imapWatchLines {
		w.scanHead(p)
	}
	if len(p) >= imapTail {
		copy(w.tail[:], p[len(p)-imapTail:])
		w.n = imapTail
		return
	}
	for _, c := range p {
		w.tail[w.n%imapTail] = c
		w.n++
	}
	if w.n >= 2*imapTail {
		w.n -= imapTail // keep the index small; the position is the same
	}
}

func (w *imapWatch) scanHead(p []byte) {
	for len(p) > 0 && w.lines < imapWatchLines {
		i := bytes.IndexByte(p, '\n')
		part := p
		if i >= 0 {
			part = p[:i]
		}
		if room := imapWatchLineMax - len(w.head); room > 0 {
			w.head = append(w.head, part[:min(room, len(part))]...)
		}
		if i < 0 {
			return
		}
		w.line(bytes.TrimRight(w.head, "\r"))
		w.head = w.head[:0]
		w.lines++
		p = p[i+1:]
	}
	if w.lines >= imapWatchLines {
		w.head = nil
	}
}

// line checks one of the first lines: "<tag> BAD User is authenticated but
// not connected.", or "* BYE User is authenticated but not connected.".
func (w *imapWatch) line(l []byte) {
	if w.seen || !bytes.Contains(l, imapNotConnected) {
		return
	}
	tag, rest, _ := bytes.Cut(l, []byte(" "))
	status, text, _ := bytes.Cut(rest, []byte(" "))
	bye := bytes.Equal(tag, []byte("*")) && bytes.EqualFold(status, []byte("BYE"))
	if !bye && !bytes.EqualFold(status, []byte("BAD")) && !bytes.EqualFold(status, []byte("NO")) {
		return
	}
	w.seen = true
	code, msg := splitRespCode(string(text))
	w.b.Record(w.acct, IMAP, withGrant(w.acct, w.token, &diag.Failure{Proto: IMAP, Stage: diag.StageMailbox, RespCode: code, Text: msg}))
}

// Ended implements Watcher: the last bytes tell whether the upstream ended
// the session with "* BYE Session invalidated - ...".
func (w *imapWatch) Ended() {
	var buf [imapTail]byte
	var last []byte
	if w.n < imapTail {
		last = w.tail[:w.n]
	} else {
		k := w.n % imapTail
		last = append(append(buf[:0], w.tail[k:]...), w.tail[:k]...)
	}
	i := bytes.LastIndex(last, []byte("* BYE "))
	if i < 0 {
		return
	}
	bye := last[i+len("* BYE "):]
	if j := bytes.IndexAny(bye, "\r\n"); j >= 0 {
		bye = bye[:j]
	}
	if !bytes.Contains(bye, imapByeInvalid) {
		return
	}
	code, text := splitRespCode(string(bye))
	if bytes.Contains(bye, imapTokenExpired) {
		// Exchange no longer takes this token, whatever its expiry says:
		// the next login must refresh rather than reuse it.
		if src := w.b.Source(w.acct); src != nil {
			src.Invalidate(w.token)
		}
	}
	w.token = ""
	w.b.Record(w.acct, IMAP, &diag.Failure{Proto: IMAP, Stage: diag.StageSession, RespCode: code, Text: text})
}
