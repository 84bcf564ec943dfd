package bridge

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/internal/xoauth2"
)

// imapUpstreamLines bounds how many lines the upstream may send during the
// login exchange, so a misbehaving server cannot keep the bridge reading.
const imapUpstreamLines = 64

// IMAPUpstreamLogin logs in as user with token on a fresh upstream IMAP
// connection up, read through br: it reads the greeting, sends
// AUTHENTICATE XOAUTH2 with the initial response on the command line
// (RFC 4959), answers a "+" challenge (the JSON error document some
// servers send) with an empty line so that the server's final reply
// arrives (RFC 3501 section 6.2.2), and returns the post-login
// capabilities, from the OK's CAPABILITY code or from one CAPABILITY
// command. `bridge serve` and `bridge doctor` both log in with it. The
// caller sets the deadlines.
//
// A refusal is a *diag.Failure with Stage StageGreeting or StageAuth holding the
// upstream's words; a broken connection is a plain error.
func IMAPUpstreamLogin(up net.Conn, br *bufio.Reader, user, token string) ([]string, error) {
	var buf []byte
	read := func() (string, error) {
		line, err := readLine(br, buf, imapMaxLine)
		buf = line
		if err != nil {
			return "", fmt.Errorf("bridge: imap upstream %s: %w", up.RemoteAddr(), err)
		}
		return string(line), nil
	}
	greeting, err := read()
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(greeting, "* OK") {
		code, text := splitRespCode(strings.TrimPrefix(strings.TrimPrefix(greeting, "* "), "BYE "))
		return nil, &diag.Failure{Proto: IMAP, Stage: diag.StageGreeting, RespCode: code, Text: text}
	}

	sasl := xoauth2.OneStep(user, token)
	cmd := sasl.Command("B1 AUTHENTICATE")
	_, err = up.Write(cmd)
	clear(cmd) // it held the token
	if err != nil {
		return nil, fmt.Errorf("bridge: imap upstream %s: %w", up.RemoteAddr(), err)
	}

	var caps []string
	for range imapUpstreamLines {
		line, err := read()
		if err != nil {
			return nil, err
		}
		switch {
		case strings.HasPrefix(line, "* BYE "):
			return nil, imapBye(diag.StageAuth, line)
		case strings.HasPrefix(line, "+"):
			if _, err := up.Write(sasl.Answer()); err != nil {
				return nil, fmt.Errorf("bridge: imap upstream %s: %w", up.RemoteAddr(), err)
			}
		case strings.HasPrefix(line, "* "):
			if c, ok := capabilityData(line); ok {
				caps = c
			}
		case strings.HasPrefix(line, "B1 "):
			status, rest, _ := strings.Cut(line[3:], " ")
			code, text := splitRespCode(rest)
			if !strings.EqualFold(status, "OK") {
				return nil, &diag.Failure{Proto: IMAP, Stage: diag.StageAuth, RespCode: code, Text: text}
			}
			if c, ok := capabilityCode(rest); ok {
				caps = c
			}
			if caps != nil {
				return caps, nil
			}
			return imapUpstreamCaps(up, read)
		}
	}
	return nil, errors.New("bridge: imap upstream: no reply to AUTHENTICATE")
}

// imapUpstreamCaps asks for the capabilities after login (RFC 3501 section
// 6.1.1).
func imapUpstreamCaps(up net.Conn, read func() (string, error)) ([]string, error) {
	if _, err := up.Write([]byte("B2 CAPABILITY\r\n")); err != nil {
		// An upstream that closed right after the login may have said why.
		if line, rerr := read(); rerr == nil && strings.HasPrefix(line, "* BYE ") {
			return nil, imapBye(diag.StageMailbox, line)
		}
		return nil, fmt.Errorf("bridge: imap upstream %s: %w", up.RemoteAddr(), err)
	}
	var caps []string
	for range imapUpstreamLines {
		line, err := read()
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(line, "* BYE ") {
			// Some mailboxes refuse the token's identity this way right
			// after the login, rather than with a BAD to the first command:
			// "* BYE User is authenticated but not connected.".
			return nil, imapBye(diag.StageMailbox, line)
		}
		if c, ok := capabilityData(line); ok {
			caps = c
		}
		if strings.HasPrefix(line, "B2 ") {
			return caps, nil // a NO still leaves a working session
		}
	}
	return nil, errors.New("bridge: imap upstream: no reply to CAPABILITY")
}

// imapBye is the failure of an upstream that ended the session with line,
// "* BYE [code] text" (RFC 3501 section 7.1.5), at stage.
func imapBye(stage diag.Stage, line string) *diag.Failure {
	code, text := splitRespCode(strings.TrimPrefix(line, "* BYE "))
	return &diag.Failure{Proto: IMAP, Stage: stage, RespCode: code, Text: text}
}

// capabilityData parses "* CAPABILITY a b c".
func capabilityData(line string) ([]string, bool) {
	rest, ok := strings.CutPrefix(line, "* ")
	if !ok || len(rest) < len("CAPABILITY") || !strings.EqualFold(rest[:len("CAPABILITY")], "CAPABILITY") {
		return nil, false
	}
	return strings.Fields(rest[len("CAPABILITY"):]), true
}

// capabilityCode parses a resp-text starting with "[CAPABILITY a b c]".
func capabilityCode(text string) ([]string, bool) {
	if !strings.HasPrefix(text, "[") {
		return nil, false
	}
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return nil, false
	}
	f := strings.Fields(text[1:end])
	if len(f) == 0 || !strings.EqualFold(f[0], "CAPABILITY") {
		return nil, false
	}
	return f[1:], true
}

// splitRespCode splits resp-text into its response code's name (RFC 3501
// section 7.1: "[AUTHENTICATIONFAILED] text") and the text.
func splitRespCode(text string) (code, rest string) {
	if !strings.HasPrefix(text, "[") {
		return "", text
	}
	end := strings.IndexByte(text, ']')
	if end < 0 {
		return "", text
	}
	code, _, _ = strings.Cut(text[1:end], " ")
	return strings.ToUpper(code), strings.TrimSpace(text[end+1:])
}

// postLoginCaps drops the capabilities that only mean something before
// login (RFC 3501 section 6.2, RFC 4959, RFC 2595), since the client will
// see them as what the logged-in session offers.
func postLoginCaps(caps []string) []string {
	out := make([]string, 0, len(caps))
	for _, c := range caps {
		u := strings.ToUpper(c)
		if strings.HasPrefix(u, "AUTH=") || u == "SASL-IR" || u == "STARTTLS" || u == "LOGINDISABLED" || u == "LOGIN-REFERRALS" {
			continue
		}
		out = append(out, c)
	}
	return out
}
