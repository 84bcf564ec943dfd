package tlsutil

import (
	"bytes"
	"crypto/tls"
	"errors"
	"io"
	"math/rand/v2"
	"net"
	"reflect"
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

// pieces splits stream into header and body pieces, in order.
func pieces(stream []byte) [][2]int {
	var out [][2]int
	for off := 0; off < len(stream); {
		n := int(stream[off+3])<<8 | int(stream[off+4])
		out = append(out, [2]int{off, off + recordHeaderLen})
		if n > 0 {
			out = append(out, [2]int{off + recordHeaderLen, off + recordHeaderLen + n})
		}
		off += recordHeaderLen + n
	}
	return out
}

// TestRecordConnReads: whatever pieces the socket hands out and whatever
// room the reader offers, RecordConn hands out the stream unchanged, each
// Read within one record's header or one record's body, and never reads
// more than five bytes (a header) ahead of what it handed out.
func TestRecordConnReads(t *testing.T) {
	stream := records(0, 1, 4, 5, 6, 1200, 4096, 16401, 0, 16384+2048, 3, 16401, 7)
	bounds := pieces(stream)
	sockets := map[string][]int{
		"all at once":  {len(stream)},
		"byte by byte": {1},
		"odd pieces":   {7, 3, 1, 5000, 2, 16000, 9},
		"headers torn": {3, 2, 6, 4, 1, 16402},
		"random":       nil,
	}
	rooms := map[string][]int{"large": {1 << 17}, "one byte": {1}, "mixed": {5, 1, 100, 20000, 3, 1 << 16}}
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
				piece := 0
				for i := 0; ; i++ {
					p := make([]byte, room[i%len(room)])
					n, err := rc.Read(p)
					if n > 0 {
						start, end := len(got), len(got)+n
						for piece < len(bounds) && bounds[piece][1] <= start {
							piece++
						}
						if piece == len(bounds) || start < bounds[piece][0] || end > bounds[piece][1] {
							t.Fatalf("read %d handed out bytes %d-%d, across the piece %v of the stream", i, start, end, bounds[min(piece, len(bounds)-1)])
						}
						got = append(got, p[:n]...)
					}
					if ahead := len(stream) - len(sock.data) - len(got); ahead < 0 || ahead > recordHeaderLen {
						t.Fatalf("after read %d: %d bytes read ahead of what was handed out", i, ahead)
					}
					if errors.Is(err, io.EOF) {
						break
					}
					if err != nil {
						t.Fatal(err)
					}
					if n == 0 && len(p) > 0 {
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

// TestRecordConnOneReadPerRecord: in a burst, one read of the socket
// brings a record's body and the next record's header together.
func TestRecordConnOneReadPerRecord(t *testing.T) {
	lens := make([]int, 64)
	for i := range lens {
		lens[i] = 16401
	}
	stream := records(lens...)
	sock := &chunkConn{data: stream, sizes: []int{len(stream)}}
	rc := RecordConn(sock)
	buf := make([]byte, 1<<17)
	for {
		if _, err := rc.Read(buf); err != nil {
			break
		}
	}
	// The first header alone, then one read per record.
	if want := len(lens) + 1; sock.reads > want {
		t.Errorf("%d socket reads for %d records, want at most %d", sock.reads, len(lens), want)
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
// the start, and at most one doubling above that after a server's record
// sizes grew step by step (crypto/tls's own dynamic record sizing);
// without it the buffer keeps two records or more.
func TestRecordConnKeepsOneRecord(t *testing.T) {
	ca, err := NewTestCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, _, _, err := ca.Issue("localhost")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name    string
		dynamic bool // the server's records grow from small to 16 KB
		max     int  // the most the buffer may keep, with RecordConn
	}{
		{"full records", false, 18432},
		{"growing records", true, 32768},
	} {
		t.Run(tc.name, func(t *testing.T) {
			server := &tls.Config{Certificates: []tls.Certificate{cert}, DynamicRecordSizingDisabled: !tc.dynamic}
			client := &tls.Config{RootCAs: ca.Pool, ServerName: "localhost"}
			with := burst(t, server, func(c net.Conn) *tls.Conn { return Client(c, client) })
			without := burst(t, server, func(c net.Conn) *tls.Conn { return tls.Client(c, client) })
			t.Logf("receive buffer after the burst: %d bytes with RecordConn, %d without", with, without)
			if with > tc.max {
				t.Errorf("with RecordConn crypto/tls keeps a %d-byte receive buffer after the burst, want at most %d", with, tc.max)
			}
		})
	}
}

// burst has a TLS server with cfg send 4 MB as fast as it can to a client
// made by dial, which reads it as the relay does (a small read, then large
// ones), and returns the capacity of the client's receive buffer after.
func burst(t *testing.T, cfg *tls.Config, dial func(net.Conn) *tls.Conn) int {
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
	small, large := make([]byte, 1024), make([]byte, 128<<10)
	for got := 0; got < total; {
		buf := large
		if got == 0 {
			buf = small
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
