package proxy

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strings"
)

// connect asks an HTTP proxy for a tunnel to addr on c (RFC 9110 section
// 9.3.6): "CONNECT host:port HTTP/1.1" with a Host header, and Basic
// credentials (RFC 7617) in Proxy-Authorization when the URL has a user.
// Any 2xx answer opens the tunnel. Bytes the proxy sent after its answer
// belong to the tunnel and are read first. A refusal fills e and returns
// it.
func (d *Dialer) connect(c net.Conn, addr string, e *Error) (net.Conn, string, error) {
	var b strings.Builder
	fmt.Fprintf(&b, "CONNECT %s HTTP/1.1\r\nHost: %s\r\n", addr, addr)
	if u := d.URL.User; u != nil {
		pass, _ := u.Password()
		cred := base64.StdEncoding.EncodeToString([]byte(u.Username() + ":" + pass))
		b.WriteString("Proxy-Authorization: Basic " + cred + "\r\n")
	}
	b.WriteString("\r\n")
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, "", err
	}
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, &http.Request{Method: http.MethodConnect})
	if err != nil {
		if strings.Contains(err.Error(), "malformed HTTP") {
			return nil, "", fmt.Errorf("%w: %v", errMalformed, err)
		}
		return nil, "", err
	}
	answer := resp.Proto + " " + resp.Status
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		e.Status, e.StatusCode = resp.Status, resp.StatusCode
		e.Step = StepConnect
		// 407 is the proxy's own "credentials, please"; some proxies
		// (tinyproxy 1.11) answer wrong credentials with a server's 401.
		if resp.StatusCode == http.StatusProxyAuthRequired || resp.StatusCode == http.StatusUnauthorized {
			e.Step = StepAuth
		}
		return nil, "", e
	}
	// A 2xx answer to CONNECT has no body (RFC 9110 section 9.3.6); what
	// br holds beyond the header is the tunnel's first bytes.
	if n := br.Buffered(); n > 0 {
		early, _ := br.Peek(n)
		return &earlyConn{Conn: c, early: append([]byte(nil), early...)}, answer, nil
	}
	return c, answer, nil
}

// earlyConn reads the bytes that arrived with the proxy's answer before
// reading from the connection.
type earlyConn struct {
	net.Conn
	early []byte
}

func (c *earlyConn) Read(p []byte) (int, error) {
	if len(c.early) > 0 {
		n := copy(p, c.early)
		c.early = c.early[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}
