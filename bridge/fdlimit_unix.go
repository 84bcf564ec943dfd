//go:build unix

package bridge

import "syscall"

// fileLimit returns the process's soft limit on open descriptors (which
// the Go runtime raises to the hard limit at start).
func fileLimit() (uint64, bool) {
	var r syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &r); err != nil {
		return 0, false
	}
	return uint64(r.Cur), true
}
