package tlsutil

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"syscall"
)

// Client is tls.Client over RecordConn(c): the connection's receive buffer
// stays the size of one record, whatever bursts it carried.
func Client(c net.Conn, cfg *tls.Config) *tls.Conn {
	return tls.Client(RecordConn(c), cfg)
}

// Server is tls.Server over RecordConn(c).
func Server(c net.Conn, cfg *tls.Config) *tls.Conn {
	return tls.Server(RecordConn(c), cfg)
}

// NewListener is tls.NewListener with each accepted connection under
// RecordConn.
func NewListener(ln net.Listener, cfg *tls.Config) net.Listener {
	return &listener{Listener: ln, cfg: cfg}
}

type listener struct {
	net.Listener
	cfg *tls.Config
}

func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return Server(c, l.cfg), nil
}

// recordHeaderLen is the length of a TLS record's header: type, version
// and a two-byte length (RFC 8446 section 5.1).
const recordHeaderLen = 5

// RecordConn returns c with reads that never go past the end of a TLS
// record: each Read returns bytes of one record, all of it or a part.
//
// crypto/tls reads into a buffer that grows to hold what a read brought
// and never shrinks (golang/go#43563): when a read brings a whole record
// and the start of the next one, the buffer must grow to keep both, and
// after a burst of 16 KB records it settles at 40 KiB for the connection's
// life. Fed this way, it grows only to hold the largest record: 18 KiB,
// also after small records that a server sent first, or one doubling more
// when its records grew step by step through the sizes between. An idle
// relayed session that once fetched a large message keeps that buffer, so
// it is most of what such a session costs. And once crypto/tls has handed
// out a record's last byte, it holds nothing more: what has come is here
// (Buffered) or in the socket.
//
// A read goes into crypto/tls's own buffer; what it brought past the end
// of a record is kept here and handed out next. When a read filled
// that buffer, a burst is under way: while it lasts, and where the socket
// allows a read that does not wait (Unix), RecordConn reads up to 64 KB at
// a time into a buffer of its own, so that a burst costs one system call
// per 64 KB rather than one per record. That buffer comes from a pool and
// goes back as soon as everything in it was handed out; crypto/tls asks
// for more until it has a whole record, so a connection waiting for its
// next bytes never holds one.
func RecordConn(c net.Conn) net.Conn {
	r := &recordConn{Conn: c}
	if sc, ok := c.(syscall.Conn); ok {
		r.rc, _ = sc.SyscallConn()
	}
	return r
}

type recordConn struct {
	net.Conn
	rc syscall.RawConn // nil when c has no descriptor
	// Where the bytes handed out so far end.
	at recordPos
	// Bytes read from the connection and not yet handed out, in buf (nil
	// when nothing is held), and the read's error, handed out after them.
	buf  *[]byte
	held []byte
	err  error
	// more says the last read filled its buffer: more bytes are likely
	// waiting.
	more bool
}

// recordPos is a position in a stream of records.
type recordPos struct {
	hdr  [recordHeaderLen]byte
	nhdr int // header bytes passed; recordHeaderLen once in the body
	body int // body bytes still to pass
}

// advance moves the position through p up to the end of the current
// record and returns how many bytes of p that took: all of p, or fewer
// when the record ends inside it.
func (at *recordPos) advance(p []byte) int {
	i := 0
	if at.nhdr < recordHeaderLen {
		i = copy(at.hdr[at.nhdr:], p)
		if at.nhdr += i; at.nhdr < recordHeaderLen {
			return i
		}
		at.body = int(at.hdr[3])<<8 | int(at.hdr[4])
	}
	k := min(at.body, len(p)-i)
	if at.body -= k; at.body == 0 {
		at.nhdr = 0 // the record is whole; the next header comes
	}
	return i + k
}

// recordReadSize is how much one read into RecordConn's own buffer takes
// at most.
const recordReadSize = 64 << 10

var recordBufs = sync.Pool{New: func() any { b := make([]byte, recordReadSize); return &b }}

func (r *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if len(r.held) == 0 {
		if err := r.err; err != nil {
			r.err = nil
			return 0, err
		}
		if r.more && r.rc != nil {
			r.readAhead()
		}
	}
	if len(r.held) > 0 {
		return r.handOut(p), nil
	}
	k, err := r.Conn.Read(p)
	r.more = k == len(p)
	n := r.at.advance(p[:k])
	if n == k {
		return k, err
	}
	// The read went past the record's end: keep the rest for the next
	// Read.
	r.buf = recordBufs.Get().(*[]byte)
	*r.buf = append((*r.buf)[:0], p[n:k]...)
	r.held, r.err = *r.buf, err
	return n, nil
}

// readAhead reads what the socket holds, up to recordReadSize, into a
// pooled buffer, without waiting: when nothing is there (or the read
// deadline passed) it gives the buffer back and the caller reads as usual.
// A failed read is left for that usual read to report.
func (r *recordConn) readAhead() {
	r.buf = recordBufs.Get().(*[]byte)
	*r.buf = (*r.buf)[:cap(*r.buf)]
	k := readNow(r.rc, *r.buf)
	r.more = k > 0
	if k <= 0 {
		r.release()
		return
	}
	r.held = (*r.buf)[:k]
}

// handOut copies held bytes of the current record into p, as many as fit.
func (r *recordConn) handOut(p []byte) int {
	n := r.at.advance(r.held[:min(len(p), len(r.held))])
	copy(p, r.held[:n])
	if r.held = r.held[n:]; len(r.held) == 0 {
		r.release()
	}
	return n
}

// release gives the read buffer back once nothing is held in it.
func (r *recordConn) release() {
	if r.buf != nil {
		recordBufs.Put(r.buf)
		r.buf, r.held = nil, nil
	}
}

// ByRecord reports whether c is a TLS connection over RecordConn, whose
// crypto/tls then holds nothing past the last record it handed out.
func ByRecord(c net.Conn) bool {
	tc, ok := c.(*tls.Conn)
	if !ok {
		return false
	}
	_, ok = tc.NetConn().(*recordConn)
	return ok
}

// Buffered returns how many bytes RecordConn under c (under TLS, if any)
// has read from the socket and not yet handed out; 0 without RecordConn.
func Buffered(c net.Conn) int {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*recordConn); ok {
		return len(rc.held)
	}
	return 0
}

// SyscallConn is c's own, so that a socket under TLS can still be asked
// how much it holds.
func (r *recordConn) SyscallConn() (syscall.RawConn, error) {
	if sc, ok := r.Conn.(syscall.Conn); ok {
		return sc.SyscallConn()
	}
	return nil, errors.ErrUnsupported
}

// NetConn returns the connection under c's TLS layer, if any, and under
// RecordConn, if that is there: the socket, for its own settings.
func NetConn(c net.Conn) net.Conn {
	if tc, ok := c.(*tls.Conn); ok {
		c = tc.NetConn()
	}
	if rc, ok := c.(*recordConn); ok {
		c = rc.Conn
	}
	return c
}
