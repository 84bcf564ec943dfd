package tlsutil

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"reflect"
	"slices"
	"sort"
	"syscall"
	"testing"
	"time"
)

// chunkConn is a net.Conn whose reads hand out at most the next of sizes
// (cycling) of the stream, like a socket that received it in those pieces.
type chunkConn struct {
	net.Conn
	data  []byte
	sizes []int
	i     int
	reads int // Read calls that reached the stream
}

func (c *chunkConn) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	c.reads++
	k := min(len(p), len(c.data), c.sizes[c.i%len(c.sizes)])
	c.i++
	copy(p, c.data[:k])
	c.data = c.data[k:]
	return k, nil
}

// records is a stream of TLS-shaped records with the given body lengths,
// each body filled with its record's index.
func records(lens ...int) []byte {
	var b []byte
	for i, n := range lens {
		b = append(b, 23, 3, 3, byte(n>>8), byte(n))
		b = append(b, bytes.Repeat([]byte{byte(i)}, n)...)
	}
	return b
}

// recordEnds returns the offsets in stream where records end.
func recordEnds(stream []byte) map[int]bool {
	ends := map[int]bool{}
	for off := 0; off < len(stream); {
		off += recordHeaderLen + (int(stream[off+3])<<8 | int(stream[off+4]))
		ends[off] = true
	}
	return ends
}

// recordOf returns the start and end of the record holding stream[i],
// given the ends of every record.
func recordOf(sorted []int, i int) (start, end int) {
	k := sort.SearchInts(sorted, i+1)
	if k > 0 {
		start = sorted[k-1]
	}
	return start, sorted[k]
}

// TestRecordConnReads: whatever pieces the socket hands out and whatever
// room the reader offers, RecordConn hands out the stream unchanged; no
// Read goes past the end of a record; and what it read ahead is no more
// than one read's worth, as Buffered says.
func TestRecordConnReads(t *testing.T) {
	stream := records(0, 1, 4, 5, 6, 1200, 4096, 16401, 0, 16384+2048, 3, 16401, 7, 4096, 4096, 4096, 100, 16401)
	ends := recordEnds(stream)
	sorted := slices.Sorted(maps.Keys(ends))
	sockets := map[string][]int{
		"all at once":  {len(stream)},
		"byte by byte": {1},
		"odd pieces":   {7, 3, 1, 5000, 2, 16000, 9},
		"headers torn": {3, 2, 6, 4, 1, 16402},
		"random":       nil,
	}
	rooms := map[string][]int{"large": {1 << 17}, "one byte": {1}, "mixed": {5, 1, 100, 20000, 3, 1 << 16}, "one record": {18432}}
	for sname, sizes := range sockets {
		if sizes == nil {
			r := rand.New(rand.NewPCG(1, 2))
			for range 500 {
				sizes = append(sizes, 1+r.IntN(20000))
			}
		}
		for rname, room := range rooms {
			t.Run(sname+"/"+rname, func(t *testing.T) {
				sock := &chunkConn{data: stream, sizes: sizes}
				rc := RecordConn(sock)
				var got []byte
				bufs := make([][]byte, len(room))
				for i, n := range room {
					bufs[i] = make([]byte, n)
				}
				for i := 0; ; i++ {
					p := bufs[i%len(bufs)]
					n, err := rc.Read(p)
					if n > 0 {
						start, end := len(got), len(got)+n
						if rs, re := recordOf(sorted, start); end > re {
							t.Fatalf("read %d handed out bytes %d-%d, past the end of the record at %d-%d", i, start, end, rs, re)
						}
						got = append(got, p[:n]...)
					}
					if ahead := len(stream) - len(sock.data) - len(got); ahead != Buffered(rc) || ahead > max(recordReadSize, len(p)) {
						t.Fatalf("after read %d: %d bytes read ahead, Buffered says %d, the most is %d", i, ahead, Buffered(rc), max(recordReadSize, len(p)))
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 {
						t.Fatalf("read %d: 0 bytes and no error", i)
					}
				}
				if !bytes.Equal(got, stream) {
					t.Fatalf("handed out %d bytes, not the %d-byte stream unchanged", len(got), len(stream))
				}
			})
		}
	}
}

// TestRecordConnHoldsPartRecord: what a read brought past a record's end
// (here the start of a record whose end has not arrived) is held, as
// Buffered says, until the next Reads take it; then the buffer goes back.
func TestRecordConnHoldsPartRecord(t *testing.T) {
	stream := records(100, 16401)
	cut := len(stream) - 1000
	sock := &chunkConn{data: stream, sizes: []int{cut, len(stream)}}
	rc := RecordConn(sock).(*recordConn)
	p := make([]byte, 1<<17)
	n, err := rc.Read(p)
	if err != nil || n != recordHeaderLen+100 {
		t.Fatalf("first read: %d bytes, %v; want the whole first record, %d bytes", n, err, recordHeaderLen+100)
	}
	if rc.buf == nil || Buffered(rc) != cut-n {
		t.Fatalf("the start of the second record is not held: Buffered %d, want %d", Buffered(rc), cut-n)
	}
	got := n
	for got < len(stream) {
		n, err := rc.Read(p)
		if err != nil {
			t.Fatal(err)
		}
		got += n
	}
	if rc.buf != nil || Buffered(rc) != 0 {
		t.Errorf("after the second record: buffer still held (%d bytes)", Buffered(rc))
	}
}

// rawInputCap is the capacity of crypto/tls's receive buffer in c.
func rawInputCap(t *testing.T, c *tls.Conn) int {
	t.Helper()
	f := reflect.ValueOf(c).Elem().FieldByName("rawInput")
	if !f.IsValid() || f.Type().String() != "bytes.Buffer" {
		t.Fatalf("crypto/tls.Conn has no rawInput bytes.Buffer in this Go version; " +
			"RecordConn is built on how that buffer grows, so both need a new look")
	}
	return f.FieldByName("buf").Cap()
}

// TestRecordConnKeepsOneRecord relays a burst of 16 KB records over real
// TLS and checks what crypto/tls's receive buffer keeps afterwards: with
// RecordConn, room for one record when the server sends full records from
// the start, or small ones and then full ones, and at most one doubling
// above that after a server's record sizes grew step by step (crypto/tls's
// own dynamic record sizing); without it the buffer keeps two records.
func TestRecordConnKeepsOneRecord(t *testing.T) {
	ca, cert, _, _ := issue(t, "localhost")
	for _, tc := range []struct {
		name    string
		dynamic bool // the server's records grow step by step to 16 KB
		small   int  // first, the server writes this many 1 KB records
		max     int  // the most the buffer may keep, with RecordConn
	}{
		{"full records", false, 0, 18432},
		{"small records, then full ones", false, 200, 18432},
		{"growing records", true, 0, 32768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: !tc.dynamic}
			client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
			with := burst(t, server, tc.small, func(c net.Conn) *tls.Conn { return Client(c, client) })
			without := burst(t, server, tc.small, func(c net.Conn) *tls.Conn { return tls.Client(c, client) })
			t.Logf("receive buffer after the burst: %d bytes with RecordConn, %d without", with, without)
			if with > tc.max {
				t.Errorf("with RecordConn crypto/tls keeps a %d-byte receive buffer after the burst, want at most %d", with, tc.max)
			}
		})
	}
}

// burst has a TLS server with cfg send small 1 KB records, then 4 MB as
// fast as it can, to a client made by dial, which reads it as the relay
// does (a small read, then large ones), and returns the capacity of the
// client's receive buffer after.
func burst(t *testing.T, cfg *tls.Config, small int, dial func(net.Conn) *tls.Conn) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	const total = 4 << 20
	sent := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			sent <- err
			return
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(time.Minute))
		s := tls.Server(c, cfg)
		for range small {
			if _, err = s.Write(bytes.Repeat([]byte("s"), 1024)); err != nil {
				break
			}
		}
		chunk := bytes.Repeat([]byte("x"), 1<<16)
		for n := 0; n < total && err == nil; n += len(chunk) {
			_, err = s.Write(chunk)
		}
		if err == nil {
			_, err = io.Copy(io.Discard, s) // until the client closes
		}
		sent <- err
	}()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	c := dial(raw)
	defer c.Close()
	c.SetDeadline(time.Now().Add(time.Minute))
	first, rest := make([]byte, 1024), make([]byte, 128<<10)
	for got := 0; got < total+small*1024; {
		buf := rest
		if got == 0 {
			buf = first
		}
		n, err := c.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got, err)
		}
		got += n
	}
	cp := rawInputCap(t, c)
	c.Close()
	<-sent // a failure on the server's side shows as the client's read error above
	return cp
}

// TestNetConn: the socket is found under TLS and RecordConn, and its
// descriptor can still be reached through RecordConn.
func TestNetConn(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	raw, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	for name, c := range map[string]net.Conn{
		"socket":            raw,
		"RecordConn":        RecordConn(raw),
		"TLS on RecordConn": Client(raw, &tls.Config{}),
		"TLS":               tls.Client(raw, &tls.Config{}),
	} {
		if got := NetConn(c); got != raw {
			t.Errorf("%s: NetConn = %T, not the socket", name, got)
		}
	}
	if !ByRecord(Client(raw, &tls.Config{})) || ByRecord(tls.Client(raw, &tls.Config{})) || ByRecord(raw) {
		t.Error("ByRecord does not tell a TLS connection over RecordConn from others")
	}
	sc, ok := RecordConn(raw).(syscall.Conn)
	if !ok {
		t.Fatal("RecordConn hides the socket's descriptor")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	if err := rc.Control(func(fd uintptr) {}); err != nil {
		t.Errorf("descriptor through RecordConn: %v", err)
	}
}

// TestRecordConnEndsInsideRecord: a connection that ends inside a record
// (an upstream that dropped mid-reply) hands out every byte that came and
// then the end of the stream, with the socket read in pieces or all at
// once and read ahead or not.
func TestRecordConnEndsInsideRecord(t *testing.T) {
	whole := records(100, 4096, 16401)
	for _, cut := range []int{1, 3, 5, 6, 1000, 16000} {
		stream := whole[:len(whole)-cut]
		for name, sizes := range map[string][]int{"at once": {len(stream)}, "in pieces": {7, 3000, 11}} {
			rc := RecordConn(&chunkConn{data: stream, sizes: sizes})
			var got []byte
			p := make([]byte, 18432)
			var err error
			for i := 0; err == nil && i < 10000; i++ {
				var n int
				n, err = rc.Read(p)
				got = append(got, p[:n]...)
			}
			if err != io.EOF || !bytes.Equal(got, stream) {
				t.Errorf("cut %d bytes short, %s: got %d of %d bytes, then %v; want them all, then EOF", cut, name, len(got), len(stream), err)
			}
		}
	}
}
