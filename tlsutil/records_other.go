//go:build !unix

package tlsutil

import "syscall"

// readNow would read what the socket holds without waiting; elsewhere than
// Unix every read goes through the connection's own Read.
func readNow(syscall.RawConn, []byte) int { return 0 }
