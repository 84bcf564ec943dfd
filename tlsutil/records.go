package tlsutil

import (
	"crypto/tls"
	"errors"
	"net"
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
// record: each Read returns bytes of one record's header or of one
// record's body, never of two records.
//
// crypto/tls reads into a buffer that grows to hold what a read brought
// and never shrinks (golang/go#43563): when a read brings a record and
// the start of the next one, the buffer must grow to keep both, and after
// a burst of 16 KB records it settles at 40 KiB for the connection's life.
// Fed records one at a time, it keeps one record's worth, 18 KiB. An idle
// relayed session that once fetched a large message keeps that buffer, so
// this is most of what the session costs.
//
// A read of a record's body also asks for the next record's header, kept
// here (five bytes) until crypto/tls asks for it, so that a burst costs
// one read per record, not two.
func RecordConn(c net.Conn) net.Conn {
	return &recordConn{Conn: c}
}

type recordConn struct {
	net.Conn
	// The record being handed out: how much of its header has been
	// handed out (and the header so far), and then how much of its body
	// is still to come.
	hdr  [recordHeaderLen]byte
	nhdr int
	body int
	// Bytes read from the connection and not yet handed out: always the
	// start of the next record's header.
	ahead  [recordHeaderLen]byte
	nahead int
}

func (r *recordConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	limit := r.body
	if r.nhdr < recordHeaderLen {
		limit = recordHeaderLen - r.nhdr
	}
	if r.nahead > 0 {
		n := copy(p[:min(len(p), limit)], r.ahead[:r.nahead])
		copy(r.ahead[:], r.ahead[n:r.nahead])
		r.nahead -= n
		r.handedOut(p[:n])
		return n, nil
	}
	ask := limit
	if r.nhdr == recordHeaderLen {
		ask += recordHeaderLen // the next header, if it has come
	}
	k, err := r.Conn.Read(p[:min(len(p), ask)])
	n := min(k, limit)
	r.nahead = copy(r.ahead[:], p[n:k])
	r.handedOut(p[:n])
	return n, err
}

// handedOut moves the record position past p, which lies within one
// record's header or body.
func (r *recordConn) handedOut(p []byte) {
	if r.nhdr < recordHeaderLen {
		r.nhdr += copy(r.hdr[r.nhdr:], p)
		if r.nhdr < recordHeaderLen {
			return
		}
		r.body = int(r.hdr[3])<<8 | int(r.hdr[4])
	} else {
		r.body -= len(p)
	}
	if r.body == 0 {
		r.nhdr = 0 // the record is whole; the next header comes
	}
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
