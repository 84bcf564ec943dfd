package bridge

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"io"
	mrand "math/rand/v2"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tlsutil"
)

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t testing.TB) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	defer ln.Close()
	ch := make(chan net.Conn, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			ch <- nil
			return
		}
		ch <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	b = <-ch
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// relayFixture: client <-> [clientSide | relay | upSide] <-> upstream.
type relayFixture struct {
	client, upstream net.Conn
	done             chan relayStats
}

func startRelay(t testing.TB, idle time.Duration, clientBuf, upBuf string, w Watcher) *relayFixture {
	t.Helper()
	client, clientSide := tcpPair(t)
	upSide, upstream := tcpPair(t)
	var cb, ub *bufio.Reader
	if clientBuf != "" {
		cb = bufio.NewReader(bytes.NewReader([]byte(clientBuf)))
		cb.Peek(len(clientBuf))
	}
	if upBuf != "" {
		ub = bufio.NewReader(bytes.NewReader([]byte(upBuf)))
		ub.Peek(len(upBuf))
	}
	f := &relayFixture{client: client, upstream: upstream, done: make(chan relayStats, 1)}
	go func() { f.done <- relay(clientSide, cb, upSide, ub, idle, w) }()
	return f
}

func (f *relayFixture) wait(t testing.TB, d time.Duration) relayStats {
	t.Helper()
	select {
	case st := <-f.done:
		return st
	case <-time.After(d):
		t.Fatalf("relay still running after %v", d)
		return relayStats{}
	}
}

// recordingWatcher keeps everything it is shown.
type recordingWatcher struct {
	mu    sync.Mutex
	seen  bytes.Buffer
	ended int
}

func (w *recordingWatcher) Upstream(p []byte) {
	w.mu.Lock()
	w.seen.Write(p)
	w.mu.Unlock()
}

func (w *recordingWatcher) Ended() {
	w.mu.Lock()
	w.ended++
	w.mu.Unlock()
}

func TestRelayCopiesBothWaysUnchanged(t *testing.T) {
	w := &recordingWatcher{}
	f := startRelay(t, time.Minute, "pipelined-up ", "buffered-down ", w)
	up := make([]byte, 3<<20)
	down := make([]byte, 5<<20)
	rand.Read(up)
	rand.Read(down)

	var wg sync.WaitGroup
	var gotUp, gotDown []byte
	var errUp, errDown error
	wg.Add(4)
	go func() { defer wg.Done(); _, errUp = f.client.Write(up) }()
	go func() { defer wg.Done(); _, errDown = f.upstream.Write(down) }()
	go func() {
		defer wg.Done()
		gotUp = make([]byte, len("pipelined-up ")+len(up))
		io.ReadFull(f.upstream, gotUp)
	}()
	go func() {
		defer wg.Done()
		gotDown = make([]byte, len("buffered-down ")+len(down))
		io.ReadFull(f.client, gotDown)
	}()
	wg.Wait()
	if errUp != nil || errDown != nil {
		t.Fatalf("writes: %v, %v", errUp, errDown)
	}
	if !bytes.Equal(gotUp, append([]byte("pipelined-up "), up...)) {
		t.Error("bytes to the upstream differ")
	}
	if !bytes.Equal(gotDown, append([]byte("buffered-down "), down...)) {
		t.Error("bytes to the client differ")
	}

	// The upstream closes: the client is closed too.
	f.upstream.Close()
	st := f.wait(t, 5*time.Second)
	f.client.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := f.client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after upstream close: %d, %v; want EOF", n, err)
	}
	if st.toUpstream != int64(len(gotUp)) || st.toClient != int64(len(gotDown)) {
		t.Errorf("stats %+v, want %d up and %d down", st, len(gotUp), len(gotDown))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if !bytes.Equal(w.seen.Bytes(), gotDown) {
		t.Error("the watcher did not see exactly the upstream's bytes")
	}
	if w.ended != 1 {
		t.Errorf("Ended called %d times", w.ended)
	}
}

func TestRelayClientCloseClosesUpstream(t *testing.T) {
	f := startRelay(t, time.Minute, "", "", nil)
	f.client.Write([]byte("a LOGOUT\r\n"))
	buf := make([]byte, 10)
	f.upstream.SetReadDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.ReadFull(f.upstream, buf); err != nil {
		t.Fatalf("upstream read: %v", err)
	}
	f.client.Close()
	f.wait(t, 5*time.Second)
	if _, err := f.upstream.Read(buf); err != io.EOF {
		t.Errorf("upstream read after client close: %v; want EOF", err)
	}
}

func TestRelayIdleTimeout(t *testing.T) {
	const idle = 200 * time.Millisecond
	f := startRelay(t, idle, "", "", nil)
	// Traffic in one direction only keeps both alive.
	stop := time.Now().Add(3 * idle)
	for time.Now().Before(stop) {
		if _, err := f.upstream.Write([]byte("* OK still here\r\n")); err != nil {
			t.Fatalf("relay closed while the upstream was talking: %v", err)
		}
		f.client.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := f.client.Read(make([]byte, 64)); err != nil {
			t.Fatalf("relay closed while the upstream was talking: %v", err)
		}
		time.Sleep(idle / 4)
	}
	select {
	case <-f.done:
		t.Fatal("relay ended despite one-way traffic")
	default:
	}
	// Silence both ways ends it.
	start := time.Now()
	f.wait(t, 10*idle)
	if d := time.Since(start); d < idle/2 {
		t.Errorf("relay ended after %v of silence, want about %v", d, idle)
	}
}

// BenchmarkRelay reports the throughput and allocations of the relay on
// loopback TCP, one direction.
func BenchmarkRelay(b *testing.B) {
	f := startRelay(b, time.Minute, "", "", nil)
	chunk := make([]byte, 64<<10)
	b.SetBytes(int64(len(chunk)))
	done := make(chan struct{})
	go func() {
		defer close(done)
		io.CopyN(io.Discard, f.client, int64(b.N)*int64(len(chunk)))
	}()
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := f.upstream.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	<-done
	b.StopTimer()
	f.upstream.Close()
	f.wait(b, 5*time.Second)
}

// writeCounter is a client-side connection that records the size of each
// write the relay makes to it.
type writeCounter struct {
	net.Conn
	mu     sync.Mutex
	writes []int
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes = append(c.writes, len(p))
	c.mu.Unlock()
	return c.Conn.Write(p)
}

// take returns the writes recorded since the last call.
func (c *writeCounter) take() []int {
	c.mu.Lock()
	defer c.mu.Unlock()
	w := c.writes
	c.writes = nil
	return w
}

// tlsRelayFixture: client <-> [writeCounter | relay | TLS] <-> TLS upstream.
type tlsRelayFixture struct {
	client   net.Conn
	counted  *writeCounter
	upstream *tls.Conn
	upWrites *heldWrites // under upstream: writes can be held and sent as one
	watch    *recordingWatcher
	done     chan relayStats
}

// startTLSRelay relays between a client on plain TCP and an upstream that
// speaks TLS 1.3, as the bridge does (tlsutil.Client); each Write on
// f.upstream is one TLS record of at most 16 KB.
func startTLSRelay(t *testing.T) *tlsRelayFixture {
	t.Helper()
	return startTLSRelayOver(t, tlsutil.Client)
}

// startTLSRelayOver is startTLSRelay with the relay's upstream connection
// made by dial.
func startTLSRelayOver(t *testing.T, dial func(net.Conn, *tls.Config) *tls.Conn) *tlsRelayFixture {
	t.Helper()
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	client, clientSide := tcpPair(t)
	upSide, upstream := tcpPair(t)
	held := &heldWrites{Conn: upstream}
	f := &tlsRelayFixture{
		client:   client,
		counted:  &writeCounter{Conn: clientSide},
		upstream: tls.Server(held, &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13}),
		upWrites: held,
		watch:    &recordingWatcher{},
		done:     make(chan relayStats, 1),
	}
	up := dial(upSide, &tls.Config{RootCAs: ca.Pool, ServerName: "127.0.0.1", MinVersion: tls.VersionTLS13})
	go func() { f.done <- relay(f.counted, nil, up, nil, time.Minute, f.watch) }()
	t.Cleanup(func() {
		f.upstream.Close()
		f.client.Close()
		select {
		case <-f.done:
		case <-time.After(5 * time.Second):
			t.Error("relay still running after both ends closed")
		}
	})
	// Past the handshake and crypto/tls's small first records: each
	// Write below is then one record of its own size.
	warm := make([]byte, 256<<10)
	go f.upstream.Write(warm)
	f.expect(t, warm)
	f.counted.take()
	return f
}

// heldWrites is a connection whose writes can be held and then sent in one
// write, so that several TLS records reach the other side together.
type heldWrites struct {
	net.Conn
	mu   sync.Mutex
	hold bool
	buf  []byte
}

func (c *heldWrites) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.hold {
		c.buf = append(c.buf, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// holdWrites holds the writes that follow until send.
func (c *heldWrites) holdWrites() {
	c.mu.Lock()
	c.hold = true
	c.mu.Unlock()
}

// send writes what was held in one write and stops holding.
func (c *heldWrites) send() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.hold = false
	_, err := c.Conn.Write(c.buf)
	c.buf = nil
	return err
}

// expect reads exactly want from the client within 5 s.
func (f *tlsRelayFixture) expect(t *testing.T, want []byte) {
	t.Helper()
	f.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	got := make([]byte, len(want))
	if _, err := io.ReadFull(f.client, got); err != nil {
		t.Fatalf("client read of %d bytes: %v", len(want), err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("client got other bytes than the upstream sent")
	}
}

// send writes p upstream as one record and waits for it at the client;
// it returns how long that took.
func (f *tlsRelayFixture) send(t *testing.T, p []byte) time.Duration {
	t.Helper()
	start := time.Now()
	if _, err := f.upstream.Write(p); err != nil {
		t.Fatalf("upstream write: %v", err)
	}
	f.expect(t, p)
	return time.Since(start)
}

// A record goes to the client in one write, whether it starts a burst
// (the first read only fills the small buffer), comes during one, or
// arrives on its own after the burst's large buffer went back.
func TestRelayRecordInOneWrite(t *testing.T) {
	f := startTLSRelay(t)
	rec := make([]byte, 4<<10)
	rand.Read(rec)
	for i, pause := range []time.Duration{0, 0, 5 * time.Millisecond, 3 * relayHold, 3 * relayHold} {
		time.Sleep(pause)
		f.send(t, rec)
		if w := f.counted.take(); len(w) != 1 || w[0] != len(rec) {
			t.Errorf("record %d (after %v): client writes %v, want one of %d", i, pause, w, len(rec))
		}
	}
	// Records paced like a network: one write each, 16 KB at a time.
	big := make([]byte, 16<<10)
	rand.Read(big)
	for i := range 8 {
		time.Sleep(2 * time.Millisecond)
		f.send(t, big)
		if w := f.counted.take(); len(w) != 1 || w[0] != len(big) {
			t.Errorf("16 KB record %d: client writes %v, want one of %d", i, w, len(big))
		}
	}
}

// A record that exactly fills the small buffer is not held back for more:
// nothing else is coming, and it arrives at once, in one write.
func TestRelaySmallRecordNotHeld(t *testing.T) {
	f := startTLSRelay(t)
	rec := make([]byte, relaySmall)
	rand.Read(rec)
	var took []time.Duration
	for i := range 10 {
		if i%2 == 0 {
			time.Sleep(3 * relayHold) // the burst is over: the small buffer reads it
		}
		took = append(took, f.send(t, rec))
		if w := f.counted.take(); len(w) != 1 || w[0] != len(rec) {
			t.Errorf("record %d: client writes %v, want one of %d", i, w, len(rec))
		}
	}
	// Waiting for the hold to pass, or for a next record, would take
	// relayHold or more every time.
	if m := median(took); m >= relayHold {
		t.Errorf("a lone %d-byte record took %v (median of %d) to reach the client", len(rec), m, len(took))
	}
}

// Records of every size, some back to back and some apart, reach the
// client and the watcher unchanged, in writes no larger than the large
// buffer.
func TestRelayTLSRecordsUnchanged(t *testing.T) {
	f := startTLSRelay(t)
	r := mrand.New(mrand.NewPCG(1, 2))
	var recs [][]byte
	var sent []byte
	for range 600 {
		p := make([]byte, 1+r.IntN(16<<10))
		rand.Read(p)
		recs = append(recs, p)
		sent = append(sent, p...)
	}
	errc := make(chan error, 1)
	go func() {
		for i, p := range recs {
			if _, err := f.upstream.Write(p); err != nil {
				errc <- err
				return
			}
			if i%50 == 0 {
				time.Sleep(time.Duration(i/50%3) * relayHold / 2)
			}
		}
		errc <- nil
	}()
	f.client.SetReadDeadline(time.Now().Add(time.Minute))
	got := make([]byte, len(sent))
	if _, err := io.ReadFull(f.client, got); err != nil {
		t.Fatalf("client read: %v", err)
	}
	if err := <-errc; err != nil {
		t.Fatalf("upstream: %v", err)
	}
	if !bytes.Equal(got, sent) {
		t.Fatal("the client got other bytes than the upstream sent")
	}
	for _, n := range f.counted.take() {
		if n > relayLarge {
			t.Errorf("a write of %d bytes, more than the %d-byte buffer", n, relayLarge)
		}
	}
	f.watch.mu.Lock()
	defer f.watch.mu.Unlock()
	if seen := f.watch.seen.Bytes(); !bytes.HasSuffix(seen, sent) || len(seen) != len(sent)+256<<10 {
		t.Error("the watcher did not see exactly the upstream's bytes")
	}
}

// Small records that arrive together while the session is idle all reach
// the client at once: the relay, waiting for the socket between bursts,
// must not wait while records already read sit in memory, whether the
// upstream connection reads by record (tlsutil.Client, as the bridge's) or
// is crypto/tls alone, which may hold several.
func TestRelayRecordsArrivingTogether(t *testing.T) {
	for name, client := range map[string]func(net.Conn, *tls.Config) *tls.Conn{
		"tlsutil.Client": tlsutil.Client,
		"tls.Client":     tls.Client,
	} {
		t.Run(name, func(t *testing.T) { recordsArrivingTogether(t, startTLSRelayOver(t, client)) })
	}
}

func recordsArrivingTogether(t *testing.T, f *tlsRelayFixture) {
	for round, n := range []int{2, 3, 7} {
		time.Sleep(3 * relayHold) // the burst is over: the relay waits for the socket
		var sent []byte
		f.upWrites.holdWrites()
		for i := range n {
			p := bytes.Repeat([]byte{byte('a' + i)}, 100)
			if _, err := f.upstream.Write(p); err != nil {
				t.Fatal(err)
			}
			sent = append(sent, p...)
		}
		if err := f.upWrites.send(); err != nil {
			t.Fatal(err)
		}
		// A record left in memory would wait for the session's idle limit
		// (a minute); expect gives up after 5 s.
		f.expect(t, sent)
		f.counted.take()
		t.Logf("round %d: %d records sent in one write arrived", round, n)
	}
}

// An upstream that drops the connection in the middle of a TLS record,
// while the session waits between bursts, ends the session at once: the
// client's connection closes, no wait for the idle limit.
func TestRelayUpstreamDropsInsideRecord(t *testing.T) {
	f := startTLSRelay(t)
	time.Sleep(3 * relayHold) // the burst is over: the relay waits for the socket
	raw := f.upWrites.Conn
	if _, err := raw.Write([]byte{23, 3, 3, 0x40}); err != nil { // a header cut short
		t.Fatal(err)
	}
	raw.Close()
	f.client.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := f.client.Read(make([]byte, 64)); err != io.EOF {
		t.Fatalf("client read %d bytes, %v; want the end of the connection", n, err)
	}
}
