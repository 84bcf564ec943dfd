package tokenstest

import (
	"errors"
	"fmt"
	"slices"
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
	ErrNoMailScope  = errors.New("tokenstest: access token does not grant " + GoogleMailScope)
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
	revoked               int       // AADSTS number that refuses it (any for Google), 0 when good
	issued                time.Time // the sign-in that issued it, for RefreshLifetime
}

// aged reports whether rec outlived Options.RefreshLifetime.
func (s *Server) aged(rec *refreshRec) bool {
	return s.opts.RefreshLifetime > 0 && time.Since(rec.issued) >= s.opts.RefreshLifetime
}

// issued is one token-endpoint success.
type issued struct {
	access, refresh, id, scope string
	expiry                     time.Time
	lifetime                   time.Duration
}

// issue mints an access token, a refresh token when offline is set, and
// an ID token when openid was asked for. The caller must not hold s.mu.
func (s *Server) issue(user, scope, clientID string, offline bool) issued {
	s.mu.Lock()
	life := s.lifetime
	s.mu.Unlock()
	now := time.Now()
	exp := now.Add(life)
	at, id, rt := "", "", ""
	if s.opts.Google {
		at, id = mintGoogleAccess(), s.mintGoogleID(user, scope, clientID, now, exp)
		if offline {
			rt = mintGoogleRefresh()
		}
	} else {
		at, id = s.mintAccess(user, scope, clientID, now, exp), s.mintID(user, scope, clientID, now, exp)
		if offline {
			rt = mintRefresh()
		}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consentLocked(user, clientID, scope)
	s.access[at] = &accessRec{user: user, scope: scope, clientID: clientID, iat: now, exp: exp}
	if rt != "" {
		s.refresh[rt] = &refreshRec{user: user, scope: scope, clientID: clientID, issued: now}
		s.latest[strings.ToLower(user)] = rt
	}
	return issued{access: at, refresh: rt, id: id, scope: scope, expiry: exp, lifetime: life}
}

// Issue mints tokens for user directly, as if user had signed in with the
// three mail scopes and offline_access (Google: the mail scope, offline),
// for tests that skip sign-in.
func (s *Server) Issue(user string) (access, refresh string, expiry time.Time) {
	scope := defaultScope
	if s.opts.Google {
		scope = GoogleMailScope
	}
	t := s.issue(user, scope, s.opts.ClientID, true)
	return t.access, t.refresh, t.expiry
}

// consentKey names the consent user gave to the app clientID.
func consentKey(user, clientID string) string { return strings.ToLower(user) + "\x00" + clientID }

// consentLocked records that user consented to scope's resource scopes for
// clientID, as a sign-in's consent prompt does; s.mu must be held.
func (s *Server) consentLocked(user, clientID, scope string) {
	res, _ := resourceScopes(scope)
	k := consentKey(user, clientID)
	if s.consent[k] == nil {
		s.consent[k] = map[string]bool{}
	}
	for _, sc := range res {
		s.consent[k][sc] = true
	}
}

// consented reports whether user consented to sc for clientID; consent
// given through Issue (no client id) counts for every client. s.mu must
// be held.
func (s *Server) consentedLocked(user, clientID, sc string) bool {
	return s.consent[consentKey(user, clientID)][sc] || s.consent[consentKey(user, "")][sc]
}

// GrantConsent records that user consented to scopes (full scope URIs,
// such as GraphResource+"/Mail.Send") for every client, as an
// administrator's consent for the whole organisation does: refresh tokens
// of user then mint tokens for them. Without it, a refresh for the scopes
// of a resource the user's sign-ins never asked for gets AADSTS65001.
func (s *Server) GrantConsent(user string, scopes ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.consentLocked(user, "", strings.Join(scopes, " "))
}

// TokenInfo is what a resource server learns of an access token.
type TokenInfo struct {
	// User is who the token was issued to.
	User string
	// Audience is the resource it is for: the Outlook resource or
	// GraphResource.
	Audience string
	// Scopes is the scp claim: permission names without the resource.
	Scopes []string
	// ClientID is the app the token was issued to.
	ClientID string
}

// Check returns what token grants when it is a live access token, and
// otherwise an error wrapping ErrUnknownToken, ErrExpired or ErrRevoked,
// for resource servers other than the mail servers (RefuseMail does not
// apply).
func (s *Server) Check(token string) (TokenInfo, error) {
	s.mu.Lock()
	rec, ok := s.access[token]
	var cp accessRec
	if ok {
		cp = *rec
	}
	s.mu.Unlock()
	switch {
	case !ok:
		return TokenInfo{}, ErrUnknownToken
	case !time.Now().Before(cp.exp):
		return TokenInfo{}, fmt.Errorf("%w: expired at %s", ErrExpired, cp.exp.UTC().Format(time.RFC3339))
	case cp.revoked:
		return TokenInfo{}, ErrRevoked
	}
	return TokenInfo{User: cp.user, Audience: audience(cp.scope), Scopes: strings.Fields(scp(cp.scope)), ClientID: cp.clientID}, nil
}

// Validate returns nil when token is a live access token issued for user
// (compared case-insensitively), or a live app-only token (which names
// no user: which mailboxes it opens is the mail server's business), and
// otherwise an error wrapping ErrUnknownToken, ErrExpired, ErrWrongUser,
// ErrRevoked or ErrRefused; in Google mode also ErrNoMailScope, as Gmail
// refuses a token without the mail scope.
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
	case s.opts.Google && !slices.Contains(strings.Fields(rec.scope), GoogleMailScope):
		return ErrNoMailScope
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
// does: using it then gets invalid_grant with AADSTS50173. In Google mode
// it is the user removing the app's access, or a password change: using
// it gets invalid_grant "Token has been expired or revoked.".
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
