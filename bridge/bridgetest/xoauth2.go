// Package bridgetest imitates Exchange Online's IMAP, POP3 and SMTP servers
// in process, with SASL XOAUTH2 checked by a caller-supplied function, and
// can be scripted to fail the way Microsoft fails; with Service Gmail it
// answers as Gmail's servers do. Tests and `bridge demo` use it.
package bridgetest

import (
	"bytes"
	"errors"
)

// Validator checks an XOAUTH2 login: user is the user= field, token the
// bearer token. A nil error accepts the login.
type Validator func(user, token string) error

// ParseXOAUTH2 splits a decoded XOAUTH2 initial response
// ("user=U\x01auth=Bearer T\x01\x01") into user and token.
func ParseXOAUTH2(b []byte) (user, token string, err error) {
	if !bytes.HasSuffix(b, []byte("\x01\x01")) {
		return "", "", errors.New("bridgetest: xoauth2: missing terminator")
	}
	for _, f := range bytes.Split(b[:len(b)-2], []byte{1}) {
		switch {
		case bytes.HasPrefix(f, []byte("user=")):
			user = string(f[5:])
		case bytes.HasPrefix(f, []byte("auth=Bearer ")):
			token = string(f[12:])
		}
	}
	if user == "" || token == "" {
		return "", "", errors.New("bridgetest: xoauth2: user or token missing")
	}
	return user, token, nil
}
