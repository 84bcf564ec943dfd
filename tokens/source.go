package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/sync/singleflight"
)

// Refresh pacing. A temporary failure (network, 5xx, 429) is tried
// maxAttempts times in all, waiting retryWait, then twice that; a
// Retry-After up to maxRetryAfter is honoured. refreshBudget bounds one
// whole refresh, whoever is waiting for it.
const (
	maxAttempts   = 3
	retryWait     = 500 * time.Millisecond
	maxRetryAfter = 10 * time.Second
	refreshBudget = 2 * time.Minute
	// minUsable is how much life an access token must have left to be
	// handed out when an early refresh failed for a passing reason.
	minUsable = time.Minute
)

// SourceOptions configures a Source. Account, Provider and Store are
// required; every other zero value has a default.
type SourceOptions struct {
	// Account is the address whose tokens these are (the store key).
	Account string
	// Provider gives the token endpoint and the scopes sent on refresh.
	Provider Provider
	// ClientID is the OAuth client; ClientSecret is empty for public
	// clients.
	ClientID, ClientSecret string
	// Store holds the refresh token and receives rotated ones.
	Store Store
	// HTTPClient makes the token requests; nil means a client with a
	// 30 s timeout.
	HTTPClient *http.Client
	// RefreshBefore is how much life an access token must have left to be
	// handed out without a refresh; zero means 10 minutes. Exchange ends a
	// session when the token it began with expires, so a fresh token gives
	// a new session time to work.
	RefreshBefore time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refresh events (never a token); nil discards them.
	Logger *slog.Logger
}

// SourceState is a Source's state for `bridge status` and the tray.
type SourceState struct {
	// HasRefreshToken is true when a refresh token is known.
	HasRefreshToken bool `json:"has_refresh_token"`
	// AccessExpiry is when the access token in memory expires; zero when
	// there is none.
	AccessExpiry time.Time `json:"access_expiry,omitzero"`
	// LastRefresh is when the last refresh succeeded; zero if none did.
	LastRefresh time.Time `json:"last_refresh,omitzero"`
	// NeedsLogin, when not empty, says why `bridge login` must run again.
	NeedsLogin string `json:"needs_login,omitempty"`
	// LastError is the last refresh failure, cleared by a success.
	LastError string `json:"last_error,omitempty"`
}

// Source hands out access tokens for one account, refreshing them with the
// stored refresh token. It is safe for concurrent use; concurrent callers
// share one refresh.
type Source struct {
	o     SourceOptions
	log   *slog.Logger
	group singleflight.Group

	mu sync.Mutex
	// gen grows with every Reload and Seed, so a refresh that began before
	// one does not put back the state it cleared.
	gen         uint64
	access      *oauth2.Token
	loaded      bool   // rt and needsLogin reflect the store
	rt          string // newest refresh token known
	needsLogin  string // reason; not empty means fail fast
	needsCause  error  // the failure behind needsLogin, when known
	lastRefresh time.Time
	lastErr     string
}

// NewSource returns a Source for o. It does no I/O: the store is read on
// the first Token or State call.
func NewSource(o SourceOptions) *Source {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.RefreshBefore <= 0 {
		o.RefreshBefore = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	log := o.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Source{o: o, log: log.With("account", o.Account)}
}

// Token returns an access token with more than RefreshBefore left,
// refreshing first when needed. The result carries no refresh token.
// Errors: one wrapping ErrNeedsLogin (and the *Error behind it, if any)
// when only `bridge login` helps; an *Error for other refusals and
// network failures; a store error when a rotated refresh token could not
// be saved. A caller whose ctx ends stops waiting; the shared refresh goes
// on for the other callers, bounded by its own deadline.
func (s *Source) Token(ctx context.Context) (*oauth2.Token, error) {
	if t, err, ok := s.cached(); ok {
		return t, err
	}
	ch := s.group.DoChan("refresh", func() (any, error) {
		// A refresh that just finished may already have done the work.
		if t, err, ok := s.cached(); ok {
			return t, err
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshBudget)
		defer cancel()
		return s.refresh(rctx)
	})
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return publicToken(r.Val.(*oauth2.Token)), nil
	case <-ctx.Done():
		return nil, fmt.Errorf("tokens: waiting for a token for %s: %w", s.o.Account, ctx.Err())
	}
}

// Reload forgets the cached refresh token and needs-login mark, so the
// next call reads the store again (after SIGHUP, or when another process
// ran `bridge login`). A cached access token stays usable.
func (s *Source) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.loaded, s.rt, s.needsLogin, s.needsCause = false, "", "", nil
}

// Invalidate drops the cached access token if it is access, so that the
// next Token call refreshes. Exchange ends a session with "Session
// invalidated - AccessTokenExpired" when it no longer takes a token, even
// one whose expiry has not passed by our clock; handing it out again would
// only fail the next login. A different cached token (a refresh already
// replaced it) is kept.
func (s *Source) Invalidate(access string) {
	if access == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.access != nil && s.access.AccessToken == access {
		s.access = nil
		s.log.Info("access token dropped after the server refused it")
	}
}

// Seed keeps a token just obtained by a sign-in: its access token serves
// callers until it nears expiry, and its refresh token (if any) replaces
// the cached one and clears a needs-login mark. Seed does not write the
// store; the sign-in does that.
func (s *Source) Seed(t *oauth2.Token) {
	if t == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	if t.AccessToken != "" {
		s.access = publicToken(t)
		s.lastRefresh = s.o.Now()
	}
	if t.RefreshToken != "" {
		s.loaded, s.rt, s.needsLogin, s.needsCause = true, t.RefreshToken, "", nil
	}
	s.lastErr = ""
}

// State reports the source's state. The first call may read the store, so
// that an account not yet used shows whether it has a refresh token.
func (s *Source) State() SourceState {
	s.mu.Lock()
	loaded, gen := s.loaded, s.gen
	s.mu.Unlock()
	if !loaded {
		s.load(gen) // its error is recorded in lastErr
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	st := SourceState{
		HasRefreshToken: s.rt != "",
		LastRefresh:     s.lastRefresh,
		NeedsLogin:      s.needsLogin,
		LastError:       s.lastErr,
	}
	if s.access != nil {
		st.AccessExpiry = s.access.Expiry
	}
	return st
}

// cached answers from memory when it can: the fast needs-login failure or
// an access token with enough life left.
func (s *Source) cached() (*oauth2.Token, error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.needsLogin != "" {
		return nil, s.needsLoginErr(), true
	}
	if s.access != nil && s.o.Now().Add(s.o.RefreshBefore).Before(s.access.Expiry) {
		return publicToken(s.access), nil, true
	}
	return nil, nil, false
}

// refresh runs inside the single flight.
func (s *Source) refresh(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	loaded, gen, rt := s.loaded, s.gen, s.rt
	s.mu.Unlock()
	if !loaded {
		var err error
		if rt, err = s.load(gen); err != nil {
			return nil, err
		}
	}
	tok, err := s.exchangeWithRetry(ctx, rt)
	var te *Error
	if errors.As(err, &te) && te.NeedsLogin() {
		// Another process may have signed in again since the store was
		// read; its refresh token deserves one try before giving up.
		if e, gerr := s.o.Store.Get(s.o.Account); gerr == nil && e.RefreshToken != "" && e.RefreshToken != rt && e.NeedsLogin == "" {
			s.log.Info("refresh token refused; trying the newer one in the store", "code", te.Code, "aadsts", te.AADSTS)
			rt = e.RefreshToken
			s.commit(gen, func() { s.rt = rt })
			tok, err = s.exchangeWithRetry(ctx, rt)
		}
	}
	if err != nil {
		if errors.As(err, &te) && te.NeedsLogin() {
			return nil, s.markNeedsLogin(gen, rt, te)
		}
		return s.fallback(err)
	}
	if tok.RefreshToken != "" && tok.RefreshToken != rt {
		// Rotation: the new refresh token must be safe in the store before
		// the new access token is used, or a crash could strand the
		// account with a refresh token the platform has already replaced.
		if err := s.saveRefreshToken(tok.RefreshToken); err != nil {
			s.commit(gen, func() { s.rt = tok.RefreshToken })
			s.setLastErr(err)
			s.log.Error("saving the rotated refresh token failed", "store", s.o.Store.Name(), "err", err)
			return nil, err
		}
	}
	now := s.o.Now()
	s.mu.Lock()
	if s.gen == gen && tok.RefreshToken != "" {
		s.rt = tok.RefreshToken
	}
	s.access = publicToken(tok)
	s.lastRefresh, s.lastErr = now, ""
	s.mu.Unlock()
	s.log.Info("access token refreshed", "expires", tok.Expiry, "rotated", tok.RefreshToken != "" && tok.RefreshToken != rt)
	return tok, nil
}

// fallback handles a refresh failure that is not a needs-login: it keeps
// every token, records the error and, when the access token in memory still
// has some life, hands that out instead of failing a login.
func (s *Source) fallback(err error) (*oauth2.Token, error) {
	s.setLastErr(err)
	s.mu.Lock()
	a := s.access
	s.mu.Unlock()
	if a != nil && s.o.Now().Add(minUsable).Before(a.Expiry) {
		s.log.Warn("refresh failed; using the current access token until it nears expiry", "err", err, "expires", a.Expiry)
		return a, nil
	}
	s.log.Warn("refresh failed", "err", err)
	return nil, err
}

// load reads the store into the cache and returns the refresh token, or
// the reason the account cannot refresh.
func (s *Source) load(gen uint64) (string, error) {
	e, err := s.o.Store.Get(s.o.Account)
	switch {
	case errors.Is(err, ErrNotFound):
		s.commit(gen, func() {
			s.loaded, s.rt, s.needsCause = true, "", err
			s.needsLogin = "no sign-in is stored in the " + s.o.Store.Name() + " store"
		})
	case err != nil:
		err = fmt.Errorf("tokens: refresh for %s: %w", s.o.Account, err)
		s.setLastErr(err)
		return "", err
	case e.NeedsLogin != "" || e.RefreshToken == "":
		reason := e.NeedsLogin
		if reason == "" {
			reason = "no refresh token is stored"
		}
		s.commit(gen, func() { s.loaded, s.rt, s.needsLogin, s.needsCause = true, e.RefreshToken, reason, nil })
	default:
		s.commit(gen, func() { s.loaded, s.rt = true, e.RefreshToken })
		return e.RefreshToken, nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.needsLogin == "" { // a Reload or Seed came in between
		return s.rt, nil
	}
	return "", s.needsLoginErr()
}

// markNeedsLogin records that only a sign-in can help, in memory and in
// the store, keeping the entry's other fields.
func (s *Source) markNeedsLogin(gen uint64, rt string, te *Error) error {
	reason := needsLoginReason(te, s.o.Now())
	err := Update(s.o.Store, s.o.Account, func(e *Entry) error {
		if e.RefreshToken != rt {
			return errStoreMoved
		}
		e.NeedsLogin = reason
		return nil
	})
	switch {
	case errors.Is(err, errStoreMoved):
		// A new sign-in (or a logout) changed the store since it was
		// read; leave it alone and let the next call read it again.
		s.commit(gen, func() { s.loaded, s.rt = false, "" })
		s.setLastErr(te)
		return &needsLoginError{account: s.o.Account, reason: reason, cause: te}
	case err != nil:
		s.log.Warn("could not record needs-login in the store", "err", err)
	}
	s.commit(gen, func() { s.needsLogin, s.needsCause, s.loaded = reason, te, true })
	s.setLastErr(te)
	s.log.Error("account needs a new sign-in", "reason", reason)
	return &needsLoginError{account: s.o.Account, reason: reason, cause: te}
}

// errStoreMoved stops an Update whose entry no longer holds the refresh
// token the change was about.
var errStoreMoved = errors.New("tokens: the stored entry changed meanwhile")

// saveRefreshToken writes a rotated refresh token, keeping the entry's
// other fields (the local password) and clearing any needs-login mark.
func (s *Source) saveRefreshToken(rt string) error {
	err := Update(s.o.Store, s.o.Account, func(e *Entry) error {
		e.RefreshToken, e.Updated, e.NeedsLogin = rt, s.o.Now(), ""
		return nil
	})
	if err != nil {
		return fmt.Errorf("tokens: saving the new refresh token for %s: %w", s.o.Account, err)
	}
	return nil
}

// commit applies f under the lock unless a Reload or Seed happened since
// gen was read.
func (s *Source) commit(gen uint64, f func()) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gen == gen {
		f()
	}
}

func (s *Source) setLastErr(err error) {
	s.mu.Lock()
	s.lastErr = err.Error()
	s.mu.Unlock()
}

// needsLoginErr builds the fast failure; s.mu must be held.
func (s *Source) needsLoginErr() error {
	return &needsLoginError{account: s.o.Account, reason: s.needsLogin, cause: s.needsCause}
}

// publicToken copies what callers need, leaving the refresh token out.
func publicToken(t *oauth2.Token) *oauth2.Token {
	return &oauth2.Token{AccessToken: t.AccessToken, TokenType: t.TokenType, Expiry: t.Expiry}
}

// needsLoginError is a failure only `bridge login` can fix. It wraps
// ErrNeedsLogin and, when there is one, the failure behind it.
type needsLoginError struct {
	account, reason string
	cause           error
}

func (e *needsLoginError) Error() string {
	return fmt.Sprintf("tokens: %s must sign in again: %s; run `bridge login %s`", e.account, e.reason, e.account)
}

func (e *needsLoginError) Unwrap() []error {
	if e.cause == nil {
		return []error{ErrNeedsLogin}
	}
	return []error{ErrNeedsLogin, e.cause}
}

// needsLoginReason words a refusal for Entry.NeedsLogin and status:
// the AADSTS number and its meaning, or the OAuth code and description.
func needsLoginReason(e *Error, now time.Time) string {
	var b strings.Builder
	if e.AADSTS != 0 {
		fmt.Fprintf(&b, "AADSTS%d", e.AADSTS)
	} else {
		b.WriteString(e.Code)
	}
	if m := Meaning(e.AADSTS); m != "" {
		fmt.Fprintf(&b, " (%s)", m)
	} else if d := firstLine(e.Description); d != "" {
		d = strings.TrimSpace(strings.TrimPrefix(d, fmt.Sprintf("AADSTS%d:", e.AADSTS)))
		if len(d) > 200 {
			d = d[:200] + "..."
		}
		fmt.Fprintf(&b, ": %s", d)
	}
	fmt.Fprintf(&b, ", refused %s", now.UTC().Format(time.RFC3339))
	return b.String()
}
