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
	// OutcomeNeedsLogin: the account must run `bridge login` again.
	OutcomeNeedsLogin
	// OutcomeUnavailable: the identity platform or the upstream cannot be
	// reached or answered 5xx; nothing is wrong with the account.
	OutcomeUnavailable
	// OutcomeRefused: the upstream refused the login (a Microsoft-side
	// switch, consent, permissions).
	OutcomeRefused
)

// badPasswordText is the reply text of OutcomeBadPassword in every
// protocol: the client sent something other than what the bridge wants,
// so it says what that is and where to find it.
const badPasswordText = "Authentication failed: log in with the account's address and the bridge's local password, " +
	"not the Microsoft one (`bridge password EMAIL` prints it)"

// OutcomeOf sorts err (from Login, DialUpstream or an upstream refusal).
func OutcomeOf(err error) Outcome {
	var te *tokens.Error
	var f *diag.Failure
	switch {
	case errors.Is(err, ErrAuthFailed):
		return OutcomeBadPassword
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
		case diag.StageProxy, diag.StageDial, diag.StageTLS, diag.StageGreeting:
			return OutcomeUnavailable
		}
		return OutcomeRefused
	}
	return OutcomeUnavailable
}

// LoginError is a failed login, local or upstream, with the account the
// login name resolved to, so that the front end wording the refusal never
// looks the name up again.
type LoginError struct {
	// Account is the account logged in to; nil until the local password
	// was accepted, so an unknown name and a wrong password stay alike.
	Account *Account
	Err     error
}

func (e *LoginError) Error() string { return e.Err.Error() }

func (e *LoginError) Unwrap() error { return e.Err }

// loginError returns err as a *LoginError for account a, unless it is one
// already.
func loginError(a *Account, err error) error {
	var le *LoginError
	if errors.As(err, &le) {
		return err
	}
	return &LoginError{Account: a, Err: err}
}

// Refusal is a failed login as every front end needs it; each words it in
// its own protocol.
type Refusal struct {
	// Outcome picks the reply code.
	Outcome Outcome
	// Account is the account the login resolved to; nil when the local
	// login failed (OutcomeBadPassword) or the local password could not
	// be read.
	Account *Account
	// Diagnosis explains the failure: the one Record kept for Account, or,
	// without an account, the same table's verdict unrecorded. It is zero
	// for OutcomeBadPassword.
	Diagnosis diag.Diagnosis
	// Failure is the upstream's own refusal, when the error holds one:
	// its words and SMTP code go back to the client.
	Failure *diag.Failure
}

// Refuse turns err, from Login, DialUpstream or an upstream login step
// (carrying its account as a *LoginError), into what the front end of p
// answers. It classifies the failure once and records it for the account
// (Record), so the client, the status and the log see one diagnosis.
func (b *Bridge) Refuse(p Proto, err error) Refusal {
	r := Refusal{Outcome: OutcomeOf(err)}
	var le *LoginError
	if errors.As(err, &le) {
		r.Account = le.Account
	}
	errors.As(err, &r.Failure)
	switch {
	case r.Outcome == OutcomeBadPassword:
	case r.Account != nil:
		r.Diagnosis = b.Record(r.Account, p, err)
	default:
		r.Diagnosis = diag.Classify(err, diag.Account{}, b.opts.Now())
	}
	return r
}

// refuseAs is Refuse for a failure of account a's login that the caller
// classified already as d: it records d and sorts err.
func (b *Bridge) refuseAs(p Proto, a *Account, err error, d diag.Diagnosis) Refusal {
	r := Refusal{Outcome: OutcomeOf(err), Account: a, Diagnosis: d}
	errors.As(err, &r.Failure)
	b.keep(a, p, d, false)
	return r
}
