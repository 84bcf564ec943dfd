// Package filelock serialises read-modify-write sequences on a file across
// processes with an exclusive OS lock (flock on Unix, LockFileEx on
// Windows) on a lock file next to it. The data file itself cannot carry
// the lock when writers replace it by rename: a process that opened the
// old file would lock an inode nobody reads any more.
package filelock

import (
	"fmt"
	"os"
	"time"
)

// Lock is a held lock. The kernel drops it when the process dies, so a
// crash never leaves a stale lock behind.
type Lock struct{ f *os.File }

// Acquire takes the exclusive lock on path, creating the file (mode 0600)
// if it is missing, and waits up to wait for another holder to let go.
// The lock file is never removed: removing it would let two processes
// lock two different files of the same name.
func Acquire(path string, wait time.Duration) (*Lock, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filelock: %w", err)
	}
	deadline := time.Now().Add(wait)
	pause := time.Millisecond
	for {
		held, err := tryLock(f)
		switch {
		case err != nil:
			f.Close()
			return nil, fmt.Errorf("filelock: locking %s: %w", path, err)
		case !held:
			return &Lock{f: f}, nil
		case time.Now().After(deadline):
			f.Close()
			return nil, fmt.Errorf("filelock: %s is still locked by another process after %v", path, wait)
		}
		// Polling, not a blocking lock call, keeps the wait bounded on
		// every system; holders keep the lock for milliseconds.
		time.Sleep(pause)
		pause = min(2*pause, 50*time.Millisecond)
	}
}

// Release drops the lock.
func (l *Lock) Release() error {
	unlock(l.f)
	return l.f.Close()
}
