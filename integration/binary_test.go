package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// buildBridge compiles cmd/bridge into a temp dir with the go command
// that runs the tests.
func buildBridge(t *testing.T) string {
	t.Helper()
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go command is not on PATH; it is needed to build cmd/bridge")
	}
	out := filepath.Join(t.TempDir(), "bridge")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goBin, "build", "-o", out, "github.com/mailbridge/bridge/cmd/bridge")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/bridge: %v\n%s", err, b)
	}
	return out
}

// listenLine matches the server's "listening" log record.
var listenLine = regexp.MustCompile(`msg=listening key=(listen\.[a-z0-9]+) addr=(127\.0\.0\.1:[0-9]+)`)

// runBinary starts `bridge --config FILE serve` and waits until every
// listener has logged its address; it returns them, the process and its
// log. The process gets SIGTERM at cleanup, unless it has been stopped
// already, and must exit 0 within the grace period.
func runBinary(t *testing.T, bin, config string) (endpoints, *exec.Cmd, *lockedBuffer) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin, "--config", config, "serve", "--grace", "2s")
	cmd.Env = baseEnv(filepath.Dir(config))
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
	cmd.WaitDelay = 10 * time.Second
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	logs := &lockedBuffer{}
	addrs := map[string]string{}
	var mu sync.Mutex
	ready := make(chan struct{})
	scanned := make(chan struct{})
	go func() {
		defer close(scanned)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		once := sync.Once{}
		for sc.Scan() {
			line := sc.Text()
			fmt.Fprintln(logs, line)
			if m := listenLine.FindStringSubmatch(line); m != nil {
				mu.Lock()
				addrs[m[1]] = m[2]
				if len(addrs) == 6 {
					once.Do(func() { close(ready) })
				}
				mu.Unlock()
			}
		}
		_, _ = io.Copy(io.Discard, stderr)
	}()
	t.Cleanup(func() {
		cancel() // SIGTERM through cmd.Cancel
		err := cmd.Wait()
		<-scanned
		// Wait reports the cancellation even when the process then
		// exited 0, so the exit status is what counts.
		if ps := cmd.ProcessState; ps == nil || !ps.Success() {
			t.Errorf("bridge serve did not exit 0 on SIGTERM: %v", err)
		}
		if t.Failed() {
			t.Logf("bridge serve stderr (last 6 KB):\n%s", tail(logs.Bytes(), 6000))
		}
	})
	select {
	case <-ready:
	case <-time.After(20 * time.Second):
		t.Fatalf("bridge serve did not report its six listeners within 20 s; stderr:\n%s", tail(logs.Bytes(), 4000))
	}
	mu.Lock()
	defer mu.Unlock()
	return fromAddrs(addrs), cmd, logs
}

// TestBinaryServe builds the real bridge binary and runs `bridge --config
// FILE serve` against Dovecot, then reads and sends mail through it with
// curl: a fetch compared with the seed, and a send found in the sink.
func TestBinaryServe(t *testing.T) {
	t.Parallel()
	curl := needTool(t, "curl", "curl")
	up := startUpstream(t, tokensOptions())
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)
	ep, _, _ := runBinary(t, bin, files.config)
	e := &env{upstream: up, files: files, ep: ep, user: testUser, password: files.password}
	home := clientDir(t)

	got := mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "imap://"+ep.imap+"/INBOX;MAILINDEX=2")...)
	if !bytes.Equal(got.stdout, e.seed[1].raw) {
		sameBody(t, "curl fetch through the binary", bodyOf(got.stdout), e.seed[1].body())
		t.Errorf("fetch through the binary: %d bytes, want the %d seeded", len(got.stdout), len(e.seed[1].raw))
	}
	big := mustRun(t, home, nil, nil, curl, append(curlBase(e), "imaps://"+ep.imaps+"/INBOX;MAILINDEX=3")...)
	if !bytes.Equal(big.stdout, e.seed[2].raw) {
		t.Errorf("large fetch through the binary: %d bytes, want %d", len(big.stdout), len(e.seed[2].raw))
	}

	const rcpt = "binary@example.net"
	msg := newMessage(e.user, rcpt, "Through the bridge binary", "Sent with curl through `bridge serve`.\n")
	file := filepath.Join(home, "msg.eml")
	writeFile(t, file, msg.raw, 0o600)
	mustRun(t, home, nil, nil, curl, append(curlBase(e), "--ssl-reqd", "--mail-from", e.user, "--mail-rcpt", rcpt,
		"--upload-file", file, "smtp://"+ep.smtp)...)
	up.sink.checkDelivered(t, msg, rcpt)
}

// TestBinarySIGTERMSaysByeToIdle: an IMAP client in IDLE through the
// bridge binary to Dovecot gets "* BYE" at SIGTERM, and `bridge serve`
// exits 0 in under 3 s although its grace period is 2 s and the session
// was open.
func TestBinarySIGTERMSaysByeToIdle(t *testing.T) {
	t.Parallel()
	up := startUpstream(t, tokensOptions())
	bin := buildBridge(t)
	files := writeBridgeFiles(t, up)
	ep, cmd, logs := runBinary(t, bin, files.config)
	c, err := net.DialTimeout("tcp", ep.imap, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(60 * time.Second))
	br := bufio.NewReader(c)
	line := func(prefix string) string {
		t.Helper()
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v", prefix, err)
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimRight(l, "\r\n")
			}
		}
	}
	line("* OK")
	fmt.Fprintf(c, "a1 LOGIN %s %s\r\na2 SELECT INBOX\r\n", testUser, files.password)
	if l := line("a1 "); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("login: %q", l)
	}
	line("a2 OK")
	fmt.Fprintf(c, "a3 IDLE\r\n")
	line("+ ")

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if l := line("* "); l != "* BYE Server shutting down" {
		t.Errorf("the client in IDLE got %q, want the BYE", l)
	}
	c.Close() // as a client does on BYE
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		t.Fatalf("bridge serve still running 3 s after SIGTERM:\n%s", tail(logs.Bytes(), 3000))
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("bridge serve took %v to exit", d)
	}
	if !cmd.ProcessState.Success() {
		t.Errorf("bridge serve exited with %v", cmd.ProcessState)
	}
	if !strings.Contains(string(logs.Bytes()), "msg=stopping sessions_open=1 grace=2s") {
		t.Errorf("the stop is not logged:\n%s", tail(logs.Bytes(), 3000))
	}
}
