package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/tlsutil"
	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// loadUser is the mailbox every session logs in to.
const loadUser = "load@example.com"

// peers are the bridge's counterparts, all in this process on 127.0.0.1:
// the identity platform and Exchange's IMAP service imitated by tokenstest
// and bridgetest (implicit TLS, XOAUTH2 checked against issued tokens).
type peers struct {
	dir      string
	tokens   *tokenstest.Server
	imap     *bridgetest.IMAP
	password string
}

// startPeers starts the identity platform and the IMAP upstream. With
// fullRecords the upstream sends whole 16 KB TLS records from its first
// byte, as OpenSSL-based servers do; otherwise crypto/tls's records, which
// grow step by step over the first 128 KB it sends on a connection.
func startPeers(fullRecords bool) (*peers, error) {
	dir, err := os.MkdirTemp("", "bridge-load-")
	if err != nil {
		return nil, fmt.Errorf("bridge-load: %w", err)
	}
	p := &peers{dir: dir}
	ca, err := tlsutil.NewTestCA()
	if err != nil {
		p.close()
		return nil, err
	}
	cert, _, _, err := ca.Issue("127.0.0.1")
	if err != nil {
		p.close()
		return nil, err
	}
	if err := os.WriteFile(filepath.Join(dir, "ca.pem"), ca.CertPEM, 0o600); err != nil {
		p.close()
		return nil, fmt.Errorf("bridge-load: %w", err)
	}
	p.tokens = tokenstest.New(tokenstest.Options{})
	p.imap, err = bridgetest.NewIMAP(bridgetest.IMAPOptions{
		Validate: p.tokens.Validate,
		TLS: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12,
			DynamicRecordSizingDisabled: fullRecords},
		Users: []string{loadUser},
	})
	if err != nil {
		p.close()
		return nil, err
	}
	store, err := tokens.NewFileStore(filepath.Join(dir, "tokens.json"))
	if err != nil {
		p.close()
		return nil, err
	}
	_, rt, _ := p.tokens.Issue(loadUser)
	if p.password, err = tokens.NewPassword(); err != nil {
		p.close()
		return nil, err
	}
	if err := store.Put(loadUser, tokens.Entry{RefreshToken: rt, Password: p.password, Updated: time.Now()}); err != nil {
		p.close()
		return nil, err
	}
	return p, nil
}

func (p *peers) close() {
	if p.imap != nil {
		p.imap.Close()
	}
	if p.tokens != nil {
		p.tokens.Close()
	}
	os.RemoveAll(p.dir)
}

// child is the bridge process under measurement.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *bufio.Reader
	addr  string
	done  chan error
}

// startChild runs exe (this program) in the bridge role against p.
func startChild(exe string, p *peers, nofile uint64, stderr io.Writer) (*child, error) {
	cmd := exec.Command(exe,
		"-store", filepath.Join(p.dir, "tokens.json"),
		"-ca", filepath.Join(p.dir, "ca.pem"),
		"-upstream", p.imap.Addr(),
		"-token-url", p.tokens.TokenURL("organizations"),
		"-user", loadUser,
		"-nofile", fmt.Sprint(nofile))
	cmd.Env = append(os.Environ(), roleEnv+"=bridge")
	cmd.Stderr = stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("bridge-load: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("bridge-load: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("bridge-load: starting the bridge process: %w", err)
	}
	c := &child{cmd: cmd, stdin: in, out: bufio.NewReader(out), done: make(chan error, 1)}
	line, err := c.readLine(10 * time.Second)
	if err != nil {
		c.stop()
		return nil, fmt.Errorf("bridge-load: the bridge process did not start: %w", err)
	}
	addr, ok := strings.CutPrefix(line, "listening ")
	if !ok {
		c.stop()
		return nil, fmt.Errorf("bridge-load: the bridge process said %q", line)
	}
	c.addr = addr
	return c, nil
}

// readLine reads one line of the child's output within d.
func (c *child) readLine(d time.Duration) (string, error) {
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := c.out.ReadString('\n')
		ch <- result{strings.TrimSpace(s), err}
	}()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-t.C:
		// The reader goroutine ends when stop kills the process.
		return "", errors.New("no answer in time")
	}
}

// stats asks the bridge process to measure itself.
func (c *child) stats() (stats, error) {
	var st stats
	if _, err := io.WriteString(c.stdin, "stats\n"); err != nil {
		return st, fmt.Errorf("bridge-load: asking for stats: %w", err)
	}
	line, err := c.readLine(30 * time.Second)
	if err != nil {
		return st, fmt.Errorf("bridge-load: reading stats: %w", err)
	}
	if err := json.Unmarshal([]byte(line), &st); err != nil {
		return st, fmt.Errorf("bridge-load: stats %q: %w", line, err)
	}
	return st, nil
}

// waitSessions polls until the bridge counts want live sessions or d
// passes, and returns the last stats.
func (c *child) waitSessions(ctx context.Context, want int64, d time.Duration) (stats, error) {
	deadline := time.Now().Add(d)
	for {
		st, err := c.stats()
		if err != nil || st.Sessions == want {
			return st, err
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return st, fmt.Errorf("bridge-load: the bridge counts %d sessions, want %d", st.Sessions, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// stop closes the child's stdin (it shuts down) and waits up to 30 s before
// killing it.
func (c *child) stop() error {
	c.stdin.Close()
	go func() { c.done <- c.cmd.Wait() }()
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	select {
	case err := <-c.done:
		return err
	case <-t.C:
		c.cmd.Process.Kill()
		<-c.done
		return errors.New("bridge-load: the bridge process did not stop in 30 s and was killed")
	}
}
