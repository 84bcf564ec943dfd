package tokens

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// Resource hands out access tokens for other scopes than the provider's,
// minted with the Source's refresh token: one sign-in serves Outlook and,
// for example, Microsoft Graph, whose scopes one token request cannot mix
// with Outlook's. Its tokens are cached and refreshed like the Source's
// own, one refresh at a time per resource; the refresh token is the
// Source's, so one rotated by either is saved once and used by both.
//
// A refusal of its scopes never marks the account as needing a sign-in:
// consent or a permission missing for one resource leaves the others
// working, and a refresh token that is no longer good is found out by the
// Source's own next refresh. It is safe for concurrent use.
type Resource struct {
	s      *Source
	op     string
	scopes []string
	key    string
}

// resToken is one Resource's access token and when it came, in the
// Source's map.
type resToken struct {
	tok *oauth2.Token
	got time.Time
}

// Resource returns the handle for scopes. op names its token requests in
// errors (*Error.Op) and logs, such as "graph token". It does no I/O.
func (s *Source) Resource(op string, scopes []string) *Resource {
	sc := append([]string(nil), scopes...)
	return &Resource{s: s, op: op, scopes: sc, key: strings.Join(sc, " ")}
}

// Token returns an access token for r's scopes with more than
// RefreshBefore of its life left, refreshing first when needed. Errors
// are Source.Token's, with the identity platform's answers naming r's op.
// A caller stops waiting after RequestTimeout or when ctx ends; the
// refresh goes on for later callers.
func (r *Resource) Token(ctx context.Context) (*oauth2.Token, error) {
	s := r.s
	s.recheckNeedsLogin()
	if t, err, ok := r.cached(); ok {
		return t, err
	}
	ch := s.group.DoChan("resource "+r.key, func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshBudget)
		defer cancel()
		return r.fetch(rctx)
	})
	wait := time.NewTimer(s.o.RequestTimeout)
	defer wait.Stop()
	var err error
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, res.Err
		}
		return publicToken(res.Val.(*oauth2.Token)), nil
	case <-wait.C:
		err = fmt.Errorf("no token within %v: %w", s.o.RequestTimeout, context.DeadlineExceeded)
	case <-ctx.Done():
		err = fmt.Errorf("waiting for a token: %w", ctx.Err())
	}
	return nil, &Error{Account: s.o.Account, Op: r.op, Err: &url.Error{Op: "Post", URL: s.o.Provider.TokenURL, Err: err}}
}

// Invalidate drops the cached token if it is access, after the resource
// refused it before its expiry.
func (r *Resource) Invalidate(access string) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if t := s.res[r.key]; t != nil && access != "" && t.tok.AccessToken == access {
		delete(s.res, r.key)
		s.log.Info("access token dropped after the server refused it", "for", r.op)
	}
}

// Fresh reports whether access is r's cached token and came from the
// identity platform at or after since, by the Source's clock: a refusal
// of it is the resource's answer, not a token revoked since.
func (r *Resource) Fresh(access string, since time.Time) bool {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	t := s.res[r.key]
	return access != "" && t != nil && t.tok.AccessToken == access && !t.got.Before(since)
}

// cached answers from memory: the Source's needs-login failure, or a
// token with enough life left once the store was read.
func (r *Resource) cached() (*oauth2.Token, error, bool) {
	s := r.s
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.needsLogin != "" {
		return nil, s.needsLoginErr(), true
	}
	if t := s.res[r.key]; s.loaded && t != nil && s.o.Now().Add(s.o.RefreshBefore).Before(t.tok.Expiry) {
		return publicToken(t.tok), nil, true
	}
	return nil, nil, false
}

// fetch runs inside r's single flight, holding the Source's exchange lock
// so that it starts from the newest refresh token.
func (r *Resource) fetch(ctx context.Context) (*oauth2.Token, error) {
	s := r.s
	s.xmu.Lock()
	defer s.xmu.Unlock()
	rt, gen, err := s.grant()
	if err != nil {
		return nil, err
	}
	if t, err, ok := r.cached(); ok {
		return t, err
	}
	if rt != s.unsavedToken() {
		if err := checkWrite(s.o.Store); err != nil {
			return nil, fmt.Errorf("tokens: not refreshing %s for %s, as the %s store cannot save a new refresh token: %w", s.o.Account, r.op, s.o.Store.Name(), err)
		}
	}
	tok, err := s.exchangeScopesWithRetry(ctx, rt, r.scopes, r.op)
	if err != nil {
		s.log.Warn("token request refused", "for", r.op, "err", err)
		return nil, err
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		s.saveRotated(gen, rt, tok.RefreshToken)
	}
	now := s.o.Now()
	s.mu.Lock()
	if s.gen == gen {
		if s.res == nil {
			s.res = map[string]*resToken{}
		}
		s.res[r.key] = &resToken{tok: publicToken(tok), got: now}
	}
	s.mu.Unlock()
	s.log.Info("access token refreshed", "for", r.op, "expires", tok.Expiry, "rotated", tok.RefreshToken != "" && tok.RefreshToken != rt)
	return tok, nil
}
