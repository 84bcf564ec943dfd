//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly

package control

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"syscall"
)

// tryLock takes an exclusive lock on f without waiting; held reports that
// another process has it. The kernel drops the lock when the process dies,
// so a crash never leaves a stale lock behind.
func tryLock(f *os.File) (held bool, err error) {
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	if errors.Is(err, syscall.EWOULDBLOCK) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) error { return syscall.Flock(int(f.Fd()), syscall.LOCK_UN) }

// checkOwner refuses a directory another user owns: its owner could read
// the socket's traffic or replace the socket.
func checkOwner(fi fs.FileInfo) error {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if ok && int(st.Uid) != os.Getuid() {
		return fmt.Errorf("control: %s belongs to user %d, not to you", fi.Name(), st.Uid)
	}
	return nil
}
