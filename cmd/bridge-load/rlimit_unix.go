//go:build unix

package main

import (
	"fmt"
	"syscall"
)

// raiseNoFile raises the soft limit on open files to at least want, and the
// hard limit too when the process may (root, or CAP_SYS_RESOURCE). Each
// idle session holds two descriptors in the bridge process (client and
// upstream) and two here (the client end and the upstream imitation's end),
// so 10,000 sessions need about 20,000 on each side, above the usual
// default. It returns the limit before and after.
func raiseNoFile(want uint64) (before, after uint64, err error) {
	var l syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &l); err != nil {
		return 0, 0, fmt.Errorf("bridge-load: reading RLIMIT_NOFILE: %w", err)
	}
	before = l.Cur
	if l.Cur >= want {
		return before, l.Cur, nil
	}
	if l.Max < want {
		// Only a privileged process may raise the hard limit; try, then
		// settle for the hard limit.
		if syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: want}) == nil {
			return before, want, nil
		}
		want = l.Max
	}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: want, Max: l.Max}); err != nil {
		return before, l.Cur, fmt.Errorf("bridge-load: raising RLIMIT_NOFILE to %d: %w", want, err)
	}
	return before, want, nil
}
