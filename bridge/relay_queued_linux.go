package bridge

import (
	"crypto/tls"
	"net"
	"syscall"
	"unsafe"

	"github.com/mailbridge/bridge/tlsutil"
)

// queueProbe asks the kernel how many bytes wait unread on a connection's
// socket (ioctl TIOCINQ, also known as FIONREAD), and adds those that
// tlsutil.RecordConn read from it and holds, so the relay can gather a
// burst into one write without ever waiting for bytes not yet there.
type queueProbe struct {
	c     net.Conn
	rc    syscall.RawConn
	n     int32
	probe func(fd uintptr) // made once: a closure per call would allocate
}

// newQueueProbe returns a probe for c's socket (under TLS and RecordConn,
// if any), or nil when c has none.
func newQueueProbe(c net.Conn) *queueProbe {
	rc := socketOf(c)
	if rc == nil {
		return nil
	}
	q := &queueProbe{c: c, rc: rc}
	q.probe = func(fd uintptr) {
		if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, fd, syscall.TIOCINQ, uintptr(unsafe.Pointer(&q.n))); e != 0 {
			q.n = 0
		}
	}
	return q
}

// queued returns the bytes waiting in the kernel and in RecordConn; 0 when
// unknown.
func (q *queueProbe) queued() int {
	if q == nil {
		return 0
	}
	held := tlsutil.Buffered(q.c)
	if q.rc.Control(q.probe) != nil {
		return held
	}
	return held + int(q.n)
}

// readyWait waits in the runtime's network poller until a socket has a
// byte to read, without reading it (recv with MSG_PEEK), so that an idle
// relay goroutine waits with little on its stack.
type readyWait struct {
	rc   syscall.RawConn
	b    [1]byte
	peek func(fd uintptr) bool // made once: a closure per call would allocate
}

// newReadyWait returns a waiter for c's socket, or nil when c has none or
// is TLS without tlsutil.RecordConn under it: such a crypto/tls may hold
// whole records past the one it handed out, which a wait on the socket
// would keep back.
func newReadyWait(c net.Conn) *readyWait {
	if _, ok := c.(*tls.Conn); ok && !tlsutil.ByRecord(c) {
		return nil
	}
	rc := socketOf(c)
	if rc == nil {
		return nil
	}
	w := &readyWait{rc: rc}
	w.peek = func(fd uintptr) bool {
		_, _, e := syscall.Syscall6(syscall.SYS_RECVFROM, fd, uintptr(unsafe.Pointer(&w.b[0])), 1, syscall.MSG_PEEK|syscall.MSG_DONTWAIT, 0, 0)
		return e != syscall.EAGAIN && e != syscall.EINTR
	}
	return w
}

// wait returns when the socket has a byte, is at its end or failed, or
// with the connection's read deadline's error.
func (w *readyWait) wait() error {
	if w == nil {
		return nil
	}
	return w.rc.Read(w.peek)
}

// socketOf returns the descriptor of c's socket (under TLS and RecordConn,
// if any), or nil when c has none.
func socketOf(c net.Conn) syscall.RawConn {
	sc, ok := tlsutil.NetConn(c).(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}
