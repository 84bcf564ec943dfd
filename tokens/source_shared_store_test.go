package tokens_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// gatedStore is one process's view of a shared store: it counts reads,
// and holds each write until the test opens the gate, when gate is set.
type gatedStore struct {
	*memStore
	gets    atomic.Int64
	gate    chan struct{} // nil: writes pass at once
	writing chan struct{} // receives when a write waits at the gate
}

func (g *gatedStore) Get(a string) (tokens.Entry, error) {
	g.gets.Add(1)
	return g.memStore.Get(a)
}

func (g *gatedStore) Put(a string, e tokens.Entry) error {
	if g.gate != nil {
		g.writing <- struct{}{}
		<-g.gate
	}
	return g.memStore.Put(a, e)
}

// TestTwoSourcesOneStoreStrictRotation: two processes share a store and a
// platform that takes each refresh token once. A refreshes first and is
// slow to save; B's refresh with the same token is refused meanwhile and
// B marks the account as needing a sign-in. Once A's token is in the
// store, B takes it at its next login (reading the store at most every few
// seconds while it waits) instead of staying stuck until a reload, and
// from then on both keep working.
func TestTwoSourcesOneStoreStrictRotation(t *testing.T) {
	shared := newMemStore()
	e := newEnv(t, tokenstest.Options{RevokeOnRotate: true}, shared)
	storeA := &gatedStore{memStore: shared, gate: make(chan struct{}), writing: make(chan struct{})}
	storeB := &gatedStore{memStore: shared}
	a, b := e.source(storeA), e.source(storeB)
	a.State() // both have read the first refresh token
	b.State()
	ctx := context.Background()

	aDone := make(chan error, 1)
	go func() { _, err := a.Token(ctx); aDone <- err }()
	<-storeA.writing // A holds the rotated token, not saved yet

	if _, err := b.Token(ctx); !errors.Is(err, tokens.ErrNeedsLogin) {
		t.Fatalf("B refreshed with a token the platform had rotated away: %v", err)
	}
	// B's next login looks at the store: nothing new there yet.
	if _, err := b.Token(ctx); !errors.Is(err, tokens.ErrNeedsLogin) {
		t.Fatalf("B before A's save: %v", err)
	}
	storeA.gate <- struct{}{}
	if err := <-aDone; err != nil {
		t.Fatal(err)
	}
	storeA.gate = nil
	if en := shared.entry(t); en.RefreshToken != e.srv.LatestRefresh(testUser) || en.NeedsLogin != "" {
		t.Fatalf("the store after A's save: newest=%v needs_login=%q", en.RefreshToken == e.srv.LatestRefresh(testUser), en.NeedsLogin)
	}

	// Within the same few seconds B answers from memory, without reading
	// the store again.
	gets := storeB.gets.Load()
	for range 10 {
		if _, err := b.Token(ctx); !errors.Is(err, tokens.ErrNeedsLogin) {
			t.Fatalf("B within seconds of its last look at the store: %v", err)
		}
	}
	if n := storeB.gets.Load() - gets; n != 0 {
		t.Errorf("B read the store %d times in 10 logins within a second, want 0", n)
	}
	e.clock.Advance(6 * time.Second)
	if _, err := b.Token(ctx); err != nil {
		t.Fatalf("B is still stuck after A saved a working refresh token: %v", err)
	}
	if st := b.State(); st.NeedsLogin != "" {
		t.Errorf("B: %+v", st)
	}

	// Both go on refreshing, each taking the other's newer token from the
	// store when its own is refused.
	for range 3 {
		e.clock.Advance(2 * time.Hour)
		for name, src := range map[string]*tokens.Source{"A": a, "B": b} {
			if _, err := src.Token(ctx); err != nil {
				t.Fatalf("%s: %v", name, err)
			}
		}
	}
	if en := shared.entry(t); en.NeedsLogin != "" || en.RefreshToken != e.srv.LatestRefresh(testUser) {
		t.Errorf("the store at the end: needs_login=%q newest=%v", en.NeedsLogin, en.RefreshToken == e.srv.LatestRefresh(testUser))
	}
	e.noSecrets(t, "the log", e.logs.String())
}
