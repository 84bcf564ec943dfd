package tokens_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

func (s *memStore) setFailPut(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failPut = err
}

// TestRotatedTokenNotSavedIsKept: with strict rotation (each refresh token
// works once), a rotated refresh token the store refuses (a full disk) is
// the only one left. It is kept in memory, used by the next refresh even
// after a reload, reported as not saved, and written by Flush once the
// store takes it; the account never needs a new sign-in.
func TestRotatedTokenNotSavedIsKept(t *testing.T) {
	tokens.SetSaveRetryWait(t, time.Hour) // no retry in the background here
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, store)
	src := e.source(store)
	store.setFailPut(errors.New("no space left on device"))

	tok, err := src.Token(context.Background())
	if err != nil {
		t.Fatalf("the refresh worked but Token failed: %v", err)
	}
	if err := e.srv.Validate(testUser, tok.AccessToken); err != nil {
		t.Fatal(err)
	}
	st := src.State()
	if !strings.Contains(st.NotSaved, "no space left on device") || !st.HasRefreshToken {
		t.Errorf("state does not say the refresh token is not saved: %+v", st)
	}
	e.noSecrets(t, "state", st.NotSaved+st.LastError)
	if store.entry(t).RefreshToken != e.rt {
		t.Fatal("the store changed although every write fails")
	}

	// A reload (SIGHUP, or another process's `bridge login` for another
	// account) must not go back to the stored token: the platform refuses
	// it now.
	src.Reload()
	e.clock.Advance(2 * time.Hour)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatalf("after a reload: %v", err)
	}
	if n := e.srv.RefreshRequests(); n != 2 {
		t.Errorf("%d refreshes, want 2", n)
	}
	if st := src.State(); st.NeedsLogin != "" || st.NotSaved == "" {
		t.Errorf("after a reload: %+v", st)
	}

	// Shutdown with the store still full: Flush says so.
	if err := src.Flush(); err == nil || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("Flush with a full store: %v", err)
	}
	store.setFailPut(nil)
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	if en := store.entry(t); en.RefreshToken != e.srv.LatestRefresh(testUser) || en.Password != "local-pw" {
		t.Errorf("after Flush: newest refresh token stored=%v, password kept=%v", en.RefreshToken == e.srv.LatestRefresh(testUser), en.Password == "local-pw")
	}
	if st := src.State(); st.NotSaved != "" {
		t.Errorf("still not saved after Flush: %q", st.NotSaved)
	}
	// A restart, from the store alone, still works.
	e.clock.Advance(2 * time.Hour)
	if _, err := e.source(store).Token(context.Background()); err != nil {
		t.Errorf("a new source cannot refresh from the store: %v", err)
	}
}

// TestUnsavedTokenSavedInBackground: a refused save is tried again with
// growing pauses, and lands once the store takes writes again.
func TestUnsavedTokenSavedInBackground(t *testing.T) {
	tokens.SetSaveRetryWait(t, 10*time.Millisecond)
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, store)
	src := e.source(store)
	t.Cleanup(func() { src.Flush() })
	store.setFailPut(errors.New("no space left on device"))
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // a few retries fail
	if src.State().NotSaved == "" {
		t.Fatal("saved although the store refuses every write")
	}
	store.setFailPut(nil)
	deadline := time.Now().Add(5 * time.Second)
	for src.State().NotSaved != "" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if st := src.State(); st.NotSaved != "" {
		t.Fatalf("not saved in the background: %q", st.NotSaved)
	}
	if store.entry(t).RefreshToken != e.srv.LatestRefresh(testUser) {
		t.Error("the store does not hold the newest refresh token")
	}
	if !strings.Contains(e.logs.String(), "saved now") {
		t.Errorf("the log does not say the token was saved:\n%s", e.logs)
	}
	e.noSecrets(t, "log", e.logs.String())
}

// TestUnsavedTokenYieldsToNewSignIn: a `bridge login` that stored a new
// sign-in meanwhile wins over a refresh token not saved yet, which must
// not overwrite it later.
func TestUnsavedTokenYieldsToNewSignIn(t *testing.T) {
	tokens.SetSaveRetryWait(t, time.Hour)
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, store)
	src := e.source(store)
	store.setFailPut(errors.New("no space left on device"))
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	_, fresh, _ := e.srv.Issue(testUser)
	store.mu.Lock()
	store.m[testUser] = tokens.Entry{RefreshToken: fresh, Password: "local-pw"}
	store.failPut = nil
	store.mu.Unlock()
	if err := src.Flush(); err != nil {
		t.Fatal(err)
	}
	if store.entry(t).RefreshToken != fresh {
		t.Fatal("Flush overwrote a newer sign-in")
	}
	src.Reload()
	e.clock.Advance(2 * time.Hour)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := src.State(); st.NotSaved != "" {
		t.Errorf("state: %+v", st)
	}
	// The refresh used the new sign-in (strict rotation: its token is
	// spent and the store holds its successor).
	if got := store.entry(t).RefreshToken; got == fresh || got != e.srv.LatestRefresh(testUser) {
		t.Errorf("the new sign-in was not the one refreshed")
	}
}

// TestNoRefreshWhenStoreCannotWrite: a refresh that would rotate the
// refresh token is not made while the token file cannot be written: the
// stored token stays good at the platform. A cached access token with
// some life left serves meanwhile.
func TestNoRefreshWhenStoreCannotWrite(t *testing.T) {
	t.Setenv(tokens.PassphraseEnv, "")
	store, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, store)
	src := e.source(store)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	tokens.SetBeforeWrite(store, func() error { return errors.New("no space left on device") })

	// 5 minutes left: due for a refresh, still usable.
	e.clock.Advance(55 * time.Minute)
	if _, err := src.Token(context.Background()); err != nil {
		t.Errorf("the cached access token was not handed out: %v", err)
	}
	e.clock.Advance(time.Hour)
	_, err = src.Token(context.Background())
	if err == nil || !strings.Contains(err.Error(), "cannot save") || !strings.Contains(err.Error(), "no space left") {
		t.Errorf("err = %v, want the store's failure", err)
	}
	if errors.Is(err, tokens.ErrNeedsLogin) {
		t.Error("a full disk was taken for a needed sign-in")
	}
	if n := e.srv.RefreshRequests(); n != 1 {
		t.Errorf("%d refreshes with an unwritable store, want none after the first", n-1)
	}
	tokens.SetBeforeWrite(store, nil)
	if _, err := src.Token(context.Background()); err != nil {
		t.Fatal(err)
	}
	if en, _ := store.Get(testUser); en.RefreshToken != e.srv.LatestRefresh(testUser) {
		t.Error("the rotated refresh token is not stored")
	}
}
