package tokens

import (
	"testing"
	"time"
)

// SetSaveRetryWait sets the pause before a Source first retries a failed
// save, for the sources the test makes; the old value comes back at the
// test's end.
func SetSaveRetryWait(t testing.TB, d time.Duration) {
	old := saveRetryWait
	saveRetryWait = d
	t.Cleanup(func() { saveRetryWait = old })
}

// SetBeforeWrite makes h run before every write of f (and every write
// check); its error fails the write, as a full disk would.
func SetBeforeWrite(f *FileStore, h func() error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.beforeWrite = h
}
