package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
)

// SOCKS5 protocol numbers (RFC 1928, RFC 1929).
const (
	socksVersion      = 5
	socksNoAuth       = 0x00
	socksUserPass     = 0x02
	socksNoAcceptable = 0xff
	socksConnect      = 1
	socksIPv4         = 1
	socksDomain       = 3
	socksIPv6         = 4
	userPassVersion   = 1
)

// socks5 asks a SOCKS5 proxy for a connection to addr on c (RFC 1928
// sections 3-6). It offers no authentication and, when the URL has a user,
// user name and password (RFC 1929). A host name goes to the proxy as a
// name, so the proxy resolves it: the bridge's network may have no DNS for
// the outside. A refusal fills e and returns it.
func (d *Dialer) socks5(c net.Conn, addr string, e *Error) (net.Conn, string, error) {
	host, portStr, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, "", err
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, "", fmt.Errorf("port %q is not a number", portStr)
	}
	user, pass := "", ""
	if u := d.URL.User; u != nil {
		user = u.Username()
		pass, _ = u.Password()
	}
	// Section 3: the methods offered.
	greeting := []byte{socksVersion, 1, socksNoAuth}
	if user != "" {
		greeting = []byte{socksVersion, 2, socksNoAuth, socksUserPass}
	}
	if _, err := c.Write(greeting); err != nil {
		return nil, "", err
	}
	var chosen [2]byte
	if _, err := io.ReadFull(c, chosen[:]); err != nil {
		return nil, "", err
	}
	if chosen[0] != socksVersion {
		return nil, "", fmt.Errorf("%w: version %d in the method reply", errMalformed, chosen[0])
	}
	switch chosen[1] {
	case socksNoAuth:
	case socksUserPass:
		if user == "" {
			return nil, "", fmt.Errorf("%w: it chose user name and password, which was not offered", errMalformed)
		}
		if err := userPass(c, user, pass, e); err != nil {
			return nil, "", err
		}
	case socksNoAcceptable:
		e.Step = StepAuth
		e.Err = errors.New("it accepts no authentication method offered (none, and user name and password)")
		if user == "" {
			e.Err = errors.New("it requires authentication; give a user name in the proxy URL and its password")
		}
		return nil, "", e
	default:
		return nil, "", fmt.Errorf("%w: it chose method %d, which was not offered", errMalformed, chosen[1])
	}

	// Section 4: the CONNECT request.
	req := []byte{socksVersion, socksConnect, 0}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Is4() {
			req = append(req, socksIPv4)
		} else {
			req = append(req, socksIPv6)
		}
		req = append(req, ip.AsSlice()...)
	} else {
		if len(host) > 255 {
			return nil, "", fmt.Errorf("the host name %.40q... is longer than SOCKS5's 255 bytes", host)
		}
		req = append(req, socksDomain, byte(len(host)))
		req = append(req, host...)
	}
	req = binary.BigEndian.AppendUint16(req, uint16(port))
	if _, err := c.Write(req); err != nil {
		return nil, "", err
	}

	// Section 6: the reply, read to its end so the tunnel starts clean.
	var head [4]byte
	if _, err := io.ReadFull(c, head[:]); err != nil {
		return nil, "", err
	}
	if head[0] != socksVersion {
		return nil, "", fmt.Errorf("%w: version %d in the reply", errMalformed, head[0])
	}
	if head[1] != 0 {
		e.Step, e.Reply = StepConnect, head[1]
		return nil, "", e
	}
	var skip int
	switch head[3] {
	case socksIPv4:
		skip = 4
	case socksIPv6:
		skip = 16
	case socksDomain:
		var n [1]byte
		if _, err := io.ReadFull(c, n[:]); err != nil {
			return nil, "", err
		}
		skip = int(n[0])
	default:
		return nil, "", fmt.Errorf("%w: address type %d in the reply", errMalformed, head[3])
	}
	if _, err := io.ReadFull(c, make([]byte, skip+2)); err != nil {
		return nil, "", err
	}
	return c, "SOCKS5 reply 0 (succeeded)", nil
}

// userPass runs the user name and password subnegotiation (RFC 1929
// section 2). A refusal fills e and returns it.
func userPass(c net.Conn, user, pass string, e *Error) error {
	if len(user) > 255 || len(pass) > 255 {
		e.Step, e.Err = StepAuth, errors.New("the user name or password is longer than RFC 1929's 255 bytes")
		return e
	}
	msg := []byte{userPassVersion, byte(len(user))}
	msg = append(msg, user...)
	msg = append(msg, byte(len(pass)))
	msg = append(msg, pass...)
	_, err := c.Write(msg)
	clear(msg)
	if err != nil {
		return err
	}
	var reply [2]byte
	if _, err := io.ReadFull(c, reply[:]); err != nil {
		return err
	}
	if reply[0] != userPassVersion {
		return fmt.Errorf("%w: version %d in the user name and password reply", errMalformed, reply[0])
	}
	if reply[1] != 0 {
		e.Step = StepAuth
		e.Err = fmt.Errorf("it refused the user name %q and its password (RFC 1929 status %d)", user, reply[1])
		return e
	}
	return nil
}

// ReplyMeaning is the meaning RFC 1928 section 6 gives a SOCKS5 reply
// code.
func ReplyMeaning(code byte) string {
	switch code {
	case 0:
		return "succeeded"
	case 1:
		return "general SOCKS server failure"
	case 2:
		return "connection not allowed by ruleset"
	case 3:
		return "network unreachable"
	case 4:
		return "host unreachable"
	case 5:
		return "connection refused by the destination host"
	case 6:
		return "TTL expired"
	case 7:
		return "command not supported"
	case 8:
		return "address type not supported"
	}
	return "unassigned code"
}
