package integration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tlsutil"
)

// dovecot is a running, unprivileged Dovecot instance on loopback ports,
// started from a config the harness wrote into the test's temp dir.
type dovecot struct {
	dir     string
	version string
	imaps   string // host:port, implicit TLS
	pop3s   string // host:port, implicit TLS
	subm    string // host:port, STARTTLS
	mail    *maildir
	user    string
	cmd     *exec.Cmd
	exited  chan struct{}
	waitErr error
}

// dovecotOptions configure startDovecot.
type dovecotOptions struct {
	CA            *tlsutil.TestCA
	IntrospectURL string
	RelayPort     int
	User          string
	Seed          []message
}

// dovecotVersion returns `dovecot --version` (such as "2.3.19.1").
func dovecotVersion(t testing.TB, bin string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		t.Fatalf("integration: dovecot --version: %v", err)
	}
	v, _, _ := strings.Cut(strings.TrimSpace(string(out)), " ")
	return v
}

// startDovecot writes a config and a seeded Maildir into a temp dir and runs
// Dovecot in the foreground as a child process until the test ends.
func startDovecot(t testing.TB, o dovecotOptions) *dovecot {
	t.Helper()
	bin := needDovecot(t)
	version := dovecotVersion(t, bin)
	if !strings.HasPrefix(version, "2.3.") {
		t.Skipf("dovecot %s is installed; the harness writes Dovecot 2.3 configuration (Debian 12's dovecot-core)", version)
	}
	dir := t.TempDir()
	st := dovecotSettings{
		Dir:           dir,
		Instance:      "bridgetest" + strconv.Itoa(os.Getpid()) + filepath.Base(dir),
		IntrospectURL: o.IntrospectURL,
		RelayPort:     o.RelayPort,
	}
	root := os.Geteuid() == 0
	if root {
		// Dovecot refuses to give mail to uid 0 and drops privileges for
		// its helpers, so as root it runs them as Debian's own dovecot and
		// dovenull users, which must be able to reach the temp dir.
		st.InternalUser, st.InternalGroup, st.LoginUser = "dovecot", "dovecot", "dovenull"
		u, err := user.Lookup("dovecot")
		if err != nil {
			t.Skipf("dovecot not installed: the dovecot system user is missing (%v)", err)
		}
		if _, err := user.Lookup("dovenull"); err != nil {
			t.Skipf("dovecot not installed: the dovenull system user is missing (%v)", err)
		}
		st.MailUID, _ = strconv.Atoi(u.Uid)
		st.MailGID, _ = strconv.Atoi(u.Gid)
		openPath(t, dir)
	} else {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		g, err := user.LookupGroupId(u.Gid)
		if err != nil {
			t.Fatal(err)
		}
		st.InternalUser, st.InternalGroup, st.LoginUser = u.Username, g.Name, u.Username
		st.MailUID, _ = strconv.Atoi(u.Uid)
		st.MailGID, _ = strconv.Atoi(u.Gid)
	}

	_, certPEM, keyPEM, err := o.CA.Issue("localhost", "127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "tls", "cert.pem"), certPEM, 0o644)
	writeFile(t, filepath.Join(dir, "tls", "key.pem"), keyPEM, 0o600)
	oc, err := st.render(oauth2Conf)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "oauth2.conf.ext"), []byte(oc), 0o644)

	home := filepath.Join(dir, "home", strings.ToLower(o.User))
	uid, gid := -1, -1
	if root {
		uid, gid = st.MailUID, st.MailGID
	}
	md := newMaildir(t, filepath.Join(home, "Maildir"), uid, gid)
	for _, m := range o.Seed {
		if err := md.deliver(m); err != nil {
			t.Fatal(err)
		}
	}
	if root {
		if err := chownTree(filepath.Join(dir, "home"), uid, gid); err != nil {
			t.Fatal(err)
		}
	}

	// The ports are picked before Dovecot binds them; another process may
	// take one in between, so a failed start is retried with new ports.
	var lastErr error
	for attempt := range 3 {
		ports := freePorts(t, 3)
		st.IMAPSPort, st.POP3SPort, st.SubmPort = ports[0], ports[1], ports[2]
		conf, err := st.render(dovecot23Conf)
		if err != nil {
			t.Fatal(err)
		}
		confPath := filepath.Join(dir, "dovecot.conf")
		writeFile(t, confPath, []byte(conf), 0o644)
		d := &dovecot{
			dir: dir, version: version, mail: md, user: o.User,
			imaps: net.JoinHostPort("127.0.0.1", strconv.Itoa(st.IMAPSPort)),
			pop3s: net.JoinHostPort("127.0.0.1", strconv.Itoa(st.POP3SPort)),
			subm:  net.JoinHostPort("127.0.0.1", strconv.Itoa(st.SubmPort)),
		}
		if lastErr = d.start(bin, confPath); lastErr == nil {
			t.Cleanup(func() {
				d.stop()
				if t.Failed() || os.Getenv("INTEGRATION_DOVECOT_LOG") != "" {
					t.Logf("dovecot log (last 6 KB):\n%s", tail(d.log(), 6000))
				}
			})
			return d
		}
		d.stop()
		t.Logf("dovecot start %d failed: %v\n%s", attempt+1, lastErr, tail(d.log(), 2000))
	}
	t.Fatalf("integration: dovecot did not start: %v", lastErr)
	return nil
}

// start runs the master in the foreground and waits for the listeners.
func (d *dovecot) start(bin, conf string) error {
	d.cmd = exec.Command(bin, "-F", "-c", conf)
	d.cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var out bytes.Buffer
	d.cmd.Stdout, d.cmd.Stderr = &out, &out
	if err := d.cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", bin, err)
	}
	d.exited = make(chan struct{})
	go func() {
		d.waitErr = d.cmd.Wait()
		close(d.exited)
	}()
	alive := func() bool {
		select {
		case <-d.exited:
			return false
		default:
			return true
		}
	}
	for _, a := range []string{d.imaps, d.pop3s, d.subm} {
		if err := waitPort(a, 15*time.Second, alive); err != nil {
			if !alive() {
				<-d.exited
				return fmt.Errorf("%w: %v: %s", err, d.waitErr, bytes.TrimSpace(out.Bytes()))
			}
			return err
		}
	}
	return nil
}

// stop ends the master with SIGTERM (it stops its children), and kills the
// process group it leads if it has not ended within 5 seconds.
func (d *dovecot) stop() {
	if d.cmd == nil || d.cmd.Process == nil || d.exited == nil {
		return
	}
	_ = d.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-d.exited:
	case <-time.After(5 * time.Second):
		_ = syscall.Kill(-d.cmd.Process.Pid, syscall.SIGKILL)
		<-d.exited
	}
}

// log returns Dovecot's log file. It holds user names and reasons, never
// tokens (auth_verbose_passwords is off).
func (d *dovecot) log() []byte {
	b, err := os.ReadFile(filepath.Join(d.dir, "dovecot.log"))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return []byte(err.Error())
	}
	return b
}

// openPath makes dir and the temp folders above it traversable (not
// listable) by other users, so Dovecot's unprivileged processes reach
// their files when the tests run as root.
func openPath(t testing.TB, dir string) {
	t.Helper()
	top := filepath.Clean(os.TempDir())
	for p := filepath.Clean(dir); strings.HasPrefix(p, top+string(filepath.Separator)); p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, fi.Mode().Perm()|0o711); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
}
