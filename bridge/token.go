package bridge

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/oauth2"

	"github.com/mailbridge/bridge/tokens"
)

// ErrNoAccount means the running bridge has no account by the name asked
// for.
var ErrNoAccount = errors.New("bridge: no such account")

// AccessToken returns a fresh access token for the account named email
// (any case): its token account's, from the token source its logins use,
// refreshed first when less than the source's RefreshBefore is left. The
// token carries no refresh token; never log it.
//
// It serves other processes beside a running server (`bridge doctor`,
// and commands that hand a token to clients) through the control socket:
// a second process refreshing the same refresh token would, where the
// platform rotates strictly, leave one of the two holding a refresh token
// that no longer works. Errors: ErrNoAccount, or the token source's (one
// wrapping tokens.ErrNeedsLogin when only a sign-in helps, a
// *tokens.Error for other refusals and network failures).
func (b *Bridge) AccessToken(ctx context.Context, email string) (*Account, *oauth2.Token, error) {
	a := b.Account(email)
	if a == nil {
		return nil, nil, fmt.Errorf("%w: %s is not in the running bridge's config", ErrNoAccount, email)
	}
	src := b.Source(a)
	if src == nil {
		return a, nil, fmt.Errorf("bridge: %s: token account %s is not configured: %w", a.Email, a.TokenAccount(), tokens.ErrNeedsLogin)
	}
	tok, err := src.Token(ctx)
	if err != nil {
		return a, nil, err
	}
	return a, tok, nil
}
