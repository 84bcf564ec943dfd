package integration

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// proxyServer is a real proxy from the distribution running as a child
// process on a loopback port until the test ends.
type proxyServer struct {
	addr string
	// log returns what the proxy logged so far: tinyproxy's log file,
	// microsocks' standard error.
	log func() string
}

// tinyproxyOptions configure startTinyproxy.
type tinyproxyOptions struct {
	// connectTo are the host:port addresses whose ports CONNECT may reach
	// (tinyproxy's ConnectPort); others are answered with 403. At least
	// one is needed: tinyproxy without ConnectPort allows every port.
	connectTo []string
	// user and pass turn on Basic authentication (BasicAuth).
	user, pass string
}

// startTinyproxy runs Debian's tinyproxy in the foreground (-d) from a
// config written into the test's temp dir: loopback only, CONNECT to the
// given ports, its log (every connection and request) in the temp dir.
func startTinyproxy(t *testing.T, o tinyproxyOptions) *proxyServer {
	t.Helper()
	bin := needTool(t, "tinyproxy", "tinyproxy")
	dir := t.TempDir()
	logFile := filepath.Join(dir, "tinyproxy.log")
	return startProxyProcess(t, "tinyproxy", func(port int) *exec.Cmd {
		var b strings.Builder
		fmt.Fprintf(&b, "Port %d\nListen 127.0.0.1\nAllow 127.0.0.1\nLogFile %q\nLogLevel Connect\nMaxClients 50\nTimeout 120\n", port, logFile)
		for _, a := range o.connectTo {
			_, p, _ := net.SplitHostPort(a)
			fmt.Fprintf(&b, "ConnectPort %s\n", p)
		}
		if o.user != "" {
			fmt.Fprintf(&b, "BasicAuth %s %s\n", o.user, o.pass)
		}
		conf := filepath.Join(dir, "tinyproxy.conf")
		writeFile(t, conf, []byte(b.String()), 0o600)
		return exec.Command(bin, "-d", "-c", conf)
	}, func(*lockedBuffer) string {
		b, _ := os.ReadFile(logFile)
		return string(b)
	})
}

// startMicrosocks runs Debian's microsocks, a SOCKS5 proxy, on loopback
// with RFC 1929 user name and password required.
func startMicrosocks(t *testing.T, user, pass string) *proxyServer {
	t.Helper()
	bin := needTool(t, "microsocks", "microsocks")
	return startProxyProcess(t, "microsocks", func(port int) *exec.Cmd {
		return exec.Command(bin, "-i", "127.0.0.1", "-p", strconv.Itoa(port), "-u", user, "-P", pass)
	}, func(out *lockedBuffer) string { return string(out.Bytes()) })
}

// startProxyProcess starts the command cmd makes for a free port and waits
// until it accepts there. A port taken meanwhile by another process is
// retried with a new one. The process group is killed at the end of the
// test.
func startProxyProcess(t *testing.T, name string, cmd func(port int) *exec.Cmd, log func(*lockedBuffer) string) *proxyServer {
	t.Helper()
	var lastErr error
	for range 3 {
		port := freePorts(t, 1)[0]
		c := cmd(port)
		c.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
		c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		out := &lockedBuffer{}
		c.Stdout, c.Stderr = out, out
		if err := c.Start(); err != nil {
			t.Fatalf("integration: starting %s: %v", name, err)
		}
		exited := make(chan struct{})
		go func() { c.Wait(); close(exited) }()
		stop := func() {
			syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		alive := func() bool {
			select {
			case <-exited:
				return false
			default:
				return true
			}
		}
		addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
		if lastErr = waitPort(addr, 10*time.Second, alive); lastErr == nil {
			p := &proxyServer{addr: addr, log: func() string { return log(out) }}
			t.Cleanup(func() {
				stop()
				if t.Failed() {
					t.Logf("%s log (last 4 KB):\n%s", name, tail([]byte(p.log()), 4000))
				}
			})
			return p
		}
		stop()
		t.Logf("%s start failed: %v\n%s", name, lastErr, tail(out.Bytes(), 2000))
	}
	t.Fatalf("integration: %s did not start: %v", name, lastErr)
	return nil
}
