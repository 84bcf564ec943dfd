package filelock

import (
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestAcquireExcludesAndReleases(t *testing.T) {
	switch runtime.GOOS {
	case "linux", "darwin", "freebsd", "openbsd", "netbsd", "dragonfly", "windows":
	default:
		t.Skip("no kernel file lock on " + runtime.GOOS)
	}
	path := filepath.Join(t.TempDir(), "f.lock")
	a, err := Acquire(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := Acquire(path, 100*time.Millisecond); err == nil || !strings.Contains(err.Error(), "still locked") {
		t.Fatalf("second Acquire while held: %v", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 2*time.Second {
		t.Errorf("the refused Acquire took %v, want about its wait", d)
	}
	// A waiter gets the lock as soon as the holder lets go.
	got := make(chan error, 1)
	go func() {
		b, err := Acquire(path, 5*time.Second)
		if err == nil {
			err = b.Release()
		}
		got <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := a.Release(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(3 * time.Second):
		t.Fatal("the waiter did not get the released lock")
	}
}
