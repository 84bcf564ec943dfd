package bridge

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// gatedStore is a tokens.Store in memory whose next Get can be held, so a
// test can put a Reload between a store read and what is done with it.
type gatedStore struct {
	mu      sync.Mutex
	m       map[string]tokens.Entry
	hold    chan struct{} // when set, the next Get reads, signals read, and waits
	read    chan struct{}
	release chan struct{}
}

func (s *gatedStore) Get(a string) (tokens.Entry, error) {
	s.mu.Lock()
	e, ok := s.m[a]
	hold := s.hold
	s.hold = nil
	s.mu.Unlock()
	if hold != nil {
		close(s.read)
		<-s.release
	}
	if !ok {
		return tokens.Entry{}, tokens.ErrNotFound
	}
	return e, nil
}

func (s *gatedStore) Put(a string, e tokens.Entry) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[a] = e
	return nil
}

func (s *gatedStore) Delete(a string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, a)
	return nil
}

func (s *gatedStore) Name() string { return "memory" }

// TestPasswordReadDuringReloadIsNotCached: a login that read the local
// password from the store just before `bridge password --reset` and a
// reload must not put the old password back into the cache: the new one
// has to work, and the old one must not, without another reload.
func TestPasswordReadDuringReloadIsNotCached(t *testing.T) {
	const email = "alice@example.com"
	st := &gatedStore{m: map[string]tokens.Entry{email: {Password: "old-password"}}}
	b, err := New(Options{
		Accounts: []*Account{{Email: email, Mailbox: email}},
		Store:    st,
		Guard:    &Guard{}, // no pause
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	st.mu.Lock()
	st.hold, st.read, st.release = make(chan struct{}), make(chan struct{}), make(chan struct{})
	st.mu.Unlock()
	done := make(chan error, 1)
	go func() {
		_, err := b.Login(ctx, IMAP, email, "old-password", nil, "")
		done <- err
	}()
	<-st.read // the login has read the old password
	st.Put(email, tokens.Entry{Password: "new-password"})
	b.Reload()
	close(st.release)
	<-done // whatever it decided with the password it read

	// No refresh token is stored, so a right password ends in "needs
	// login"; a wrong one in ErrAuthFailed.
	if _, err := b.Login(ctx, IMAP, email, "new-password", nil, ""); errors.Is(err, ErrAuthFailed) {
		t.Error("the new local password is refused after the reload")
	}
	if _, err := b.Login(ctx, IMAP, email, "old-password", nil, ""); !errors.Is(err, ErrAuthFailed) {
		t.Errorf("the old local password still works after the reload: %v", err)
	}
}
