package bridge

import (
	"runtime"
	"testing"
	"time"
)

// eventually polls cond every 10 ms until it holds or d passes.
func eventually(d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
	return true
}

// leakCheck counts the goroutines running now and returns the check: it
// fails the test, listing every goroutine, unless within 5 s (closing
// connections take a moment) no more run than were counted. Call the
// check where the test expects everything to have ended, or hand it to
// t.Cleanup registered before any other cleanup, so that it runs last.
func leakCheck(t *testing.T) (check func()) {
	base := runtime.NumGoroutine()
	return func() {
		t.Helper()
		if eventually(5*time.Second, func() bool { return runtime.NumGoroutine() <= base }) {
			return
		}
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines before, %d after:\n%s", base, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
	}
}
