package bridgetest

import "errors"

var errNoValidator = errors.New("bridgetest: no Validator configured")

// xoauth2Server is the server side of SASL XOAUTH2: a single client message
// ("user=U^Aauth=Bearer T^A^A"). Without an initial response it first sends
// an empty challenge (RFC 4422 section 5). check refuses a message with an
// error and, for Gmail's refused tokens, an error challenge to send first:
// the refusal then answers the client's reply to it. Exchange answers with a
// plain tagged NO.
type xoauth2Server struct {
	check func(resp []byte) (challenge []byte, refusal error)
	asked bool
	after error // the refusal that answers the reply to an error challenge
}

func (x *xoauth2Server) Next(resp []byte) (challenge []byte, done bool, err error) {
	if x.after != nil {
		return nil, false, x.after
	}
	if len(resp) == 0 && !x.asked {
		x.asked = true
		return nil, false, nil
	}
	challenge, err = x.check(resp)
	switch {
	case err == nil:
		return nil, true, nil
	case challenge != nil:
		x.after = err
		return challenge, false, nil
	}
	return nil, false, err
}
