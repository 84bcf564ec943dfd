// Package atomicfile writes files so that a reader never sees half of one
// and a crash leaves the old file whole: the data goes to a temporary file
// in the same directory, which is synced and renamed over the target.
package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
)

// Write replaces path with data, with the file mode set before any byte is
// written (a key file is never readable by others, not even briefly). The
// directory must exist. Errors are the os package's, for the caller to wrap.
func Write(path string, data []byte, mode os.FileMode) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	// CreateTemp makes the file 0600; Chmod sets the mode asked for, and
	// may be unsupported on some systems, where CreateTemp's mode stands.
	if err := f.Chmod(mode); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
