//go:build !linux

package bridge

import "net"

// queueProbe would tell how many bytes wait unread on a socket; outside
// Linux the relay gathers only what crypto/tls holds already when a burst
// starts, and otherwise writes each chunk as it is read.
type queueProbe struct{}

func newQueueProbe(net.Conn) *queueProbe { return nil }

func (q *queueProbe) queued() int { return 0 }

// readyWait would wait until a socket has a byte to read; outside Linux the
// relay waits in its Read.
type readyWait struct{}

func newReadyWait(net.Conn) *readyWait { return nil }

func (w *readyWait) wait() error { return nil }
