package bridgetest

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"strconv"
	"strings"
	"time"
)

// Replies Exchange Online sends, verbatim where a capture exists.
var (
	pop3Greeting   = "+OK The Microsoft Exchange POP3 service is ready. " + backendTag()
	pop3AuthFailed = "-ERR Authentication failure: unknown user name or bad password."
	pop3AuthOK     = "+OK User successfully authenticated."
	pop3Capa       = []string{"TOP", "UIDL", "SASL PLAIN XOAUTH2", "USER"}
)

const (
	// pop3MaxLine bounds a command line. RFC 2449 allows 255 octets for
	// commands, but an AUTH response carries a base64 token of a few KB.
	pop3MaxLine = 64 << 10
	// pop3ReadTimeout is the RFC 1939 section 3 inactivity autologout.
	pop3ReadTimeout = 10 * time.Minute
	// pop3WriteTimeout bounds one reply, including a large RETR.
	pop3WriteTimeout = 2 * time.Minute
)

var errPOP3LineTooLong = errors.New("bridgetest: pop3: line too long")

// pop3Session is one POP3 connection. user is empty in the AUTHORIZATION
// state and set in the TRANSACTION state (RFC 1939 sections 4-6).
type pop3Session struct {
	srv *POP3
	c   net.Conn
	br  *bufio.Reader
	bw  *bufio.Writer

	userCmd string // name from USER, for PASS

	user    string
	msgs    []*popMessage
	deleted map[*popMessage]bool
}

func newPOP3Session(srv *POP3, c net.Conn) *pop3Session {
	return &pop3Session{
		srv:     srv,
		c:       c,
		br:      bufio.NewReader(c),
		bw:      bufio.NewWriterSize(c, 64<<10),
		deleted: make(map[*popMessage]bool),
	}
}

func (p *pop3Session) run() {
	greeting := pop3Greeting
	if p.gmail() {
		greeting = "+OK Gpop ready for requests from 127.0.0.1 " + gmailID()
	}
	if p.send(greeting) != nil {
		return
	}
	for {
		line, err := p.readLine()
		if errors.Is(err, errPOP3LineTooLong) {
			p.send("-ERR Command line too long.")
			return
		}
		if err != nil {
			return
		}
		cmd, arg, _ := strings.Cut(line, " ")
		quit, err := p.handle(strings.ToUpper(cmd), arg)
		if err != nil || quit {
			return
		}
	}
}

// handle runs one command; it reports whether the session should end.
func (p *pop3Session) handle(cmd, arg string) (quit bool, err error) {
	switch cmd {
	case "CAPA": // RFC 2449 section 5
		if p.gmail() {
			return false, p.sendMulti("+OK Capability list follows", gmailPOPCapa)
		}
		return false, p.sendMulti("+OK", pop3Capa)
	case "QUIT":
		if p.user != "" {
			p.srv.commit(p.user, p.deleted) // UPDATE state, RFC 1939 section 6
		}
		if p.gmail() {
			return true, p.send(gmailPOPQuit)
		}
		return true, p.send("+OK Microsoft Exchange Server POP3 server signing off.")
	}
	if p.user == "" {
		return false, p.handleAuthorization(cmd, arg)
	}
	return false, p.handleTransaction(cmd, arg)
}

// handleAuthorization implements the AUTHORIZATION state. Only the
// two-step AUTH XOAUTH2 of RFC 5034 section 4 can succeed, as on Exchange.
func (p *pop3Session) handleAuthorization(cmd, arg string) error {
	switch cmd {
	case "USER":
		p.userCmd = arg
		return p.send("+OK")
	case "PASS":
		if p.userCmd == "" {
			return p.send("-ERR Command is not valid in this state.")
		}
		p.userCmd = ""
		return p.refuse()
	case "AUTH":
		return p.handleAuth(arg)
	case "STAT", "LIST", "UIDL", "RETR", "TOP", "DELE", "RSET", "NOOP":
		return p.send("-ERR Command is not valid in this state.")
	default:
		return p.send("-ERR Protocol error.")
	}
}

func (p *pop3Session) gmail() bool { return p.srv.opts.Service == Gmail }

func (p *pop3Session) refuse() error {
	p.srv.failed.Add(1)
	if p.gmail() {
		return p.send(gmailPOPRefused)
	}
	return p.send(pop3AuthFailed)
}

// refuseToken refuses an XOAUTH2 token; Gmail first sends its error
// challenge and waits for the client's answer (any line).
func (p *pop3Session) refuseToken() error {
	if p.gmail() {
		if err := p.send("+ " + base64.StdEncoding.EncodeToString(gmailChallenge)); err != nil {
			return err
		}
		if _, err := p.readLine(); err != nil {
			return err
		}
	}
	return p.refuse()
}

func (p *pop3Session) handleAuth(arg string) error {
	mech, ir, hasIR := strings.Cut(strings.TrimSpace(arg), " ")
	switch strings.ToUpper(mech) {
	case "":
		return p.sendMulti("+OK", []string{"PLAIN", "XOAUTH2"})
	case "XOAUTH2", "PLAIN":
	default:
		return p.send("-ERR Unrecognized authentication type.")
	}
	if hasIR || ir != "" {
		// Exchange refuses an initial response on the AUTH line.
		return p.refuse()
	}
	if err := p.send("+ "); err != nil {
		return err
	}
	line, err := p.readLine()
	if err != nil {
		return err
	}
	if line == "*" {
		return p.send("-ERR Authentication canceled.")
	}
	if strings.ToUpper(mech) != "XOAUTH2" {
		return p.refuse() // PLAIN is advertised but basic auth is off
	}
	blob, err := base64.StdEncoding.DecodeString(line)
	if err != nil {
		return p.refuse()
	}
	user, token, err := ParseXOAUTH2(blob)
	if err == nil && p.srv.opts.Validate == nil {
		err = errNoValidator
	}
	if err == nil {
		err = p.srv.opts.Validate(user, token)
	}
	if err != nil || Mode(p.srv.mode.Load()) == Disabled || p.srv.opts.Apps.check(rolePOP3, user, token) == appRefused {
		return p.refuseToken()
	}
	p.srv.logins.Add(1)
	p.user = user
	p.msgs = p.srv.snapshot(user)
	if p.gmail() {
		return p.send(gmailPOPAuthOK)
	}
	return p.send(pop3AuthOK)
}

// handleTransaction implements the TRANSACTION state, RFC 1939 section 5
// and TOP/UIDL from section 7.
func (p *pop3Session) handleTransaction(cmd, arg string) error {
	switch cmd {
	case "STAT":
		n, size := p.totals()
		return p.send(fmt.Sprintf("+OK %d %d", n, size))
	case "LIST", "UIDL":
		item := func(i int, m *popMessage) string {
			if cmd == "UIDL" {
				return fmt.Sprintf("%d %s", i, m.uid)
			}
			return fmt.Sprintf("%d %d", i, len(m.data))
		}
		if arg != "" {
			i, m, errText := p.message(arg)
			if m == nil {
				return p.send(errText)
			}
			return p.send("+OK " + item(i, m))
		}
		var lines []string
		for i, m := range p.msgs {
			if !p.deleted[m] {
				lines = append(lines, item(i+1, m))
			}
		}
		return p.sendMulti("+OK", lines)
	case "RETR":
		_, m, errText := p.message(arg)
		if m == nil {
			return p.send(errText)
		}
		return p.sendBody(fmt.Sprintf("+OK %d octets", len(m.data)), m.data)
	case "TOP":
		num, lines, _ := strings.Cut(arg, " ")
		_, m, errText := p.message(num)
		if m == nil {
			return p.send(errText)
		}
		n, err := strconv.Atoi(strings.TrimSpace(lines))
		if err != nil || n < 0 {
			return p.send("-ERR Protocol error.")
		}
		return p.sendBody("+OK", topOf(m.data, n))
	case "DELE":
		i, m, errText := p.message(arg)
		if m == nil {
			return p.send(errText)
		}
		p.deleted[m] = true
		return p.send(fmt.Sprintf("+OK message %d deleted", i))
	case "RSET":
		clear(p.deleted)
		n, size := p.totals()
		return p.send(fmt.Sprintf("+OK maildrop has %d messages (%d octets)", n, size))
	case "NOOP":
		return p.send("+OK")
	case "USER", "PASS", "AUTH":
		return p.send("-ERR Command is not valid in this state.")
	default:
		return p.send("-ERR Protocol error.")
	}
}

// message resolves a message-number argument; on failure m is nil and
// errText is the reply.
func (p *pop3Session) message(arg string) (i int, m *popMessage, errText string) {
	i, err := strconv.Atoi(strings.TrimSpace(arg))
	if err != nil || i < 1 || i > len(p.msgs) {
		return 0, nil, "-ERR no such message"
	}
	m = p.msgs[i-1]
	if p.deleted[m] {
		return 0, nil, fmt.Sprintf("-ERR message %d already deleted", i)
	}
	return i, m, ""
}

func (p *pop3Session) totals() (n int, size int) {
	for _, m := range p.msgs {
		if !p.deleted[m] {
			n++
			size += len(m.data)
		}
	}
	return n, size
}

// topOf returns the header, the blank line and the first n body lines.
func topOf(data []byte, n int) []byte {
	end := bytes.Index(data, []byte("\r\n\r\n"))
	if end < 0 {
		return data
	}
	end += 4
	for ; n > 0 && end < len(data); n-- {
		j := bytes.Index(data[end:], []byte("\r\n"))
		if j < 0 {
			return data
		}
		end += j + 2
	}
	return data[:end]
}

// readLine reads one CRLF- (or LF-) terminated line of at most pop3MaxLine
// octets.
func (p *pop3Session) readLine() (string, error) {
	p.c.SetReadDeadline(time.Now().Add(pop3ReadTimeout))
	var buf []byte
	for {
		chunk, err := p.br.ReadSlice('\n')
		buf = append(buf, chunk...)
		if len(buf) > pop3MaxLine {
			return "", errPOP3LineTooLong
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		if err != nil {
			return "", err
		}
		return strings.TrimRight(string(buf), "\r\n"), nil
	}
}

func (p *pop3Session) send(line string) error {
	p.c.SetWriteDeadline(time.Now().Add(pop3WriteTimeout))
	p.bw.WriteString(line)
	p.bw.WriteString("\r\n")
	return p.bw.Flush()
}

// sendMulti writes a status line and a multi-line body of short lines
// (none starts with ".") terminated by "." (RFC 1939 section 3).
func (p *pop3Session) sendMulti(status string, lines []string) error {
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l)
		b.WriteString("\r\n")
	}
	return p.sendBody(status, []byte(b.String()))
}

// sendBody writes a status line, then data (CRLF-terminated lines) with
// each line that starts with "." byte-stuffed, then the "." terminator
// (RFC 1939 section 3).
func (p *pop3Session) sendBody(status string, data []byte) error {
	p.c.SetWriteDeadline(time.Now().Add(pop3WriteTimeout))
	p.bw.WriteString(status)
	p.bw.WriteString("\r\n")
	for len(data) > 0 {
		line := data
		if i := bytes.Index(data, []byte("\r\n")); i >= 0 {
			line = data[:i+2]
		}
		data = data[len(line):]
		if line[0] == '.' {
			p.bw.WriteByte('.')
		}
		p.bw.Write(line)
		if !bytes.HasSuffix(line, []byte("\r\n")) {
			p.bw.WriteString("\r\n")
		}
	}
	p.bw.WriteString(".\r\n")
	return p.bw.Flush()
}
