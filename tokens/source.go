package tokens

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
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
	// maxSaveWait bounds the pause between two tries to save a rotated
	// refresh token the store refused.
	maxSaveWait = 5 * time.Minute
)

// Refreshing ahead (RefreshAhead). An account is in use while Token was
// called within inUseFor; its token is refreshed in the background once
// it has less than aheadShare of its lifetime more than it needs to be
// handed out (with one-hour tokens: at 36 minutes left, so 24 minutes
// after it came), and background tries are at least aheadGap apart. A
// busy account with one-hour tokens so refreshes every 24 minutes, at
// most 3 times an hour, and never more than 12 times an hour whatever
// the lifetime; an account nobody logs in to stops refreshing an hour
// after its last login.
const (
	inUseFor   = time.Hour
	aheadShare = 10 // percent of the lifetime
	aheadGap   = 5 * time.Minute
)

// saveRetryWait is the pause before the first retry of a failed save; it
// doubles with every failure up to maxSaveWait. Tests shorten it.
var saveRetryWait = time.Second

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
	// App makes the source get its tokens with the client credentials
	// grant (RFC 6749 section 4.4), for an app-only account: the store
	// holds the app's secret or certificate (Entry.AppCredential) instead
	// of a refresh token, and a new token is requested the same way when
	// the current one nears expiry. ClientSecret is not used; Provider
	// should come from Provider.ForApp.
	App bool
	// Store holds the refresh token and receives rotated ones.
	Store Store
	// HTTPClient makes the token requests; nil means a client with a
	// 30 s timeout.
	HTTPClient *http.Client
	// RequestTimeout bounds one token request, and how long Token waits
	// for a refresh: a refresh that takes longer (a platform that does
	// not answer, retries) goes on for later callers. Zero means 10 s.
	RequestTimeout time.Duration
	// RefreshBefore is the least life an access token must have left to
	// be handed out without a refresh; zero means 10 minutes. Half the
	// token's lifetime is needed too, when that is more: Exchange ends a
	// session when the token it began with expires, so a new session gets
	// at least half an hour with one-hour tokens.
	RefreshBefore time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Logger receives refresh events (never a token); nil discards them.
	Logger *slog.Logger
}

// SourceState is a Source's state for `bridge status` and the tray.
type SourceState struct {
	// HasRefreshToken is true when a refresh token is known, or for an
	// app-only account its secret or certificate.
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
	// NotSaved, when not empty, says why the newest refresh token (issued
	// by a refresh that rotated it) is not in the store yet: it is kept in
	// memory, saved again in the background, and by Flush. Status shows
	// it as "not saved: <NotSaved>".
	NotSaved string `json:"not_saved,omitempty"`
}

// Source hands out access tokens for one account, refreshing them with the
// stored refresh token. It is safe for concurrent use; concurrent callers
// share one refresh.
type Source struct {
	o     SourceOptions
	log   *slog.Logger
	group singleflight.Group
	// xmu serialises the exchanges of the refresh token: the access token
	// of the provider's scopes and each Resource's are all minted with it,
	// and a refresh may rotate it, so each exchange must start from the
	// newest one the last exchange saved.
	xmu sync.Mutex

	mu sync.Mutex
	// gen grows with every Reload and Seed, so a refresh that began before
	// one does not put back the state it cleared.
	gen         uint64
	access      *oauth2.Token
	res         map[string]*resToken // Resource access tokens by scopes; they go with access
	loaded      bool                 // rt and needsLogin reflect the store
	rt          string               // newest refresh token known; in app mode the credential
	needsLogin  string               // reason; not empty means fail fast
	needsCause  error                // the failure behind needsLogin, when known
	lastRefresh time.Time            // also when access came from the platform
	lastErr     string
	lastUse     time.Time // the last Token call
	lastAhead   time.Time // the last background refresh tried

	// unsaved is a rotated refresh token the store has not taken yet (it
	// is then also rt, unless a sign-in replaced it); unsavedBase is the
	// refresh token the store held before it, so that saving it later
	// cannot overwrite a newer sign-in. notSaved is why the last save
	// failed; saveTimer retries it after saveWait.
	unsaved, unsavedBase string
	notSaved             string
	saveTimer            *time.Timer
	saveWait, firstWait  time.Duration

	// needsChecked is when recheckNeedsLogin last read the store.
	needsChecked time.Time
}

// NewSource returns a Source for o. It does no I/O: the store is read on
// the first Token or State call.
func NewSource(o SourceOptions) *Source {
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
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
	return &Source{o: o, log: log.With("account", o.Account), firstWait: saveRetryWait}
}

// Token returns an access token with more than half its lifetime (and
// more than RefreshBefore) left, refreshing first when needed; after a
// Reload it reads the store first. The result carries no refresh token.
// Errors: one wrapping ErrNeedsLogin (and the *Error behind it, if any)
// when only `bridge login` helps; an *Error for other refusals and
// network failures; a store error when the store could not take the new
// refresh token a refresh would bring (checked before refreshing; a
// rotated token the store refuses afterwards is kept, see State). A
// caller stops waiting when its ctx ends or after RequestTimeout, and then
// gets the access token in memory if it has some life left, else an
// *Error of a request that got no answer; the shared refresh goes on for
// later callers, bounded by its own deadline.
func (s *Source) Token(ctx context.Context) (*oauth2.Token, error) {
	s.recheckNeedsLogin()
	s.mu.Lock()
	s.lastUse = s.o.Now()
	s.mu.Unlock()
	if t, err, ok := s.cached(); ok {
		return t, err
	}
	ch := s.group.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), refreshBudget)
		defer cancel()
		return s.fetch(rctx)
	})
	wait := time.NewTimer(s.o.RequestTimeout)
	defer wait.Stop()
	select {
	case r := <-ch:
		if r.Err != nil {
			return nil, r.Err
		}
		return publicToken(r.Val.(*oauth2.Token)), nil
	case <-wait.C:
		return s.notAnswered(fmt.Errorf("no token within %v: %w", s.o.RequestTimeout, context.DeadlineExceeded))
	case <-ctx.Done():
		return s.notAnswered(fmt.Errorf("waiting for a token: %w", ctx.Err()))
	}
}

// notAnswered is Token's answer to a caller that stopped waiting for the
// refresh under way: like a failed refresh, the access token in memory if
// it has some life left, else an *Error of the token endpoint's that got
// no answer.
func (s *Source) notAnswered(err error) (*oauth2.Token, error) {
	s.mu.Lock()
	a := s.access
	s.mu.Unlock()
	if a != nil && s.o.Now().Add(minUsable).Before(a.Expiry) {
		return publicToken(a), nil
	}
	return nil, &Error{Account: s.o.Account, Op: "refresh", Err: &url.Error{Op: "Post", URL: s.o.Provider.TokenURL, Err: err}}
}

// Reload forgets the needs-login mark and makes the next call read the
// store before anything is handed out (after SIGHUP, or when `bridge
// login`, `logout` or `password --reset` ran in another process). When
// the store holds another refresh token than the one in memory (a new
// sign-in), or none (a logout), the cached access token goes too, so the
// next login uses the new sign-in or says that one is needed; otherwise
// it stays usable. A rotated refresh token not saved yet stays as well:
// the store holds only the one it replaced, which the platform may no
// longer take. The store's entry wins over it only when it is a new
// sign-in (see load).
func (s *Source) Reload() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gen++
	s.loaded, s.needsLogin, s.needsCause = false, "", nil
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

// Fresh reports whether access is the token in memory and the identity
// platform issued it (a refresh, or a sign-in handed to Seed) at or
// after since, by the Source's clock. A caller that notes the time before
// Token learns whether the token was fetched for it: a mail server that
// refuses such a token refuses what the platform just vouched for, while
// an older one may have been revoked since it came.
func (s *Source) Fresh(access string, since time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return access != "" && s.access != nil && s.access.AccessToken == access && !s.lastRefresh.Before(since)
}

// RefreshAhead refreshes the access token in memory before a login needs
// it, so that logins find one with most of its life left and do not wait
// for the platform: it does so when the account is in use (Token was
// called within the last hour), the token is near the point where it
// would no longer be handed out, and no background refresh was tried in
// the last 5 minutes (the constants above give the resulting bounds).
// It does nothing for an account without a token in memory or that needs
// a sign-in. A failure follows the rules of every refresh: only a refusal
// of the refresh token marks the account, and a network failure keeps
// every token. It waits for the refresh, which ends early when ctx does.
// `bridge serve` calls it for each source every minute.
func (s *Source) RefreshAhead(ctx context.Context) {
	s.mu.Lock()
	now := s.o.Now()
	due := s.loaded && s.needsLogin == "" && s.access != nil &&
		now.Sub(s.lastUse) < inUseFor && now.Sub(s.lastAhead) >= aheadGap &&
		now.Add(s.keepLocked()+s.lifetimeLocked()*aheadShare/100).After(s.access.Expiry)
	if due {
		s.lastAhead = now
	}
	s.mu.Unlock()
	if !due {
		return
	}
	s.log.Debug("refreshing the access token ahead of need")
	ch := s.group.DoChan("refresh", func() (any, error) {
		rctx, cancel := context.WithTimeout(ctx, refreshBudget)
		defer cancel()
		return s.refresh(rctx)
	})
	select {
	case <-ch:
	case <-ctx.Done():
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
		s.loaded, s.rt, s.needsLogin, s.needsCause, s.res = true, t.RefreshToken, "", nil, nil
		s.dropUnsavedLocked()
	}
	s.lastErr = ""
}

// Flush saves a rotated refresh token the store refused before, and stops
// the retries in the background. Call it at shutdown, after the last
// Token call. It returns nil when nothing was waiting, when the save
// worked, or when the store holds a newer sign-in meanwhile; otherwise the
// store's error (the token then stays in memory only, and the next start
// may need a new sign-in).
func (s *Source) Flush() error {
	s.mu.Lock()
	if s.saveTimer != nil {
		s.saveTimer.Stop()
		s.saveTimer = nil
	}
	rt, base := s.unsaved, s.unsavedBase
	s.mu.Unlock()
	if rt == "" {
		return nil
	}
	err := s.saveRefreshToken(base, rt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved != rt {
		return nil
	}
	s.settleSaveLocked(err, false)
	if err != nil && !errors.Is(err, errStoreMoved) {
		return err
	}
	return nil
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
		NotSaved:        s.notSaved,
	}
	if s.access != nil {
		st.AccessExpiry = s.access.Expiry
	}
	return st
}

// needsLoginRecheck is how often, at most, a source that needs a sign-in
// reads the store again (recheckNeedsLogin).
const needsLoginRecheck = 5 * time.Second

// recheckNeedsLogin lets a needs-login mark go when the store now holds
// another refresh token than the one refused, and no needs-login mark of
// its own: another process on the same store (a second `bridge serve`, a
// `bridge login`) refreshed or signed in meanwhile. With strict rotation
// that is how two processes meet: the one whose refresh lost the race is
// refused, marks the account, and then the winner saves the new refresh
// token. The store is read at most once per needsLoginRecheck, so a
// needs-login answer stays cheap.
func (s *Source) recheckNeedsLogin() {
	s.mu.Lock()
	now := s.o.Now()
	if s.needsLogin == "" || !s.needsChecked.IsZero() && now.Sub(s.needsChecked) < needsLoginRecheck {
		s.mu.Unlock()
		return
	}
	s.needsChecked = now
	refused := s.rt
	s.mu.Unlock()
	e, err := s.o.Store.Get(s.o.Account)
	if err != nil || s.grantOf(e) == "" || s.grantOf(e) == refused || e.NeedsLogin != "" {
		return
	}
	s.log.Info("the store holds another grant than the one refused; trying it")
	s.Reload()
}

// cached answers from memory when it can: the fast needs-login failure or,
// once the store was read since the last Reload, an access token with
// enough life left.
func (s *Source) cached() (*oauth2.Token, error, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.needsLogin != "" {
		return nil, s.needsLoginErr(), true
	}
	if s.loaded && s.usableLocked() {
		return publicToken(s.access), nil, true
	}
	return nil, nil, false
}

// usableLocked reports whether the access token in memory may be handed
// out; s.mu must be held.
func (s *Source) usableLocked() bool {
	return s.access != nil && s.o.Now().Add(s.keepLocked()).Before(s.access.Expiry)
}

// keepLocked is the life the access token in memory must have left to be
// handed out: half its lifetime, and at least RefreshBefore. s.mu must be
// held and s.access set.
func (s *Source) keepLocked() time.Duration {
	return max(s.o.RefreshBefore, s.lifetimeLocked()/2)
}

// lifetimeLocked is how long the access token in memory was issued for;
// s.mu must be held and s.access set.
func (s *Source) lifetimeLocked() time.Duration {
	return s.access.Expiry.Sub(s.lastRefresh)
}

// fetch runs inside the single flight: it reads the store when a Reload
// asked for it, answers from memory when it can (a refresh that just
// finished may have done the work), and refreshes otherwise.
func (s *Source) fetch(ctx context.Context) (*oauth2.Token, error) {
	s.mu.Lock()
	loaded, gen := s.loaded, s.gen
	s.mu.Unlock()
	if !loaded {
		if _, err := s.load(gen); err != nil {
			s.mu.Lock()
			defer s.mu.Unlock()
			if !errors.Is(err, ErrNeedsLogin) && s.usableLocked() {
				// The store cannot be read now; what it held when it was
				// read last still serves.
				return publicToken(s.access), nil
			}
			return nil, err
		}
	}
	if t, err, ok := s.cached(); ok {
		return t, err
	}
	return s.refresh(ctx)
}

// grant returns the refresh token to exchange and the generation it
// belongs to, reading the store first when it was not read since the
// last Reload. The caller holds s.xmu.
func (s *Source) grant() (rt string, gen uint64, err error) {
	s.mu.Lock()
	loaded, gen, rt := s.loaded, s.gen, s.rt
	s.mu.Unlock()
	if !loaded {
		rt, err = s.load(gen)
	}
	return rt, gen, err
}

// refresh runs inside the single flight.
func (s *Source) refresh(ctx context.Context) (*oauth2.Token, error) {
	s.xmu.Lock()
	defer s.xmu.Unlock()
	rt, gen, err := s.grant()
	if err != nil {
		return nil, err
	}
	// A refresh may rotate the refresh token (Microsoft's always do), and
	// with strict rotation that burns the stored one: make sure the store
	// can take the new one first. A token already waiting to be saved has
	// no stored one left to protect.
	if !s.o.App && rt != s.unsavedToken() {
		if err := checkWrite(s.o.Store); err != nil {
			return s.fallback(fmt.Errorf("tokens: not refreshing %s, as the %s store cannot save a new refresh token: %w", s.o.Account, s.o.Store.Name(), err))
		}
	}
	tok, err := s.exchangeWithRetry(ctx, rt)
	var te *Error
	if errors.As(err, &te) && s.grantRefused(te) {
		s.mu.Lock()
		if s.unsaved == rt { // the platform no longer takes it: nothing to save
			s.dropUnsavedLocked()
		}
		s.mu.Unlock()
		// Another process may have signed in again since the store was
		// read; its refresh token deserves one try before giving up.
		if e, gerr := s.o.Store.Get(s.o.Account); gerr == nil && s.grantOf(e) != "" && s.grantOf(e) != rt && e.NeedsLogin == "" {
			s.log.Info("grant refused; trying the newer one in the store", "code", te.Code, "aadsts", te.AADSTS)
			rt = s.grantOf(e)
			s.commit(gen, func() { s.rt = rt })
			tok, err = s.exchangeWithRetry(ctx, rt)
		}
	}
	if err != nil {
		if errors.As(err, &te) && s.grantRefused(te) {
			return nil, s.markNeedsLogin(gen, rt, te)
		}
		return s.fallback(err)
	}
	rotated := tok.RefreshToken != "" && tok.RefreshToken != rt
	if rotated {
		s.saveRotated(gen, rt, tok.RefreshToken)
	}
	now := s.o.Now()
	s.mu.Lock()
	s.access = publicToken(tok)
	s.lastRefresh, s.lastErr = now, ""
	s.mu.Unlock()
	s.log.Info("access token refreshed", "expires", tok.Expiry, "rotated", rotated)
	return tok, nil
}

// grantOf is what e holds for this source to get tokens with: the refresh
// token, or in app mode the app's credential.
func (s *Source) grantOf(e Entry) string {
	if s.o.App {
		return e.AppCredential
	}
	return e.RefreshToken
}

// grantRefused reports whether te refuses the grant itself, which only
// `bridge login` replaces: a refresh token's invalid_grant or
// interaction_required, or in app mode the credential's invalid_client
// (a wrong, expired or unregistered secret or certificate) or
// unauthorized_client (no such app in the tenant).
func (s *Source) grantRefused(te *Error) bool {
	if s.o.App {
		return !te.Temporary() && (te.Code == "invalid_client" || te.Code == "unauthorized_client")
	}
	return te.NeedsLogin()
}

// saveRotated writes a rotated refresh token before its access token is
// used. When the store refuses it, the token is not thrown away (the
// platform may already refuse the one it replaced): it stays in memory as
// the one to refresh with, is saved again in the background and by Flush,
// and State reports it as not saved.
func (s *Source) saveRotated(gen uint64, used, rt string) {
	s.mu.Lock()
	base := used
	if s.unsaved != "" && s.unsaved == used {
		base = s.unsavedBase // the store still holds the token before the first unsaved one
	}
	s.mu.Unlock()
	err := s.saveRefreshToken(base, rt)
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		if s.unsaved == used {
			s.dropUnsavedLocked()
			s.log.Info("the refresh token that was not saved is replaced by a saved one")
		}
		if s.gen == gen {
			s.rt = rt
		}
	case errors.Is(err, errStoreMoved):
		// A new sign-in (or a logout) replaced the entry meanwhile; it
		// wins, and the next refresh reads it.
		s.dropUnsavedLocked()
		if s.gen == gen {
			s.loaded, s.rt = false, ""
		}
		s.log.Warn("the store holds another refresh token than the one just refreshed (a new sign-in, a logout, or another process's refresh); keeping the store's")
	case s.rt != used && s.rt != base && s.rt != "":
		// A sign-in in this process (Seed) replaced the token meanwhile.
	default:
		s.unsaved, s.unsavedBase, s.rt, s.loaded = rt, base, rt, true
		s.log.Error("saving the rotated refresh token failed; keeping it in memory and retrying", "store", s.o.Store.Name(), "err", err)
		s.settleSaveLocked(err, true)
	}
}

// settleSaveLocked records the outcome of a save of s.unsaved and, when
// it failed and retry is set, schedules the next try. s.mu must be held.
func (s *Source) settleSaveLocked(err error, retry bool) {
	switch {
	case err == nil:
		s.log.Info("the rotated refresh token is saved now")
		s.dropUnsavedLocked()
	case errors.Is(err, errStoreMoved):
		s.log.Warn("the store holds another sign-in now; dropping the refresh token that was not saved")
		s.dropUnsavedLocked()
		s.loaded, s.rt = false, ""
	default:
		s.notSaved = err.Error()
		if !retry {
			return
		}
		if s.saveWait = min(2*s.saveWait, maxSaveWait); s.saveWait == 0 {
			s.saveWait = s.firstWait
		}
		if s.saveTimer != nil {
			s.saveTimer.Stop()
		}
		s.saveTimer = time.AfterFunc(s.saveWait, s.retrySave)
	}
}

// retrySave runs on saveTimer.
func (s *Source) retrySave() {
	s.mu.Lock()
	rt, base := s.unsaved, s.unsavedBase
	s.mu.Unlock()
	if rt == "" {
		return
	}
	err := s.saveRefreshToken(base, rt)
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.unsaved == rt { // else a newer rotation or a sign-in took over
		s.settleSaveLocked(err, true)
	}
}

// dropUnsavedLocked forgets the unsaved refresh token and stops retrying;
// s.mu must be held.
func (s *Source) dropUnsavedLocked() {
	s.unsaved, s.unsavedBase, s.notSaved, s.saveWait = "", "", "", 0
	if s.saveTimer != nil {
		s.saveTimer.Stop()
		s.saveTimer = nil
	}
}

func (s *Source) unsavedToken() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.unsaved
}

// checkWrite asks the store, when it can tell, whether a write would
// work now.
func checkWrite(st Store) error {
	if c, ok := st.(interface{ CheckWrite() error }); ok {
		return c.CheckWrite()
	}
	return nil
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
// the reason the account cannot refresh. A rotated refresh token not
// saved yet stays the one to use while the store holds the token it
// replaced (or cannot be read); any other entry, or none, is a new
// sign-in or a logout, and wins.
func (s *Source) load(gen uint64) (string, error) {
	e, err := s.o.Store.Get(s.o.Account)
	s.mu.Lock()
	if s.unsaved != "" {
		if (err != nil && !errors.Is(err, ErrNotFound)) || (err == nil && (e.RefreshToken == s.unsavedBase || e.RefreshToken == s.unsaved)) {
			rt := s.unsaved
			if s.gen == gen {
				s.loaded, s.rt = true, rt
			}
			s.mu.Unlock()
			return rt, nil
		}
		s.log.Warn("the store holds another sign-in now; dropping the refresh token that was not saved")
		s.dropUnsavedLocked()
	}
	s.mu.Unlock()
	// The access token in memory came with the sign-in the source knew;
	// a logout, a needs-login mark or another sign-in in the store ends it.
	grant := s.grantOf(e)
	switch {
	case errors.Is(err, ErrNotFound):
		s.commit(gen, func() {
			s.loaded, s.rt, s.needsCause, s.access, s.res = true, "", err, nil, nil
			s.needsLogin = "no sign-in is stored in the " + s.o.Store.Name() + " store"
		})
	case err != nil:
		err = fmt.Errorf("tokens: %s for %s: %w", s.op(), s.o.Account, err)
		s.setLastErr(err)
		return "", err
	case e.NeedsLogin != "" || grant == "" || s.o.App && !parses(grant):
		reason := e.NeedsLogin
		switch {
		case reason != "":
		case grant != "":
			reason = "the stored app credential cannot be read"
		case s.o.App:
			reason = "no app secret or certificate is stored"
		default:
			reason = "no refresh token is stored"
		}
		s.commit(gen, func() {
			s.loaded, s.rt, s.needsLogin, s.needsCause, s.access, s.res = true, grant, reason, nil, nil, nil
		})
	default:
		s.commit(gen, func() {
			if grant != s.rt {
				s.access, s.res = nil, nil
			}
			s.loaded, s.rt = true, grant
		})
		return grant, nil
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
		if s.grantOf(*e) != rt {
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
		return &needsLoginError{account: s.o.Account, reason: reason, cause: te, app: s.o.App}
	case err != nil:
		s.log.Warn("could not record needs-login in the store", "err", err)
	}
	s.commit(gen, func() { s.needsLogin, s.needsCause, s.loaded = reason, te, true })
	s.setLastErr(te)
	s.log.Error("account needs a new sign-in", "reason", reason)
	return &needsLoginError{account: s.o.Account, reason: reason, cause: te, app: s.o.App}
}

// errStoreMoved stops an Update whose entry no longer holds the refresh
// token the change was about.
var errStoreMoved = errors.New("tokens: the stored entry changed meanwhile")

// saveRefreshToken writes a rotated refresh token, keeping the entry's
// other fields (the local password) and clearing any needs-login mark. It
// writes only over base (the token the rotation replaced) or rt itself:
// any other entry, or none, is a sign-in or logout that happened
// meanwhile, and the save returns an error wrapping errStoreMoved.
func (s *Source) saveRefreshToken(base, rt string) error {
	err := Update(s.o.Store, s.o.Account, func(e *Entry) error {
		if e.RefreshToken != base && e.RefreshToken != rt {
			return errStoreMoved
		}
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
	return &needsLoginError{account: s.o.Account, reason: s.needsLogin, cause: s.needsCause, app: s.o.App}
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
	app             bool // an app-only account: `bridge login --app`
}

func (e *needsLoginError) Error() string {
	if e.app {
		return fmt.Sprintf("tokens: %s has no usable app secret or certificate: %s; run `bridge login %s --app`", e.account, e.reason, e.account)
	}
	return fmt.Sprintf("tokens: %s must sign in again: %s; run `bridge login %s`", e.account, e.reason, e.account)
}

// parses reports whether an app credential can be read.
func parses(cred string) bool {
	_, err := ParseAppCredential(cred)
	return err == nil
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
