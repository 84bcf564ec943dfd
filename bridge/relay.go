package bridge

import (
	"bufio"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mailbridge/bridge/tlsutil"
)

// Relay buffer sizes. A session waits for its next command with at most
// the small buffers (one per direction; none where it waits for the socket,
// readyWait), so thousands of idle IMAP IDLE sessions cost little; a read
// that fills the small buffer means a burst is
// under way, and the reads borrow a large buffer from the pool until
// relayHold passes without a byte. Giving it back at the first short read
// instead would, with an upstream that sends its records further apart
// than the relay takes to pass one on (any real network), start a burst
// per record. 128 KB lets one write carry eight 16 KB records that arrived
// together. Each time relayHold passes during a burst the deadline fires
// and the runtime wakes threads for it: at 20 ms that added 14% to the
// bridge's thread wakeups per MB with records a millisecond apart, at 100
// ms nothing measurable.
const (
	relaySmall = 1 << 10
	relayLarge = 128 << 10
	relayHold  = 100 * time.Millisecond
)

// relayClientSendBuf is the client leg's socket send buffer. Linux starts
// a socket at 16 KB and grows it only as acknowledgements come back, so in
// a burst the relay's large writes would block on the client's reader
// again and again; a fixed 256 KB lets a write land while the client is
// still reading the last. It is a limit, not an allocation: an idle session
// has nothing queued and costs nothing for it. The README's performance
// section gives what it gains on the FETCH benchmarks.
const relayClientSendBuf = 256 << 10

var relayPool = sync.Pool{New: func() any { b := make([]byte, relayLarge); return &b }}

// smallPool holds the small buffers of pipes that wait for their socket
// rather than in a Read (readyWait).
var smallPool = sync.Pool{New: func() any { b := make([]byte, relaySmall); return &b }}

// Watcher looks at the upstream's bytes as they are relayed to the client,
// without touching them. Front ends use it to spot the upstream's own
// explanations (IMAP's "User is authenticated but not connected").
type Watcher interface {
	// Upstream is called with each chunk read from the upstream, before it
	// is written to the client. It must neither keep nor modify p.
	Upstream(p []byte)
	// Ended is called once, after both directions have stopped.
	Ended()
}

// relayStats counts the bytes copied each way.
type relayStats struct {
	toUpstream, toClient int64
}

// relay copies bytes both ways between client and up, unchanged, until
// either side closes or nothing moved either way for idle; then it closes
// both connections and returns. Bytes already buffered in clientBuf (a
// client that pipelined commands after its login) and upBuf go first;
// either may be nil. watch, when not nil, sees the upstream's bytes.
func relay(client net.Conn, clientBuf *bufio.Reader, up net.Conn, upBuf *bufio.Reader, idle time.Duration, watch Watcher) relayStats {
	return newRelay(client, up, idle, nil).run(clientBuf, upBuf, watch)
}

// newRelay prepares a relay between client and up; run starts it. lines,
// when not nil, follows the upstream's replies so that goodbye can tell
// when it may speak.
func newRelay(client, up net.Conn, idle time.Duration, lines *replyLines) *relayState {
	r := &relayState{client: client, up: up, idle: idle, lines: lines}
	r.touch()
	return r
}

// run relays as relay does.
func (r *relayState) run(clientBuf, upBuf *bufio.Reader, watch Watcher) relayStats {
	client, up := r.client, r.up
	setSendBuffer(client, relayClientSendBuf)
	defer func() {
		if watch != nil {
			watch.Ended()
		}
	}()
	if err := r.drain(up, clientBuf, nil, &r.stats.toUpstream); err != nil {
		r.closeBoth()
		return r.stats
	}
	if err := r.drain(client, upBuf, watch, &r.stats.toClient); err != nil {
		r.closeBoth()
		return r.stats
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		r.pipe(client, up, watch, &r.stats.toClient)
		if r.ending.Load() {
			// After a goodbye the other direction closes the client,
			// once the client has had time to read it.
			up.Close()
			return
		}
		r.closeBoth()
	}()
	r.pipe(up, client, nil, &r.stats.toUpstream)
	r.closeBoth()
	<-done
	return r.stats
}

// setSendBuffer sets c's socket send buffer (under TLS, if any) to n bytes;
// a connection without a TCP socket is left alone, and a failure only costs
// speed.
func setSendBuffer(c net.Conn, n int) {
	if tc, ok := tlsutil.NetConn(c).(*net.TCPConn); ok {
		tc.SetWriteBuffer(n)
	}
}

type relayState struct {
	client, up net.Conn
	idle       time.Duration
	last       atomic.Int64 // unix nanoseconds of the last chunk either way
	once       sync.Once
	stats      relayStats

	// toClient is held while bytes are written to the client, so that a
	// goodbye never lands inside them; lines is guarded by it.
	toClient sync.Mutex
	lines    *replyLines
	ending   atomic.Bool // a goodbye was written; the relay is closing
}

// touch stamps r.last and returns the stamp.
func (r *relayState) touch() int64 {
	now := time.Now().UnixNano()
	r.last.Store(now)
	return now
}

func (r *relayState) closeBoth() {
	r.once.Do(func() {
		r.client.Close()
		r.up.Close()
	})
}

// drain writes what br holds to dst.
func (r *relayState) drain(dst net.Conn, br *bufio.Reader, watch Watcher, count *int64) error {
	if br == nil || br.Buffered() == 0 {
		return nil
	}
	p, _ := br.Peek(br.Buffered())
	if watch != nil {
		watch.Upstream(p)
	}
	n, err := r.write(dst, p)
	atomic.AddInt64(count, int64(n))
	return err
}

// write writes p to dst; toward the client it excludes a goodbye and
// follows the upstream's replies.
func (r *relayState) write(dst net.Conn, p []byte) (int, error) {
	if dst != r.client {
		return dst.Write(p)
	}
	r.toClient.Lock()
	defer r.toClient.Unlock()
	if r.ending.Load() {
		return 0, net.ErrClosed
	}
	if r.lines != nil {
		r.lines.feed(p)
	}
	return dst.Write(p)
}

// relayQuiet is how long nothing must have moved either way before a
// goodbye is written to a relayed session: an idle one (IMAP IDLE, a
// client between commands) has been quiet far longer, while a busy one
// gets its goodbye after its current exchange, or at the end of the grace
// period.
const relayQuiet = 300 * time.Millisecond

// goodbye writes bye to the client when the upstream is not in the middle
// of a reply (replyLines) and the session has been quiet for relayQuiet,
// or, at the last call, whenever the upstream is between replies. Then it
// closes the upstream and ends the client's side of the connection, which
// the relay closes once the client has read the goodbye (lingerTime at
// most). It reports whether the goodbye was written.
func (r *relayState) goodbye(bye string, last bool) bool {
	if !r.toClient.TryLock() {
		return false // a reply is being written
	}
	defer r.toClient.Unlock()
	if r.ending.Load() {
		return true
	}
	quiet := time.Since(time.Unix(0, r.last.Load())) >= relayQuiet
	if r.lines == nil || !r.lines.between() || !quiet && !last {
		return false
	}
	r.ending.Store(true)
	r.client.SetWriteDeadline(time.Now().Add(time.Second))
	io.WriteString(r.client, bye)
	r.up.Close()
	if tc, ok := r.client.(*tls.Conn); ok {
		tc.CloseWrite()
	}
	if tc, ok := tlsutil.NetConn(r.client).(*net.TCPConn); ok {
		tc.CloseWrite()
	}
	r.client.SetReadDeadline(time.Now().Add(lingerTime))
	return true
}

// pipe copies src to dst until an error. The read deadline is not moved per
// chunk (that costs a timer update each time and, measured, a fifth more
// thread wakeups with records a millisecond apart): each chunk only stamps
// r.last, and when src's deadline fires while the other direction was
// busy, the deadline is set again from the stamp. During a burst the
// deadline is relayHold after the burst's first chunk, and then after the
// last chunk before it fired, so that the large buffer goes back to the
// pool once relayHold passes without a byte.
func (r *relayState) pipe(dst, src net.Conn, watch Watcher, count *int64) {
	small := smallPool.Get().(*[]byte)
	var large *[]byte
	var lastChunk int64 // unix nanoseconds of this direction's last chunk
	var q *queueProbe   // made at the first burst; idle sessions never need it
	// A TLS source hands out one record per Read however much it holds;
	// a socket hands out all it has.
	_, records := src.(*tls.Conn)
	defer func() {
		if large != nil {
			relayPool.Put(large)
		}
		if small != nil {
			smallPool.Put(small)
		}
	}()
	if src.SetReadDeadline(time.Now().Add(r.idle)) != nil {
		return
	}
	if r.ending.Load() && src == r.client {
		// A goodbye came before this pipe started: keep its deadline.
		src.SetReadDeadline(time.Now().Add(lingerTime))
	}
	// Between bursts the pipe waits for src's socket to have a byte before
	// it reads (on Linux): a goroutine parked inside crypto/tls's Read
	// keeps the 8 KB stack its frames need, one parked here gets by on 4 KB.
	// It may wait only when src holds nothing a Read would return without
	// the socket: the last Read returned less than asked (crypto/tls then
	// holds no plaintext, and, under tlsutil.RecordConn, no further record)
	// and RecordConn holds nothing read ahead. While it waits there it
	// holds no read buffer either: the small one goes back to its pool.
	ready := newReadyWait(src)
	drained := false
	for {
		var n int
		var err error
		if large == nil && drained && ready != nil && tlsutil.Buffered(src) == 0 {
			smallPool.Put(small)
			small = nil
			err = ready.wait()
			small = smallPool.Get().(*[]byte)
		}
		buf := *small
		if large != nil {
			buf = *large
		}
		if err == nil {
			n, err = src.Read(buf)
		}
		drained = err != nil || n < len(buf)
		burst := err == nil && large == nil && n == relaySmall
		if burst {
			// A burst, or a record longer than the small buffer: what is
			// left of it (crypto/tls decrypts a whole record and hands out
			// what fits) goes out in the same write.
			large = relayPool.Get().(*[]byte)
			buf = *large
			copy(buf, *small)
			if q == nil {
				q = newQueueProbe(src)
			}
			n, err = readHeld(src, buf, n)
			drained = false
		}
		if err == nil && large != nil && (records || burst) {
			n, err = gather(src, buf, n, q, records)
			drained = false
		}
		if n > 0 {
			lastChunk = r.touch()
			if watch != nil {
				watch.Upstream(buf[:n])
			}
			if _, werr := r.write(dst, buf[:n]); werr != nil {
				if r.ending.Load() && dst == r.up {
					// After a goodbye: read what the client still
					// sends, so that closing does not reset the
					// connection before it has read the goodbye.
					continue
				}
				return
			}
			atomic.AddInt64(count, int64(n))
		}
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) || r.ending.Load() {
				return
			}
			if large != nil {
				// The burst's first deadline was set just before its first
				// chunk was stamped: a millisecond's slack keeps that from
				// firing twice.
				if hold := time.Unix(0, lastChunk).Add(relayHold); time.Until(hold) > time.Millisecond {
					if src.SetReadDeadline(hold) != nil {
						return
					}
					continue
				}
				// relayHold without a byte: the burst is over.
				relayPool.Put(large)
				large = nil
			}
			next := time.Unix(0, r.last.Load()).Add(r.idle)
			if !time.Now().Before(next) || src.SetReadDeadline(next) != nil {
				return // idle both ways for the whole limit
			}
		}
	}
}

// aLongTimeAgo is a read deadline already past: a Read then returns only
// what the connection holds in memory, without a system call.
var aLongTimeAgo = time.Unix(1, 0)

// readHeld reads into buf[n:] what src holds in memory already (the rest of
// a record crypto/tls decrypted whole but handed out only in part, and the
// records tlsutil.RecordConn read ahead) and returns the new n. src's read deadline
// is then relayHold away. A plain socket holds nothing in memory.
func readHeld(src net.Conn, buf []byte, n int) (int, error) {
	if err := src.SetReadDeadline(aLongTimeAgo); err != nil {
		return n, err
	}
	for n < len(buf) {
		k, err := src.Read(buf[n:])
		n += k
		if errors.Is(err, os.ErrDeadlineExceeded) {
			break
		}
		if err != nil {
			return n, err
		}
	}
	return n, src.SetReadDeadline(time.Now().Add(relayHold))
}

// tlsRecordMax is the most bytes a TLS record takes on the wire: header,
// 2^14 bytes of data and the largest expansion TLS 1.2 allows (RFC 5246
// section 6.2.3; TLS 1.3 allows less).
const tlsRecordMax = 5 + 1<<14 + 2048

// gather reads into buf[n:] while the kernel holds enough of src (q) for
// the read to return at once: a whole record of a TLS source, any byte of a
// socket. It never waits for bytes still to come. A read of k bytes takes
// at most k and a record's overhead from what the kernel held, so one probe
// of the queue can let several records through. It returns the new n.
func gather(src net.Conn, buf []byte, n int, q *queueProbe, records bool) (int, error) {
	ready, overhead := 1, 0
	if records {
		ready, overhead = tlsRecordMax, tlsRecordMax-1<<14
	}
	for queued := q.queued(); n < len(buf) && queued >= ready; {
		k, err := src.Read(buf[n:])
		n += k
		if err != nil {
			return n, err
		}
		if queued -= k + overhead; queued < ready {
			queued = q.queued()
		}
	}
	return n, nil
}
