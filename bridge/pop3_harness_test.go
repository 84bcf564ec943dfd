package bridge

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
	"github.com/mailbridge/bridge/internal/xoauth2"
	"github.com/mailbridge/bridge/tokens"
)

// Accounts of the POP3 environment. The local password has spaces, which
// RFC 1939 section 7's PASS must carry through.
const (
	pop3TestUser     = "user@example.com"
	pop3NoLoginUser  = "nologin@example.com"
	pop3DownUser     = "down@example.com"
	pop3TestPassword = "local pass with spaces 7Qx9"
)

// pop3Env is a POP3 front end on the shared harness, in front of
// bridgetest's imitation of Exchange's POP3 service. pop3NoLoginUser has
// no refresh token; pop3DownUser's server is a closed port.
type pop3Env struct {
	*harness
	t       *testing.T
	up      *bridgetest.POP3
	srv     *POP3Server
	plain   string // plain listener, STLS offered
	implTLS string // implicit-TLS listener
}

// newPOP3Env starts the environment; edit changes the front end's options
// (TLS is already set). Everything stops at the end of the test, which
// fails if goroutines are left behind or a secret reached the log.
func newPOP3Env(t *testing.T, edit func(*FrontOptions)) *pop3Env {
	t.Helper()
	t.Cleanup(leakCheck(t))
	h := newHarness(t, pop3TestUser, pop3NoLoginUser, pop3DownUser)
	up, err := bridgetest.NewPOP3(bridgetest.POP3Options{Validate: h.Tokens.Validate, TLS: h.UpstreamTLS})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	h.setServer(POP3, up.Addr())

	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	h.account(pop3DownUser).Provider.POP3 = dead.Addr().String()
	dead.Close()

	for _, e := range []string{pop3TestUser, pop3NoLoginUser, pop3DownUser} {
		h.setPassword(e, pop3TestPassword)
	}
	if err := h.Store.Put(pop3NoLoginUser, tokens.Entry{Password: pop3TestPassword}); err != nil {
		t.Fatal(err)
	}
	h.B.Reload()

	o := FrontOptions{TLS: h.Local, PreLoginTimeout: 10 * time.Second}
	if edit != nil {
		edit(&o)
	}
	env := &pop3Env{harness: h, t: t, up: up, srv: NewPOP3Server(h.B, o)}
	var wg sync.WaitGroup
	for _, implicit := range []bool{false, true} {
		ln := h.listen()
		if implicit {
			env.implTLS = ln.Addr().String()
		} else {
			env.plain = ln.Addr().String()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			env.srv.Serve(ln, implicit)
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		env.srv.Shutdown(ctx)
		wg.Wait()
		var extra []string
		if tok, err := h.B.Source(h.account(pop3TestUser)).Token(ctx); err == nil {
			extra = append(extra, tok.AccessToken, string(xoauth2.Encoded(pop3TestUser, tok.AccessToken)))
		}
		h.checkLogs(extra...)
	})
	return env
}

// pop3Client is a minimal POP3 client over raw lines, so tests see the
// exact bytes (net/textproto's DotReader would rewrite line ends).
type pop3Client struct {
	t  *testing.T
	c  net.Conn
	br *bufio.Reader
}

// dial connects to addr (with TLS when useTLS) and reads the greeting.
func (e *pop3Env) dial(addr string, useTLS bool) *pop3Client {
	e.t.Helper()
	var c net.Conn
	var err error
	if useTLS {
		cfg := e.ClientTLS.Clone()
		cfg.ServerName = "127.0.0.1"
		c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, cfg)
	} else {
		c, err = net.DialTimeout("tcp", addr, 5*time.Second)
	}
	if err != nil {
		e.t.Fatal(err)
	}
	c.SetDeadline(time.Now().Add(30 * time.Second))
	pc := &pop3Client{t: e.t, c: c, br: bufio.NewReader(c)}
	e.t.Cleanup(func() { pc.c.Close() })
	if g := pc.line(); g != pop3Greeting {
		e.t.Fatalf("greeting %q", g)
	}
	return pc
}

// send writes one line.
func (p *pop3Client) send(line string) {
	p.t.Helper()
	if _, err := fmt.Fprintf(p.c, "%s\r\n", line); err != nil {
		p.t.Fatalf("write: %v", err)
	}
}

// line reads one line without its CRLF.
func (p *pop3Client) line() string {
	p.t.Helper()
	l, err := p.br.ReadString('\n')
	if err != nil {
		p.t.Fatalf("read: %v (got %q)", err, l)
	}
	if !strings.HasSuffix(l, "\r\n") {
		p.t.Fatalf("line %q does not end with CRLF", l)
	}
	return strings.TrimSuffix(l, "\r\n")
}

// cmd sends a command and returns the status line.
func (p *pop3Client) cmd(line string) string {
	p.t.Helper()
	p.send(line)
	return p.line()
}

// ok sends a command and fails the test unless the reply is +OK.
func (p *pop3Client) ok(line string) string {
	p.t.Helper()
	r := p.cmd(line)
	if !strings.HasPrefix(r, "+OK") {
		p.t.Fatalf("%s: %q", strings.Fields(line)[0], r)
	}
	return r
}

// body reads a multi-line body (RFC 1939 section 3): CRLFs kept,
// byte-stuffing undone, the terminating "." line dropped.
func (p *pop3Client) body() []byte {
	p.t.Helper()
	var out []byte
	for {
		l, err := p.br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			out = append(out, l...)
			continue
		}
		if err != nil {
			p.t.Fatalf("read body: %v", err)
		}
		if string(l) == ".\r\n" {
			return out
		}
		if l[0] == '.' {
			l = l[1:]
		}
		out = append(out, l...)
	}
}

// startTLS runs STLS and the handshake.
func (p *pop3Client) startTLS(cfg *tls.Config) {
	p.t.Helper()
	p.ok("STLS")
	cfg = cfg.Clone()
	cfg.ServerName = "127.0.0.1"
	tc := tls.Client(p.c, cfg)
	if err := tc.Handshake(); err != nil {
		p.t.Fatalf("STLS handshake: %v", err)
	}
	p.c = tc
	p.br = bufio.NewReader(tc)
}

// closed reports whether the server has closed the connection.
func (p *pop3Client) closed() bool {
	p.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	_, err := p.br.ReadByte()
	return err != nil
}
