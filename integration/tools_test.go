package integration

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// dovecotBinaries are the programs the Dovecot harness needs, by the
// Debian package that ships them.
var dovecotBinaries = []struct{ path, pkg string }{
	{"dovecot", "dovecot-core"},
	{"/usr/lib/dovecot/imap", "dovecot-imapd"},
	{"/usr/lib/dovecot/pop3", "dovecot-pop3d"},
	{"/usr/lib/dovecot/submission", "dovecot-submissiond"},
}

// needDovecot skips the test when any part of Dovecot is missing, naming it.
func needDovecot(t testing.TB) string {
	t.Helper()
	var dovecot string
	for _, b := range dovecotBinaries {
		p, err := exec.LookPath(b.path)
		if err != nil && !filepath.IsAbs(b.path) {
			// /usr/sbin is often not on a developer's PATH.
			p, err = exec.LookPath(filepath.Join("/usr/sbin", b.path))
		}
		if err != nil {
			t.Skipf("dovecot not installed: %s is missing (Debian package %s)", b.path, b.pkg)
		}
		if dovecot == "" {
			dovecot = p
		}
	}
	return dovecot
}

// needTool skips the test when the named program is not on PATH.
func needTool(t testing.TB, name, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (Debian package %s)", name, pkg)
	}
	return p
}

// toolTimeout bounds every external client run.
const toolTimeout = 60 * time.Second

// result is one finished external command.
type result struct {
	stdout, stderr []byte
	err            error
}

// runTool runs a client program with a timeout, in dir, with env added to a
// minimal environment, feeding stdin. The process group is killed when the
// timeout passes, so a hung client cannot outlive the test.
func runTool(t testing.TB, dir string, env []string, stdin []byte, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), toolTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(baseEnv(dir), env...)
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.WaitDelay = 5 * time.Second
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s timed out after %s: %w", filepath.Base(name), toolTimeout, err)
	}
	return result{stdout: out.Bytes(), stderr: errb.Bytes(), err: err}
}

// mustRun is runTool that fails the test on a non-zero exit, showing the
// output (which never holds a secret: clients get local passwords from
// files or arguments, and those are not printed back).
func mustRun(t testing.TB, dir string, env []string, stdin []byte, name string, args ...string) result {
	t.Helper()
	r := runTool(t, dir, env, stdin, name, args...)
	if r.err != nil {
		t.Fatalf("%s %s: %v\nstdout:\n%s\nstderr:\n%s", filepath.Base(name), strings.Join(redactArgs(args), " "), r.err, tail(r.stdout, 4000), tail(r.stderr, 4000))
	}
	return r
}

// redactArgs hides anything after a flag that carries a secret.
func redactArgs(args []string) []string {
	out := make([]string, len(args))
	hide := false
	for i, a := range args {
		switch {
		case hide:
			out[i] = "<redacted>"
			hide = false
		case a == "--user" || a == "-u" || a == "--auth-password" || a == "-ap" || a == "--oauth2-bearer":
			out[i] = a
			hide = true
		default:
			out[i] = a
		}
	}
	return out
}

// baseEnv is the environment every client gets: a private HOME so no
// user's dotfiles take part, and a fixed locale.
func baseEnv(home string) []string {
	return []string{
		"HOME=" + home,
		"PATH=" + os.Getenv("PATH"),
		"LANG=C.UTF-8",
		"LC_ALL=C.UTF-8",
		"TZ=UTC",
		"TMPDIR=" + home,
	}
}

// tail returns the last n bytes of b.
func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

// freePorts returns n distinct TCP ports free on 127.0.0.1 at the time of
// the call. Dovecot binds its own ports from a config file, so the port must
// be chosen before it starts; a clash with another process is retried by
// the caller.
func freePorts(t testing.TB, n int) []int {
	t.Helper()
	lns := make([]net.Listener, 0, n)
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatalf("integration: finding a free port: %v", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}

// waitPort waits until something accepts on addr, or d passes.
func waitPort(addr string, d time.Duration, alive func() bool) error {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if alive != nil && !alive() {
			return fmt.Errorf("integration: the server exited before %s accepted", addr)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("integration: nothing accepted on %s within %s", addr, d)
}

// writeFile writes a test file or fails the test.
func writeFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, data, mode); err != nil {
		t.Fatal(err)
	}
}

func itoa(n int) string { return strconv.Itoa(n) }

// containsLine reports whether some line of out starts with prefix.
func containsLine(out []byte, prefix string) bool {
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(strings.TrimSpace(l), prefix) {
			return true
		}
	}
	return false
}
