package tokenstest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors returned by Validate; the message never contains the token.
var (
	ErrUnknownToken = errors.New("tokenstest: access token was not issued by this platform")
	ErrExpired      = errors.New("tokenstest: access token has expired")
	ErrWrongUser    = errors.New("tokenstest: access token was issued for another user")
	ErrRefused      = errors.New("tokenstest: the user's access tokens are refused")
	ErrRevoked      = errors.New("tokenstest: access token was revoked")
)

type accessRec struct {
	user, scope, clientID string
	app                   string   // client id of an app-only token; user is then ""
	roles                 []string // an app-only token's roles claim
	iat, exp              time.Time
	revoked               bool // InvalidateAccess
}

type refreshRec struct {
	user, scope, clientID string
	revoked               int // AADSTS number that refuses it, 0 when good
}

// issued is one token-endpoint success.
type issued struct {
	access, refresh, id, scope string
	expiry                     time.Time
	lifetime                   time.Duration
}

// issue mints an access token, a refresh token when offline_access was
// granted, and an ID token when openid was asked for. The caller must not
// hold s.mu.
func (s *Server) issue(user, scope, clientID string) issued {
	s.mu.Lock()
	life := s.lifetime
	s.mu.Unlock()
	now := time.Now()
	exp := now.Add(life)
	at := s.mintAccess(user, scope, clientID, now, exp)
	id := s.mintID(user, scope, clientID, now, exp)
	_, offline := resourceScopes(scope)
	rt := ""
	if offline {
		rt = mintRefresh()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.access[at] = &accessRec{user: user, scope: scope, clientID: clientID, iat: now, exp: exp}
	if rt != "" {
		s.refresh[rt] = &refreshRec{user: user, scope: scope, clientID: clientID}
		s.latest[strings.ToLower(user)] = rt
	}
	return issued{access: at, refresh: rt, id: id, scope: scope, expiry: exp, lifetime: life}
}

// Issue mints tokens for user directly, as if user had signed in with the
// three mail scopes and offline_access, for tests that skip sign-in.
func (s *Server) Issue(user string) (access, refresh string, expiry time.Time) {
	t := s.issue(user, defaultScope, s.opts.ClientID)
	return t.access, t.refresh, t.expiry
}

// Validate returns nil when token is a live access token issued for user
// (compared case-insensitively), or a live app-only token (which names
// no user: which mailboxes it opens is the mail server's business), and
// otherwise an error wrapping ErrUnknownToken, ErrExpired, ErrWrongUser,
// ErrRevoked or ErrRefused.
func (s *Server) Validate(user, token string) error {
	s.mu.Lock()
	rec, ok := s.access[token]
	refused := ok && rec.app == "" && s.refused[strings.ToLower(rec.user)]
	s.mu.Unlock()
	switch {
	case !ok:
		return ErrUnknownToken
	case rec.app == "" && !strings.EqualFold(rec.user, user):
		return fmt.Errorf("%w: issued for %s, presented for %s", ErrWrongUser, rec.user, user)
	case !time.Now().Before(rec.exp):
		return fmt.Errorf("%w: expired at %s", ErrExpired, rec.exp.UTC().Format(time.RFC3339))
	case rec.revoked:
		return ErrRevoked
	case refused:
		return fmt.Errorf("%w: %s", ErrRefused, rec.user)
	}
	return nil
}

// RefuseMail makes every access token of user, issued before or after,
// fail Validate and introspect as inactive, while the token endpoint
// still issues them: a mail server checking tokens here then refuses the
// user's XOAUTH2 logins, as Exchange refuses good tokens for a mailbox
// whose IMAP, POP or SMTP AUTH is switched off.
func (s *Server) RefuseMail(user string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.refused[strings.ToLower(user)] = true
}

// Expire makes an access token expire now.
func (s *Server) Expire(access string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.access[access]; ok {
		rec.exp = time.Now()
	}
}

// InvalidateAccess makes every access token issued to user so far fail
// Validate and introspect as inactive before its expiry, while the
// user's refresh tokens keep working and the access tokens they bring
// are good: what Continuous Access Evaluation does to a session after a
// password change or an account re-enabled. It returns how many tokens
// it invalidated.
func (s *Server) InvalidateAccess(user string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, rec := range s.access {
		if strings.EqualFold(rec.user, user) && !rec.revoked {
			rec.revoked = true
			n++
		}
	}
	return n
}

// RevokeSessions revokes every token issued to user so far, as an
// admin's "revoke sessions" does for an Exchange mailbox that evaluates
// access continuously: the access tokens stop working at once
// (InvalidateAccess), and each refresh token gets invalid_grant with
// AADSTS50173. Only a new sign-in helps.
func (s *Server) RevokeSessions(user string) {
	s.InvalidateAccess(user)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, rec := range s.refresh {
		if strings.EqualFold(rec.user, user) {
			rec.revoked = 50173
		}
	}
}

// RevokeRefresh revokes a refresh token, as an admin's "revoke sessions"
// does: using it then gets invalid_grant with AADSTS50173.
func (s *Server) RevokeRefresh(refresh string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rec, ok := s.refresh[refresh]; ok {
		rec.revoked = 50173
	}
}

// LatestRefresh returns the newest refresh token issued for user, so tests
// can see rotation; "" when none was issued.
func (s *Server) LatestRefresh(user string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.latest[strings.ToLower(user)]
}
