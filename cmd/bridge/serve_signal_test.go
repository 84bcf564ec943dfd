package main

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// serveChild builds the bridge, runs `bridge --config FILE serve` as a
// child process against the doctor world's imitation of Microsoft, and
// returns it with its IMAP and SMTP addresses once it listens.
func serveChild(t *testing.T) (cmd *exec.Cmd, imapAddr, smtpAddr string, stderr *syncBuffer) {
	t.Helper()
	w := newDoctorWorld(t, "")
	body, err := os.ReadFile(w.cfg)
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(body), "\n[store]")
	if !ok {
		t.Fatal("doctor world config has no [store]")
	}
	text := "[listen]\nimap = \"127.0.0.1:0\"\npop3 = \"\"\nsmtp = \"127.0.0.1:0\"\n\n[store]" + rest
	text = strings.Replace(text, "[tls]\n", fmt.Sprintf("[tls]\ncert_file = %q\nkey_file = %q\n",
		filepath.Join(w.dir, "cert.pem"), filepath.Join(w.dir, "key.pem")), 1)
	if err := os.WriteFile(w.cfg, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(t.TempDir(), "bridge")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	cmd = exec.Command(bin, "--config", w.cfg, "serve")
	cmd.Env = append(os.Environ(), "HOME="+t.TempDir(), "XDG_RUNTIME_DIR="+t.TempDir())
	pipe, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	stderr = &syncBuffer{}
	addrs := make(chan [2]string, 8)
	listening := regexp.MustCompile(`msg=listening key=listen\.(imap|smtp) addr=(127\.0\.0\.1:\d+)`)
	go func() {
		sc := bufio.NewScanner(pipe)
		for sc.Scan() {
			fmt.Fprintln(stderr, sc.Text())
			if m := listening.FindStringSubmatch(sc.Text()); m != nil {
				addrs <- [2]string{m[1], m[2]}
			}
		}
	}()
	for imapAddr == "" || smtpAddr == "" {
		select {
		case a := <-addrs:
			if a[0] == "imap" {
				imapAddr = a[1]
			} else {
				smtpAddr = a[1]
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("serve did not listen within 20 s:\n%s", stderr.String())
		}
	}
	return cmd, imapAddr, smtpAddr, stderr
}

// waitExit waits up to d for cmd to exit and returns its exit code.
func waitExit(t *testing.T, cmd *exec.Cmd, d time.Duration, stderr *syncBuffer) int {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return cmd.ProcessState.ExitCode()
	case <-time.After(d):
		t.Fatalf("serve still running %v later:\n%s", d, stderr.String())
		return -1
	}
}

// TestServeSIGTERMSaysByeToIdle: at SIGTERM an IMAP client in IDLE gets
// "* BYE" at once, the stop is logged, and serve exits 0 in under 3 s,
// far inside its 10 s grace period.
func TestServeSIGTERMSaysByeToIdle(t *testing.T) {
	cmd, imapAddr, _, stderr := serveChild(t)
	c, err := net.DialTimeout("tcp", imapAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	line := func(prefix string) string {
		t.Helper()
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v\n%s", prefix, err, stderr.String())
			}
			if strings.HasPrefix(l, prefix) {
				return strings.TrimSpace(l)
			}
		}
	}
	line("* OK")
	fmt.Fprintf(c, "a1 LOGIN a@b.test %s\r\na2 SELECT INBOX\r\n", doctorPassword)
	if l := line("a1 "); !strings.HasPrefix(l, "a1 OK") {
		t.Fatalf("login: %q", l)
	}
	line("a2 ")
	fmt.Fprintf(c, "a3 IDLE\r\n")
	line("+ ")

	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	c.SetReadDeadline(time.Now().Add(3 * time.Second))
	if l := line("* "); l != "* BYE Server shutting down" {
		t.Errorf("the IDLE client got %q, want the BYE", l)
	}
	c.Close() // as a client does on BYE
	if code := waitExit(t, cmd, 3*time.Second, stderr); code != 0 {
		t.Errorf("serve exited %d after SIGTERM:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("serve took %v to exit", d)
	}
	if !strings.Contains(stderr.String(), "msg=stopping sessions_open=1 grace=10s") {
		t.Errorf("the stop is not logged:\n%s", stderr.String())
	}
}

// TestServeSecondSignalExitsAtOnce: with a message in DATA the server
// waits out its grace period; a second SIGINT ends it at once.
func TestServeSecondSignalExitsAtOnce(t *testing.T) {
	cmd, _, smtpAddr, stderr := serveChild(t)
	c, err := net.DialTimeout("tcp", smtpAddr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	expect := func(prefix string) {
		t.Helper()
		for {
			l, err := br.ReadString('\n')
			if err != nil {
				t.Fatalf("waiting for %q: %v\n%s", prefix, err, stderr.String())
			}
			if len(l) < 4 || l[3] != '-' {
				if !strings.HasPrefix(l, prefix) {
					t.Fatalf("got %q, want %q", l, prefix)
				}
				return
			}
		}
	}
	expect("220 ")
	fmt.Fprintf(c, "EHLO x\r\n")
	expect("250 ")
	fmt.Fprintf(c, "AUTH LOGIN\r\n")
	expect("334 ")
	fmt.Fprintf(c, "%s\r\n", base64.StdEncoding.EncodeToString([]byte("a@b.test")))
	expect("334 ")
	fmt.Fprintf(c, "%s\r\n", base64.StdEncoding.EncodeToString([]byte(doctorPassword)))
	expect("235 ")
	fmt.Fprintf(c, "MAIL FROM:<a@b.test>\r\nRCPT TO:<a@b.test>\r\nDATA\r\n")
	expect("250 ")
	expect("250 ")
	expect("354 ")
	fmt.Fprintf(c, "Subject: unfinished\r\n\r\n")

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if cmd.ProcessState != nil {
		t.Fatal("serve exited with a message in DATA before its grace period ended")
	}
	start := time.Now()
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	if code := waitExit(t, cmd, 3*time.Second, stderr); code != 0 {
		t.Errorf("serve exited %d after the second signal:\n%s", code, stderr.String())
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("serve took %v after the second signal", d)
	}
	if !strings.Contains(stderr.String(), "second signal") {
		t.Errorf("the second signal is not logged:\n%s", stderr.String())
	}
}
