package bridgetest

import "errors"

var errNoValidator = errors.New("bridgetest: no Validator configured")

// xoauth2Server is the server side of SASL XOAUTH2: a single client message
// ("user=U^Aauth=Bearer T^A^A"). Without an initial response it first sends
// an empty challenge (RFC 4422 section 5). On failure Exchange answers with a
// plain tagged NO, not Gmail's JSON challenge, and so does this.
type xoauth2Server struct {
	check func(resp []byte) error
	asked bool
}

func (x *xoauth2Server) Next(resp []byte) (challenge []byte, done bool, err error) {
	if len(resp) == 0 && !x.asked {
		x.asked = true
		return nil, false, nil
	}
	if err := x.check(resp); err != nil {
		return nil, false, err
	}
	return nil, true, nil
}
