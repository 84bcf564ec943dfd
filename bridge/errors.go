package bridge

import (
	"errors"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// Outcome sorts a login failure into what the client is told, whatever the
// protocol: each front end turns an Outcome into its own reply code.
type Outcome int

// The outcomes of a failed login.
const (
	// OutcomeBadPassword: wrong local password or unknown login name.
	OutcomeBadPassword Outcome = iota + 1
	// OutcomeLocked: too many failures; try later.
	OutcomeLocked
	// OutcomeNeedsLogin: the account must run `bridge login` again.
	OutcomeNeedsLogin
	// OutcomeUnavailable: the identity platform or the upstream cannot be
	// reached or answered 5xx; nothing is wrong with the account.
	OutcomeUnavailable
	// OutcomeRefused: the upstream refused the login (a Microsoft-side
	// switch, consent, permissions).
	OutcomeRefused
)

// OutcomeOf sorts err (from Login, DialUpstream or an upstream refusal).
func OutcomeOf(err error) Outcome {
	var te *tokens.Error
	var f *diag.Failure
	switch {
	case errors.Is(err, ErrAuthFailed):
		return OutcomeBadPassword
	case errors.Is(err, ErrTooManyFailures):
		return OutcomeLocked
	case errors.Is(err, tokens.ErrNeedsLogin):
		return OutcomeNeedsLogin
	case errors.As(err, &te):
		if te.Temporary() {
			return OutcomeUnavailable
		}
		if te.NeedsLogin() {
			return OutcomeNeedsLogin
		}
		return OutcomeRefused
	case errors.As(err, &f):
		switch f.Stage {
		case diag.StageDial, diag.StageTLS, diag.StageGreeting:
			return OutcomeUnavailable
		}
		return OutcomeRefused
	}
	return OutcomeUnavailable
}
