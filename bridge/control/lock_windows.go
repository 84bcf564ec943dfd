package control

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/windows"
)

// lockRange is far past the pid the file holds, so other processes can
// still read the pid while the lock is held (Windows locks are mandatory
// for the locked bytes).
var lockRange = windows.Overlapped{OffsetHigh: 0x7fff0000}

// tryLock takes an exclusive lock on f without waiting; held reports that
// another process has it. Windows drops the lock when the process dies.
func tryLock(f *os.File) (held bool, err error) {
	ol := lockRange
	err = windows.LockFileEx(windows.Handle(f.Fd()), windows.LOCKFILE_EXCLUSIVE_LOCK|windows.LOCKFILE_FAIL_IMMEDIATELY, 0, 1, 0, &ol)
	if errors.Is(err, windows.ERROR_LOCK_VIOLATION) || errors.Is(err, windows.ERROR_IO_PENDING) {
		return true, nil
	}
	return false, err
}

func unlock(f *os.File) error {
	ol := lockRange
	return windows.UnlockFileEx(windows.Handle(f.Fd()), 0, 1, 0, &ol)
}

// checkOwner trusts the per-user profile directory's ACL on Windows.
func checkOwner(fs.FileInfo) error { return nil }
