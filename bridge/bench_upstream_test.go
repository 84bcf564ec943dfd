package bridge

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"net"
	"strconv"
	"sync"
	"time"

	"github.com/mailbridge/bridge/bridge/bridgetest"
)

// benchIMAP is a minimal IMAP responder for benchmarks: implicit TLS,
// AUTHENTICATE XOAUTH2 checked by a Validator, and a FETCH that answers
// with one literal served from memory, in a single write unless a
// benchPace shapes it. go-imap's server encodes a literal in small pieces
// and would hide the relay's own cost behind its own; this one is as fast
// as the TLS layer lets it be, so the direct figure is the best a client
// can get and the bridged figure shows what the relay adds.
type benchIMAP struct {
	ln       net.Listener
	validate bridgetest.Validator
	fetch    []byte // the whole untagged FETCH response, literal included
	pace     benchPace

	mu    sync.Mutex
	conns map[net.Conn]struct{}
	wg    sync.WaitGroup
}

// benchPace is how benchIMAP sends a FETCH response: in TLS records of
// Record bytes with a pause of Every after each, like a network that
// delivers a record at a time. The zero value writes the response in one
// call, which crypto/tls cuts into 16 KB records sent as fast as it can.
type benchPace struct {
	Record int
	Every  time.Duration
}

// send writes p to c as the pace says.
func (pc benchPace) send(c net.Conn, p []byte) error {
	if pc.Record <= 0 {
		_, err := c.Write(p)
		return err
	}
	for len(p) > 0 {
		n := min(pc.Record, len(p))
		if _, err := c.Write(p[:n]); err != nil {
			return err
		}
		p = p[n:]
		if pc.Every > 0 {
			time.Sleep(pc.Every)
		}
	}
	return nil
}

// newBenchIMAP serves on 127.0.0.1:0 with cfg; FETCH returns a literal of
// size bytes, sent at pace.
func newBenchIMAP(cfg *tls.Config, validate bridgetest.Validator, size int, pace benchPace) (*benchIMAP, error) {
	ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
	if err != nil {
		return nil, fmt.Errorf("bench imap: %w", err)
	}
	s := &benchIMAP{ln: ln, validate: validate, pace: pace, conns: map[net.Conn]struct{}{}}
	s.fetch = fmt.Appendf(nil, "* 1 FETCH (UID 1 BODY[] {%d}\r\n", size)
	s.fetch = append(s.fetch, benchLiteral(size)...)
	s.fetch = append(s.fetch, ")\r\n"...)
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// benchLiteral is size bytes of 76-character lines, like base64 mail.
func benchLiteral(size int) []byte {
	line := []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/ABCDEFGHIJ\r\n")
	out := bytes.Repeat(line, size/len(line)+1)
	return out[:size]
}

func (s *benchIMAP) addr() string { return s.ln.Addr().String() }

func (s *benchIMAP) serve() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go func() {
			defer s.wg.Done()
			s.session(c)
			s.mu.Lock()
			delete(s.conns, c)
			s.mu.Unlock()
			c.Close()
		}()
	}
}

// session answers one connection (RFC 3501 commands, the few the
// benchmarks send).
func (s *benchIMAP) session(c net.Conn) {
	br := bufio.NewReaderSize(c, 4<<10)
	if _, err := c.Write([]byte("* OK [CAPABILITY IMAP4rev1 SASL-IR AUTH=XOAUTH2] bench ready\r\n")); err != nil {
		return
	}
	var buf []byte
	for {
		line, err := readLine(br, buf, imapMaxLine)
		buf = line
		if err != nil {
			return
		}
		f := bytes.Fields(line)
		if len(f) < 2 {
			c.Write([]byte("* BAD no command\r\n"))
			continue
		}
		tag, name := string(f[0]), string(bytes.ToUpper(f[1]))
		var reply string
		switch {
		case name == "AUTHENTICATE" && len(f) == 4 && bytes.EqualFold(f[2], []byte("XOAUTH2")):
			reply = tag + " NO [AUTHENTICATIONFAILED] Authentication failed\r\n"
			raw, err := base64.StdEncoding.DecodeString(string(f[3]))
			if err == nil {
				if user, token, err := bridgetest.ParseXOAUTH2(raw); err == nil && s.validate(user, token) == nil {
					reply = tag + " OK [CAPABILITY IMAP4rev1 IDLE UIDPLUS] Authenticated\r\n"
				}
			}
		case name == "CAPABILITY":
			reply = "* CAPABILITY IMAP4rev1 IDLE UIDPLUS\r\n" + tag + " OK CAPABILITY completed\r\n"
		case name == "FETCH" || name == "UID" && len(f) > 2 && bytes.EqualFold(f[2], []byte("FETCH")):
			if err := s.pace.send(c, s.fetch); err != nil {
				return
			}
			reply = tag + " OK FETCH completed\r\n"
		case name == "NOOP":
			reply = tag + " OK NOOP completed\r\n"
		case name == "IDLE":
			if _, err := c.Write([]byte("+ idling\r\n")); err != nil {
				return
			}
			if buf, err = readLine(br, buf, imapMaxLine); err != nil {
				return
			}
			reply = tag + " OK IDLE terminated\r\n"
		case name == "LOGOUT":
			c.Write([]byte("* BYE bench logging out\r\n" + tag + " OK LOGOUT completed\r\n"))
			return
		default:
			reply = tag + " BAD unknown command\r\n"
		}
		if _, err := c.Write([]byte(reply)); err != nil {
			return
		}
	}
}

// close stops accepting, closes every connection and waits for them.
func (s *benchIMAP) close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

// literalSize parses the "{N}" at the end of an untagged FETCH line.
func literalSize(line []byte) (int, error) {
	i := bytes.LastIndexByte(line, '{')
	if i < 0 || !bytes.HasSuffix(line, []byte("}")) {
		return 0, fmt.Errorf("no literal in %q", line)
	}
	return strconv.Atoi(string(line[i+1 : len(line)-1]))
}
