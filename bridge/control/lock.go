package control

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
)

// pidLock is the held lock file of a running server.
type pidLock struct{ f *os.File }

// acquire takes the endpoint's lock and writes our pid into it, or returns
// a *RunningError naming the holder.
func acquire(ep Endpoint) (*pidLock, error) {
	path := ep.LockFile()
	// A server that is shutting down removes the file while still holding
	// the lock; a file we opened just before that is not the lock anymore,
	// so check that the path still names what we locked.
	for range 3 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("control: lock file: %w", err)
		}
		held, err := tryLock(f)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("control: locking %s: %w", path, err)
		}
		if held {
			f.Close()
			return nil, &RunningError{PID: readPID(path), Config: ep.Config}
		}
		if !sameFile(f, path) {
			unlock(f)
			f.Close()
			continue
		}
		err = f.Truncate(0)
		if err == nil {
			_, err = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
		}
		if err != nil {
			unlock(f)
			f.Close()
			return nil, fmt.Errorf("control: writing %s: %w", path, err)
		}
		return &pidLock{f: f}, nil
	}
	return nil, fmt.Errorf("control: lock file %s keeps changing; is another bridge starting?", path)
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// readPID reads the pid a lock file holds; 0 when unreadable.
func readPID(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	n, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return 0
	}
	return n
}

// release removes the lock file and then drops the lock, so nobody can
// lock a file that is about to vanish.
// Windows cannot remove an open file; there the pid is cleared instead.
func (l *pidLock) release() error {
	if os.Remove(l.f.Name()) != nil {
		l.f.Truncate(0)
	}
	unlock(l.f)
	return l.f.Close()
}
