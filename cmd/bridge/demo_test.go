package main

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestDemo runs `bridge demo` as a process, runs the curl commands it
// prints (list the inbox, send a message), checks both worked, and stops it
// with SIGINT.
func TestDemo(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed (.ci/run installs it)")
	}
	bin := filepath.Join(t.TempDir(), "bridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--imap", "127.0.0.1:0", "--smtp", "127.0.0.1:0", "--pop3", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir())
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stderr syncBuffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var list, send string
	var prev string
	for list == "" || send == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended early: %s", stderr.String())
			}
			if strings.HasPrefix(prev, "List the inbox") {
				list = strings.TrimSpace(l)
			}
			if strings.HasPrefix(prev, "Send a message") {
				send = strings.TrimSpace(l)
			}
			prev = l
		case <-ctx.Done():
			t.Fatal("demo printed no curl commands")
		}
	}
	out, err := exec.CommandContext(ctx, "sh", "-c", list).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "Welcome to the bridge demo") || strings.Count(string(out), "FETCH") != 3 {
		t.Fatalf("list command %q: %v\n%s", list, err, out)
	}
	if out, err := exec.CommandContext(ctx, "sh", "-c", send).CombinedOutput(); err != nil {
		t.Fatalf("send command %q: %v\n%s", send, err, out)
	}
	delivered := false
	for !delivered {
		select {
		case l := <-lines:
			delivered = strings.HasPrefix(l, "delivered upstream: from demo@bridge.test to [friend@bridge.test]")
		case <-ctx.Done():
			t.Fatal("the sent message did not arrive upstream")
		}
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("demo after SIGINT: %v; stderr %s", err, stderr.String())
	}
}
