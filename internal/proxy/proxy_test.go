package proxy

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeProxy accepts connections on loopback and hands each to serve.
func fakeProxy(t *testing.T, serve func(c net.Conn)) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		wg.Wait()
	})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				serve(c)
			}()
		}
	}()
	return ln.Addr().String()
}

func dialer(t *testing.T, raw string) *Dialer {
	t.Helper()
	u, err := Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return &Dialer{URL: u}
}

func ctx5s(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// proxyError checks that err is an *Error at step and returns it.
func proxyError(t *testing.T, err error, step Step) *Error {
	t.Helper()
	var pe *Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *proxy.Error", err, err)
	}
	if pe.Step != step {
		t.Fatalf("step %d, want %d: %v", pe.Step, step, pe)
	}
	return pe
}

// TestConnectTunnel: the request is RFC 9110's CONNECT with the Host
// header and Basic credentials; the answer is read with its headers, and
// the bytes the proxy sent right behind it (here, the server's greeting in
// the same segment) are the first the tunnel yields.
func TestConnectTunnel(t *testing.T) {
	got := make(chan *http.Request, 1)
	addr := fakeProxy(t, func(c net.Conn) {
		br := bufio.NewReader(c)
		req, err := http.ReadRequest(br)
		if err != nil {
			t.Error(err)
			return
		}
		got <- req
		io.WriteString(c, "HTTP/1.1 200 Connection established\r\nVia: test\r\n\r\n* OK greeting\r\n")
		line, _ := br.ReadString('\n')
		io.WriteString(c, "echo "+line)
	})
	d := dialer(t, "http://ann:s3cret@"+addr)
	c, answer, err := d.Tunnel(ctx5s(t), "tcp", "imap.example.com:993")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if answer != "HTTP/1.1 200 Connection established" {
		t.Errorf("answer %q", answer)
	}
	req := <-got
	if req.Method != "CONNECT" || req.RequestURI != "imap.example.com:993" || req.Host != "imap.example.com:993" || req.Proto != "HTTP/1.1" {
		t.Errorf("request %s %s %s, Host %q", req.Method, req.RequestURI, req.Proto, req.Host)
	}
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("ann:s3cret")); req.Header.Get("Proxy-Authorization") != want {
		t.Errorf("Proxy-Authorization %q, want %q", req.Header.Get("Proxy-Authorization"), want)
	}
	br := bufio.NewReader(c)
	if l, _ := br.ReadString('\n'); l != "* OK greeting\r\n" {
		t.Errorf("first tunnel bytes %q, want the greeting sent with the answer", l)
	}
	io.WriteString(c, "a1 NOOP\r\n")
	if l, _ := br.ReadString('\n'); l != "echo a1 NOOP\r\n" {
		t.Errorf("tunnel round trip %q", l)
	}
}

// TestConnectNoCredentials: without a user in the URL no
// Proxy-Authorization is sent; any 2xx opens the tunnel, and a tunnel
// without early bytes is the TCP connection itself.
func TestConnectNoCredentials(t *testing.T) {
	addr := fakeProxy(t, func(c net.Conn) {
		req, err := http.ReadRequest(bufio.NewReader(c))
		if err != nil {
			t.Error(err)
			return
		}
		if h := req.Header.Get("Proxy-Authorization"); h != "" {
			t.Errorf("Proxy-Authorization %q sent without a user", h)
		}
		io.WriteString(c, "HTTP/1.0 204 Tunnel open\r\n\r\n")
		io.Copy(c, c)
	})
	c, err := dialer(t, "http://"+addr).DialContext(ctx5s(t), "tcp", "127.0.0.1:587")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, ok := c.(*net.TCPConn); !ok {
		t.Errorf("tunnel is %T, want the *net.TCPConn itself", c)
	}
	io.WriteString(c, "EHLO x\r\n")
	buf := make([]byte, 8)
	if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "EHLO x\r\n" {
		t.Errorf("echo %q, %v", buf, err)
	}
}

// TestConnectRefusals: 407 asks for credentials, and so does the 401
// tinyproxy 1.11 answers wrong ones with; 403 and 500 refuse the tunnel.
// The status line is kept and the password never appears in the error.
func TestConnectRefusals(t *testing.T) {
	for _, tc := range []struct {
		answer string
		step   Step
		code   int
	}{
		{"HTTP/1.1 407 Proxy Authentication Required\r\nProxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 5\r\n\r\nnope!", StepAuth, 407},
		{"HTTP/1.0 403 Access violation\r\n\r\n", StepConnect, 403},
		{"HTTP/1.0 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"Tinyproxy\"\r\nConnection: close\r\n\r\n<html>", StepAuth, 401},
		{"HTTP/1.1 500 Unable to connect\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n<html>", StepConnect, 500},
	} {
		addr := fakeProxy(t, func(c net.Conn) {
			http.ReadRequest(bufio.NewReader(c))
			io.WriteString(c, tc.answer)
		})
		_, err := dialer(t, "http://ann:s3cret@"+addr).DialContext(ctx5s(t), "tcp", "smtp.example.com:587")
		pe := proxyError(t, err, tc.step)
		if pe.StatusCode != tc.code || !strings.HasPrefix(pe.Status, strconv.Itoa(tc.code)+" ") {
			t.Errorf("status %d %q, want %d", pe.StatusCode, pe.Status, tc.code)
		}
		if pe.Proxy != addr || pe.Target != "smtp.example.com:587" {
			t.Errorf("proxy %q target %q", pe.Proxy, pe.Target)
		}
		if msg := err.Error(); strings.Contains(msg, "s3cret") || !strings.Contains(msg, pe.Status) || !strings.Contains(msg, "CONNECT smtp.example.com:587") {
			t.Errorf("error text %q", msg)
		}
	}
}

// TestUnreachable: no proxy listening, a proxy that closes without an
// answer, one that answers in another protocol, and one that never
// answers (bounded by ctx) are all StepReach.
func TestUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := ln.Addr().String()
	ln.Close()
	_, err = dialer(t, "http://"+closed).DialContext(ctx5s(t), "tcp", "a.example:993")
	if pe := proxyError(t, err, StepReach); !strings.Contains(pe.Error(), "connection refused") {
		t.Errorf("refused: %v", pe)
	}

	hangup := fakeProxy(t, func(c net.Conn) { c.Read(make([]byte, 512)) })
	_, err = dialer(t, "socks5://"+hangup).DialContext(ctx5s(t), "tcp", "a.example:993")
	proxyError(t, err, StepReach)

	// A SOCKS5 proxy asked for CONNECT over HTTP answers bytes that are
	// not HTTP.
	socks := fakeProxy(t, func(c net.Conn) {
		c.Read(make([]byte, 512))
		c.Write([]byte{5, 0xff})
	})
	_, err = dialer(t, "http://"+socks).DialContext(ctx5s(t), "tcp", "a.example:993")
	if pe := proxyError(t, err, StepReach); !errors.Is(pe, errMalformed) {
		t.Errorf("malformed answer: %v", pe)
	}

	silent := fakeProxy(t, func(c net.Conn) { io.Copy(io.Discard, c) })
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err = dialer(t, "http://"+silent).DialContext(ctx, "tcp", "a.example:993")
	proxyError(t, err, StepReach)
	if d := time.Since(start); d > 2*time.Second {
		t.Errorf("a silent proxy held the dial for %v", d)
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		t.Errorf("silent proxy: %v is not a time-out", err)
	}
}

// socksServer is a scripted SOCKS5 proxy: it checks what the client sends
// and answers as told.
type socksServer struct {
	wantUser, wantPass string // "" accepts no authentication
	reply              byte
	bound              []byte // ATYP, address and port of the reply
	early              string // bytes sent right after a successful reply
	gotReq             chan []byte
}

func (s *socksServer) serve(t *testing.T) func(net.Conn) {
	return func(c net.Conn) {
		var head [2]byte
		if _, err := io.ReadFull(c, head[:]); err != nil || head[0] != 5 {
			t.Errorf("greeting %v, %v", head, err)
			return
		}
		methods := make([]byte, head[1])
		io.ReadFull(c, methods)
		if s.wantUser == "" {
			if !bytes.Contains(methods, []byte{0}) {
				c.Write([]byte{5, 0xff})
				return
			}
			c.Write([]byte{5, 0})
		} else {
			if !bytes.Contains(methods, []byte{2}) {
				c.Write([]byte{5, 0xff})
				return
			}
			c.Write([]byte{5, 2})
			var v [2]byte
			io.ReadFull(c, v[:])
			user := make([]byte, v[1])
			io.ReadFull(c, user)
			var pl [1]byte
			io.ReadFull(c, pl[:])
			pass := make([]byte, pl[0])
			io.ReadFull(c, pass)
			if v[0] != 1 || string(user) != s.wantUser || string(pass) != s.wantPass {
				c.Write([]byte{1, 1})
				return
			}
			c.Write([]byte{1, 0})
		}
		req := make([]byte, 4)
		io.ReadFull(c, req)
		var rest []byte
		switch req[3] {
		case 1:
			rest = make([]byte, 4+2)
		case 4:
			rest = make([]byte, 16+2)
		case 3:
			var n [1]byte
			io.ReadFull(c, n[:])
			req = append(req, n[0])
			rest = make([]byte, int(n[0])+2)
		}
		io.ReadFull(c, rest)
		s.gotReq <- append(req, rest...)
		c.Write(append([]byte{5, s.reply, 0}, s.bound...))
		if s.reply != 0 {
			return
		}
		io.WriteString(c, s.early)
		io.Copy(c, c)
	}
}

// TestSOCKS5Domain: a host name goes to the proxy as a name (ATYP 3), so
// the proxy resolves it; a reply naming a domain is read to its end, and
// the tunnel's first bytes are the server's.
func TestSOCKS5Domain(t *testing.T) {
	s := &socksServer{bound: append([]byte{3, 9}, append([]byte("proxy.lan"), 0x04, 0x38)...), early: "+OK POP3\r\n", gotReq: make(chan []byte, 1)}
	addr := fakeProxy(t, s.serve(t))
	c, answer, err := dialer(t, "socks5://"+addr).Tunnel(ctx5s(t), "tcp", "outlook.office365.com:995")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if answer != "SOCKS5 reply 0 (succeeded)" {
		t.Errorf("answer %q", answer)
	}
	want := append([]byte{5, 1, 0, 3, 21}, "outlook.office365.com"...)
	want = append(want, 0x03, 0xe3) // 995
	if got := <-s.gotReq; !bytes.Equal(got, want) {
		t.Errorf("CONNECT request % x, want % x", got, want)
	}
	br := bufio.NewReader(c)
	if l, _ := br.ReadString('\n'); l != "+OK POP3\r\n" {
		t.Errorf("first tunnel bytes %q", l)
	}
}

// TestSOCKS5UserPass: with a user in the URL both methods are offered;
// the proxy's choice of RFC 1929 sends the user name and password, and an
// IP address goes as ATYP 1.
func TestSOCKS5UserPass(t *testing.T) {
	s := &socksServer{wantUser: "ann", wantPass: "s3cret", bound: []byte{1, 127, 0, 0, 1, 0, 80}, gotReq: make(chan []byte, 1)}
	addr := fakeProxy(t, s.serve(t))
	c, err := dialer(t, "socks5://ann:s3cret@"+addr).DialContext(ctx5s(t), "tcp", "10.1.2.3:587")
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if got, want := <-s.gotReq, []byte{5, 1, 0, 1, 10, 1, 2, 3, 0x02, 0x4b}; !bytes.Equal(got, want) {
		t.Errorf("CONNECT request % x, want % x", got, want)
	}

	_, err = dialer(t, "socks5://ann:wrong@"+addr).DialContext(ctx5s(t), "tcp", "10.1.2.3:587")
	pe := proxyError(t, err, StepAuth)
	if msg := pe.Error(); strings.Contains(msg, "wrong") || !strings.Contains(msg, "RFC 1929 status 1") {
		t.Errorf("refused password: %q", msg)
	}

	// No user given, and the proxy requires one.
	_, err = dialer(t, "socks5://"+addr).DialContext(ctx5s(t), "tcp", "10.1.2.3:587")
	if pe := proxyError(t, err, StepAuth); !strings.Contains(pe.Error(), "requires authentication") {
		t.Errorf("no credentials: %q", pe.Error())
	}
}

// TestSOCKS5Refused: a reply code other than 0 is the proxy's refusal,
// with RFC 1928's meaning.
func TestSOCKS5Refused(t *testing.T) {
	s := &socksServer{reply: 2, bound: []byte{1, 0, 0, 0, 0, 0, 0}, gotReq: make(chan []byte, 1)}
	addr := fakeProxy(t, s.serve(t))
	_, err := dialer(t, "socks5://"+addr).DialContext(ctx5s(t), "tcp", "smtp.office365.com:587")
	pe := proxyError(t, err, StepConnect)
	if pe.Reply != 2 || !strings.Contains(pe.Error(), "reply 2 (connection not allowed by ruleset)") {
		t.Errorf("refusal %v", pe)
	}
}

func TestParse(t *testing.T) {
	for _, ok := range []string{"http://proxy.corp:3128", "HTTP://proxy.corp:8080/", "socks5://127.0.0.1:1080", "http://ann@proxy:3128", "socks5://ann:pw@[::1]:1080"} {
		if _, err := Parse(ok); err != nil {
			t.Errorf("Parse(%q): %v", ok, err)
		}
	}
	for _, bad := range []string{"proxy.corp:3128", "https://proxy:443", "socks4://p:1080", "http://proxy", "http://proxy:0", "http://proxy:99999", "http://p:3128/path", "http://p:3128?x=1", "http://:pw@p:3128", "direct", ""} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	u, _ := Parse("http://ann:pw@proxy:3128")
	if u.Scheme != "http" || u.Host != "proxy:3128" || u.User.Username() != "ann" {
		t.Errorf("Parse = %v", u)
	}
}

// TestParseHidesPassword: a setting refused for another reason never
// shows its password in the message.
func TestParseHidesPassword(t *testing.T) {
	for _, raw := range []string{"https://ann:s3cret@proxy:443", "http://ann:s3cret@proxy", "http://ann:s3cret@proxy:3128/x", "ann:s3cret@proxy:3128", "http://ann:s3cret@pro xy:3128"} {
		_, err := Parse(raw)
		if err == nil {
			t.Fatalf("Parse(%q) accepted", raw)
		}
		if strings.Contains(err.Error(), "s3cret") || !strings.Contains(err.Error(), "ann:xxxxx@") {
			t.Errorf("Parse(%q): %v", raw, err)
		}
	}
	if got := Redact("socks5://ann@proxy:1080"); got != "socks5://ann@proxy:1080" {
		t.Errorf("Redact without a password = %q", got)
	}
}
