//go:build unix

package tlsutil

import "syscall"

// readNow reads into p what the socket behind rc holds, without waiting
// for more: it returns the bytes read, 0 when none were there, or -1 when
// the read failed or found the end of the stream.
func readNow(rc syscall.RawConn, p []byte) int {
	n := 0
	err := rc.Read(func(fd uintptr) bool {
		var err error
		n, err = syscall.Read(int(fd), p)
		switch {
		case err == syscall.EAGAIN:
			n = 0
		case err != nil || n == 0:
			n = -1
		}
		return true // never wait: the caller's own read does that
	})
	if err != nil {
		return 0
	}
	return n
}
