// Package xoauth2 is the client side of SASL XOAUTH2, the mechanism
// Microsoft 365 and Gmail take an OAuth 2.0 access token with on IMAP,
// POP3 and SMTP: the payload, the one-step and two-step exchanges, and the
// answer to a server's error challenge. It does no I/O and no logging.
// Every payload, command and answer it returns may hold the token: clear
// it after writing and never log it.
package xoauth2

import (
	"encoding/base64"
	"strings"
)

// Mechanism is the SASL mechanism's name.
const Mechanism = "XOAUTH2"

// Payload returns the client response: "user=" user ^A "auth=Bearer "
// token ^A ^A.
func Payload(user, token string) []byte {
	raw := make([]byte, 0, len(user)+len(token)+20)
	raw = append(raw, "user="...)
	raw = append(raw, user...)
	raw = append(raw, "\x01auth=Bearer "...)
	raw = append(raw, token...)
	return append(raw, 1, 1)
}

// Encoded returns Payload in base64 (RFC 4648 section 4), as IMAP, POP3
// and SMTP carry it.
func Encoded(user, token string) []byte {
	raw := Payload(user, token)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	clear(raw)
	return out
}

// Client is one XOAUTH2 login. It is go-sasl's sasl.Client, for go-smtp's
// Client.Auth, and builds the lines of the text protocols (Command,
// Answer) for the exchanges the bridge drives itself.
//
// A challenge after the credentials went out is the server's error report
// (base64 JSON such as {"status":"401",...}); the mechanism's definition
// (developers.google.com/gmail/imap/xoauth2-protocol) has the client answer
// it with an empty response, and the server then sends its final refusal.
// Cancelling instead ("*") would get a reply about the cancellation, not
// the server's reason.
type Client struct {
	user, token string
	initial     bool // the credentials go in the initial response
	sent        bool // the credentials went out
}

// OneStep returns a client that sends the credentials as the initial
// response, on the command line: IMAP with SASL-IR (RFC 4959).
func OneStep(user, token string) *Client {
	return &Client{user: user, token: token, initial: true}
}

// TwoStep returns a client that sends "AUTH XOAUTH2" alone and the
// credentials after the server's first, empty challenge ("334" in SMTP,
// "+" in POP3). Access tokens are 1.5-2.5 KB, and an initial response
// must not push the command past the protocol's line limit (RFC 4954
// section 4 with RFC 5321's 512 octets; RFC 5034 section 4 with RFC 2449's
// 255): Dovecot's submission service answers a longer AUTH line with
// "500 5.5.2 Line too long".
func TwoStep(user, token string) *Client {
	return &Client{user: user, token: token}
}

// Start implements go-sasl's sasl.Client: the mechanism and, for a
// one-step client, the payload as the initial response.
func (c *Client) Start() (mech string, ir []byte, err error) {
	if !c.initial {
		return Mechanism, nil, nil
	}
	c.sent = true
	return Mechanism, Payload(c.user, c.token), nil
}

// Next implements go-sasl's sasl.Client: the payload at a two-step
// client's first challenge, an empty response to any later one (the
// server's error report). The challenge's content does not matter.
func (c *Client) Next(challenge []byte) ([]byte, error) {
	if c.sent {
		return []byte{}, nil
	}
	c.sent = true
	return Payload(c.user, c.token), nil
}

// Command returns the line that starts the exchange on a text protocol,
// CRLF included: verb ("B1 AUTHENTICATE" for IMAP, "AUTH" for POP3 and
// SMTP), the mechanism and, for a one-step client, the base64 payload.
func (c *Client) Command(verb string) []byte {
	line := make([]byte, 0, len(verb)+len(Mechanism)+4)
	line = append(line, verb...)
	line = append(line, ' ')
	line = append(line, Mechanism...)
	_, ir, _ := c.Start()
	if ir != nil {
		line = append(line, ' ')
		line = base64.StdEncoding.AppendEncode(line, ir)
		clear(ir)
	}
	return append(line, '\r', '\n')
}

// Answer returns the line that answers a server challenge, CRLF
// included: Next's response in base64, so the payload at a two-step
// client's first challenge and an empty line after that.
func (c *Client) Answer() []byte {
	resp, _ := c.Next(nil)
	line := base64.StdEncoding.AppendEncode(make([]byte, 0, base64.StdEncoding.EncodedLen(len(resp))+2), resp)
	clear(resp)
	return append(line, '\r', '\n')
}

// IsChallenge reports whether a line of IMAP or POP3, without its line
// end, is a server challenge: "+" alone or "+" and a space and text (RFC
// 3501 section 7.5, RFC 5034 section 4), as opposed to POP3's "+OK".
func IsChallenge(line string) bool {
	return line == "+" || strings.HasPrefix(line, "+ ")
}
