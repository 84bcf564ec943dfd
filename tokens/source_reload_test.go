package tokens_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestReloadTakesNewSignIn: `bridge login` in another process stores a new
// sign-in while the source holds an access token the platform no longer
// takes; after Reload the next Token refreshes with the new sign-in
// instead of handing out the cached token until it expires.
func TestReloadTakesNewSignIn(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	old, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	e.srv.RevokeSessions(testUser)
	_, rt, _ := e.srv.Issue(testUser)
	if err := store.Put(testUser, tokens.Entry{RefreshToken: rt, Password: "local-pw"}); err != nil {
		t.Fatal(err)
	}
	src.Reload()
	reqs := e.srv.RefreshRequests()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("after a new sign-in and Reload: %v", err)
	}
	if tok.AccessToken == old.AccessToken {
		t.Fatal("the access token of the old sign-in is still handed out after Reload")
	}
	if err := e.srv.Validate(testUser, tok.AccessToken); err != nil {
		t.Errorf("the token after Reload: %v", err)
	}
	if n := e.srv.RefreshRequests() - reqs; n != 1 {
		t.Errorf("%d refreshes after the new sign-in, want 1", n)
	}
	e.noSecrets(t, "log", e.logs.String(), old.AccessToken, tok.AccessToken)
}

// TestReloadAfterLogout: a logout in another process deletes the entry;
// after Reload the cached access token is gone and Token says a sign-in
// is needed, without asking the platform.
func TestReloadAfterLogout(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(testUser); err != nil {
		t.Fatal(err)
	}
	src.Reload()
	reqs := e.srv.RefreshRequests()
	if _, err := src.Token(context.Background()); !errors.Is(err, tokens.ErrNeedsLogin) {
		t.Fatalf("after a logout and Reload: %v, want ErrNeedsLogin", err)
	}
	if st := src.State(); st.NeedsLogin == "" || st.HasRefreshToken || !st.AccessExpiry.IsZero() {
		t.Errorf("state after a logout: %+v", st)
	}
	if n := e.srv.RefreshRequests() - reqs; n != 0 {
		t.Errorf("%d refreshes after a logout, want 0", n)
	}
}

// TestReloadKeepsTokenOfSameSignIn: a Reload with the store unchanged
// (SIGHUP, a password reset) keeps the cached access token; with the
// store unreadable for a moment, it keeps serving it too.
func TestReloadKeepsTokenOfSameSignIn(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	src.Reload()
	again, err := src.Token(context.Background())
	if err != nil || again.AccessToken != first.AccessToken {
		t.Fatalf("after a Reload with the same sign-in: same token %v, err %v", err == nil && again.AccessToken == first.AccessToken, err)
	}
	store.mu.Lock()
	store.failGet = errors.New("keyring locked")
	store.mu.Unlock()
	src.Reload()
	if again, err = src.Token(context.Background()); err != nil || again.AccessToken != first.AccessToken {
		t.Errorf("with the store unreadable after a Reload: same token %v, err %v", err == nil && again.AccessToken == first.AccessToken, err)
	}
	if n := e.srv.RefreshRequests(); n != 1 {
		t.Errorf("%d refreshes, want 1", n)
	}
}

// TestFresh: a token is fresh for a caller that noted the time before the
// refresh that brought it; a later caller, or another token, is not.
func TestFresh(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	began := e.clock.Now()
	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !src.Fresh(tok.AccessToken, began) {
		t.Error("the token a refresh brought for this caller is not fresh")
	}
	if src.Fresh("another", began) || src.Fresh("", began) {
		t.Error("a token not in memory is fresh")
	}
	e.clock.Advance(time.Minute)
	later := e.clock.Now()
	if tok, err = src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if src.Fresh(tok.AccessToken, later) {
		t.Error("a cached token is fresh for a caller that came after its refresh")
	}
}
