package bridge

import (
	"errors"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// appRefusal is a mail server's refusal of an app-only account, with what
// the token the login used granted: Exchange answers every missing setup
// step alike, and the token's roles tell a missing permission from a
// missing Exchange step (see diag's app-only entries).
type appRefusal struct {
	grant tokens.AppGrant
	err   error
}

func (e *appRefusal) Error() string { return e.err.Error() }

func (e *appRefusal) Unwrap() error { return e.err }

// withGrant returns err carrying the grant of token when a is app-only
// and the token reads as an app-only token; otherwise err as it is.
func withGrant(a *Account, token string, err error) error {
	if err == nil || a == nil || !a.App {
		return err
	}
	g, ok := tokens.ReadAppGrant(token)
	if !ok {
		return err
	}
	return &appRefusal{grant: g, err: err}
}

// diagAccount is the account as the diagnosis needs it for err: with the
// grant of the token an app-only login used, when err carries it.
func diagAccount(a *Account, err error) diag.Account {
	d := a.Diag()
	var ar *appRefusal
	if errors.As(err, &ar) {
		g := ar.grant
		d.AppGrant = &g
	}
	return d
}

// DiagWith is Diag for a failure of a login with token: for an app-only
// account it adds what the token grants, when it reads.
func (a *Account) DiagWith(token string) diag.Account {
	d := a.Diag()
	if g, ok := tokens.ReadAppGrant(token); ok && a.App {
		d.AppGrant = &g
	}
	return d
}
