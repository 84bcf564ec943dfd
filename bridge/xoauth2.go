package bridge

import (
	"encoding/base64"

	"github.com/emersion/go-sasl"
)

// xoauth2 returns the SASL XOAUTH2 initial response, base64-encoded as IMAP
// and POP3 send it: "user=U ^A auth=Bearer T ^A ^A". It holds the token:
// never log it.
func xoauth2(user, token string) []byte {
	raw := make([]byte, 0, len(user)+len(token)+20)
	raw = append(raw, "user="...)
	raw = append(raw, user...)
	raw = append(raw, "\x01auth=Bearer "...)
	raw = append(raw, token...)
	raw = append(raw, 1, 1)
	out := make([]byte, base64.StdEncoding.EncodedLen(len(raw)))
	base64.StdEncoding.Encode(out, raw)
	return out
}

// xoauth2Client is the SASL client for go-smtp. go-sasl has none.
type xoauth2Client struct{ user, token string }

// NewXOAUTH2Client returns a SASL XOAUTH2 client for user with token.
func NewXOAUTH2Client(user, token string) sasl.Client { return &xoauth2Client{user, token} }

func (c *xoauth2Client) Start() (string, []byte, error) {
	return "XOAUTH2", []byte("user=" + c.user + "\x01auth=Bearer " + c.token + "\x01\x01"), nil
}

// Next answers the server's error challenge (a JSON document) with an empty
// response, so that the server's own final reply comes back; returning an
// error here would make go-smtp cancel with "*" and hide it.
func (c *xoauth2Client) Next(challenge []byte) ([]byte, error) {
	return []byte{}, nil
}
