package bridge

import (
	"context"
	"errors"
	"sync"

	"github.com/mailbridge/bridge/bridge/diag"
	"github.com/mailbridge/bridge/tokens"
)

// upstreamLogin runs login, an upstream login with l.Token, and, when the
// upstream refuses that token at its AUTH step (tokenRefused) although the
// token was not fresh (Login.Fresh), tries once more within the same
// client login: the identity platform may have revoked the token before
// its expiry (a password change, Continuous Access Evaluation, an admin's
// "revoke sessions"), so it is dropped, a new one comes through the
// source's one shared refresh, and login runs again with l holding it.
//
// A refusal of a token the platform had just issued is the server's own
// answer (a protocol switched off for the mailbox, say) and is returned
// as it is, for Refuse to classify. That token is remembered for the
// account and protocol until a login there works, so that the next
// logins with it are refused without a refresh each: one refresh per
// token, not per login. The log says which happened. The error is
// login's (for an app-only account carrying what its token granted, see
// withGrant), or the refresh's as a *LoginError.
func (b *Bridge) upstreamLogin(ctx context.Context, p Proto, l *Login, login func() error) error {
	err := login()
	if err == nil {
		b.refusals.forget(l.Account, p)
		return nil
	}
	src := b.Source(l.Account)
	if !tokenRefused(err) || src == nil {
		return withGrant(l.Account, l.Token, err)
	}
	if l.Fresh || b.refusals.known(l.Account, p, l.Token) {
		b.refusals.keep(l.Account, p, l.Token)
		b.dropRoleless(p, l, src)
		return withGrant(l.Account, l.Token, err)
	}
	log := b.log.With("account", l.Account.Email, "proto", p)
	src.Invalidate(l.Token)
	nl, terr := b.takeToken(ctx, src, l.Account, l.User)
	if terr != nil {
		log.Info("token refused; refresh failed", "err", terr)
		return &LoginError{Account: l.Account, Err: terr}
	}
	*l = *nl
	switch err = login(); {
	case err == nil:
		b.refusals.forget(l.Account, p)
		log.Info("token refused; refreshed and retried: ok")
	case tokenRefused(err):
		b.refusals.keep(l.Account, p, l.Token)
		b.dropRoleless(p, l, src)
		log.Info("token refused; refreshed and retried: refused again")
	default:
		log.Info("token refused; refreshed and retried: failed", "err", err)
	}
	return withGrant(l.Account, l.Token, err)
}

// dropRoleless drops an app-only token the upstream refused that lacks
// the role p needs: only a new token can carry the permission once an
// administrator grants it, so the next login asks for one rather than
// waiting for this one to near its expiry. That is one token request per
// refused login while the role is missing; an app-only token costs the
// platform a request, not a rotation.
func (b *Bridge) dropRoleless(p Proto, l *Login, src *tokens.Source) {
	if !l.Account.App {
		return
	}
	if g, ok := tokens.ReadAppGrant(l.Token); ok && !g.HasRole(diag.AppRole(p)) {
		src.Invalidate(l.Token)
	}
}

// takeToken returns a Login for account a as user with a token from src,
// noting whether a refresh brought the token for this call (Login.Fresh).
// Errors are src.Token's.
func (b *Bridge) takeToken(ctx context.Context, src *tokens.Source, a *Account, user string) (*Login, error) {
	began := b.opts.Now()
	tok, err := src.Token(ctx)
	if err != nil {
		return nil, err
	}
	return &Login{Account: a, User: user, Token: tok.AccessToken, Expiry: tok.Expiry, Fresh: src.Fresh(tok.AccessToken, began)}, nil
}

// tokenRefused reports whether err is the upstream's refusal of the token
// at the AUTH step: IMAP NO, POP3 -ERR, SMTP 535. A dial, TLS or greeting
// failure, a broken connection or an SMTP 4xx is not.
func tokenRefused(err error) bool {
	var f *diag.Failure
	if !errors.As(err, &f) || f.Stage != diag.StageAuth || f.Err != nil {
		return false
	}
	return f.Proto != SMTP || f.Code == 535
}

// freshRefusals holds, per account and protocol, the access token the
// upstream refused although it was fresh or already retried. The zero
// value is empty and ready.
type freshRefusals struct {
	mu sync.Mutex
	m  map[refusalKey]string
}

type refusalKey struct {
	email string
	proto Proto
}

func (r *freshRefusals) keep(a *Account, p Proto, token string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.m == nil {
		r.m = map[refusalKey]string{}
	}
	r.m[refusalKey{a.Email, p}] = token
}

func (r *freshRefusals) known(a *Account, p Proto, token string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return token != "" && r.m[refusalKey{a.Email, p}] == token
}

func (r *freshRefusals) forget(a *Account, p Proto) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.m, refusalKey{a.Email, p})
}
