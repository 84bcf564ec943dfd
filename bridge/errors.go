package bridge

import (
	"errors"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// Kind sorts a login failure into what the client is told, whatever the
// protocol: each front end turns a Kind into its own reply code.
type Kind int

// The kinds of login failure.
const (
	// KindBadPassword: wrong local password or unknown login name.
	KindBadPassword Kind = iota + 1
	// KindLocked: too many failures; try later.
	KindLocked
	// KindNeedsLogin: the account must run `bridge login` again.
	KindNeedsLogin
	// KindUnavailable: the identity platform or the upstream cannot be
	// reached or answered 5xx; nothing is wrong with the account.
	KindUnavailable
	// KindRefused: the upstream refused the login (a Microsoft-side switch,
	// consent, permissions).
	KindRefused
)

// KindOf sorts err (from Login, DialUpstream or an upstream refusal).
func KindOf(err error) Kind {
	var te *tokens.Error
	var f *diag.Failure
	switch {
	case errors.Is(err, ErrAuthFailed):
		return KindBadPassword
	case errors.Is(err, ErrTooManyFailures):
		return KindLocked
	case errors.Is(err, tokens.ErrNeedsLogin):
		return KindNeedsLogin
	case errors.As(err, &te):
		if te.Temporary() {
			return KindUnavailable
		}
		if te.NeedsLogin() {
			return KindNeedsLogin
		}
		return KindRefused
	case errors.As(err, &f):
		if f.Stage == "dial" || f.Stage == "tls" || f.Stage == "greeting" {
			return KindUnavailable
		}
		return KindRefused
	}
	return KindUnavailable
}
