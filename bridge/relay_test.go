package bridge

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"io"
	"net"
	"sync"
	"testing"
	"time"
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
