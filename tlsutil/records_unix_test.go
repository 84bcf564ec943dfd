//go:build unix

package tlsutil

import (
	"bytes"
	"io"
	"net"
	"os"
	"syscall"
	"testing"
	"time"
)

// countConn counts the reads that go through a connection's Read.
type countConn struct {
	net.Conn
	reads int
}

func (c *countConn) Read(p []byte) (int, error) {
	c.reads++
	return c.Conn.Read(p)
}

func (c *countConn) SyscallConn() (syscall.RawConn, error) {
	return c.Conn.(syscall.Conn).SyscallConn()
}

// socketPair returns the two ends of a connected Unix stream socket.
func socketPair(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	fds, err := syscall.Socketpair(syscall.AF_UNIX, syscall.SOCK_STREAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	var ends [2]net.Conn
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), "socketpair")
		c, err := net.FileConn(f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		ends[i] = c
	}
	return ends[0], ends[1]
}

// TestRecordConnReadsAhead: once a read fills crypto/tls's room, the rest
// of a burst comes in reads of up to 64 KB that never wait, whatever the
// records' size, and the stream arrives unchanged; the read buffer goes
// back to the pool once everything was handed out.
func TestRecordConnReadsAhead(t *testing.T) {
	for _, tc := range []struct {
		name    string
		records int
		record  int
		room    int
	}{
		{"4 KB records", 20, 4096 + 17, 4096 + 22 + 512},
		{"16 KB records", 5, 16384 + 17, 18432},
		{"tiny records", 1500, 40, 600},
	} {
		t.Run(tc.name, func(t *testing.T) {
			lens := make([]int, tc.records)
			for i := range lens {
				lens[i] = tc.record
			}
			stream := records(lens...)
			a, b := socketPair(t)
			// The whole stream (about 80 KB) fits in the socket's buffer.
			b.SetWriteDeadline(time.Now().Add(5 * time.Second))
			if _, err := b.Write(stream); err != nil {
				t.Fatalf("writing %d bytes into a Unix socket pair: %v", len(stream), err)
			}
			b.Close()
			cc := &countConn{Conn: a}
			rc := RecordConn(cc)
			// As crypto/tls does: a record's bytes stay in the buffer
			// until it is whole, then the buffer is free again.
			buf := make([]byte, tc.room)
			var got []byte
			var pos recordPos
			for off := 0; ; {
				n, err := rc.Read(buf[off:])
				got = append(got, buf[off:off+n]...)
				if err == io.EOF {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				if pos.advance(buf[off : off+n]); pos.nhdr == 0 {
					off = 0
				} else {
					off += n
				}
			}
			if !bytes.Equal(got, stream) {
				t.Fatalf("got %d bytes, not the %d-byte stream unchanged", len(got), len(stream))
			}
			// One read to fill the room, then reads ahead until the end of
			// the stream, which the last read reports.
			if cc.reads > 2 {
				t.Errorf("%d reads through Read for %d bytes in %d records, want 2", cc.reads, len(stream), len(lens))
			}
			if rc.(*recordConn).buf != nil {
				t.Error("the read buffer is still held after every record was handed out")
			}
		})
	}
}

// TestRecordConnIdleHoldsNothing: a connection waiting for its next bytes
// holds no read buffer, also right after a burst.
func TestRecordConnIdleHoldsNothing(t *testing.T) {
	a, b := socketPair(t)
	stream := records(16401, 16401, 16401, 100)
	b.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Write(stream); err != nil {
		t.Fatalf("writing %d bytes into a Unix socket pair: %v", len(stream), err)
	}
	rc := RecordConn(a).(*recordConn)
	buf := make([]byte, 18432)
	var pos recordPos
	for got, off := 0, 0; got < len(stream); {
		n, err := rc.Read(buf[off:])
		if err != nil {
			t.Fatal(err)
		}
		got += n
		if pos.advance(buf[off : off+n]); pos.nhdr == 0 {
			off = 0
		} else {
			off += n
		}
	}
	if rc.buf != nil {
		t.Fatal("the read buffer is held after the burst")
	}
	// The next read finds nothing ahead, gives the buffer back and waits
	// in the socket's own Read, into the caller's buffer.
	done := make(chan int)
	go func() {
		n, _ := rc.Read(buf)
		done <- n
	}()
	b.Write(records(3)[:2])
	if n := <-done; n != 2 {
		t.Fatalf("the read after the burst got %d bytes, want the 2 sent", n)
	}
	if rc.buf != nil {
		t.Error("the read buffer was taken for a read that had to wait")
	}
}
