package bridge

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/mailbridge/bridge/tokens"
	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// fullStore is a file store whose writes fail while full is set, like a
// disk that filled up.
type fullStore struct {
	tokens.Store
	mu   sync.Mutex
	full bool
}

func (s *fullStore) setFull(v bool) { s.mu.Lock(); s.full = v; s.mu.Unlock() }

func (s *fullStore) Put(account string, e tokens.Entry) error {
	s.mu.Lock()
	full := s.full
	s.mu.Unlock()
	if full {
		return errors.New("no space left on device")
	}
	return s.Store.Put(account, e)
}

// TestFlushSavesRefusedRotation: with strict rotation, a rotated refresh
// token the store refused lives only in memory; the status says so, and
// Bridge.Flush (serve's last step) writes it once the store takes writes,
// so the next start can still refresh.
func TestFlushSavesRefusedRotation(t *testing.T) {
	idp := tokenstest.New(tokenstest.Options{RevokeOnRotate: true})
	t.Cleanup(idp.Close)
	fs, err := tokens.NewFileStore(filepath.Join(t.TempDir(), "tokens.json"))
	if err != nil {
		t.Fatal(err)
	}
	st := &fullStore{Store: fs}
	const email = "alice@example.com"
	_, rt, _ := idp.Issue(email)
	if err := fs.Put(email, tokens.Entry{RefreshToken: rt, Password: "pw"}); err != nil {
		t.Fatal(err)
	}
	a := &Account{Email: email, Mailbox: email, ClientID: "c", Tenant: "organizations",
		Provider: tokens.Provider{Name: "microsoft", TokenURL: idp.TokenURL("organizations"), Scopes: []string{"offline_access"}}}
	b, err := New(Options{Accounts: []*Account{a}, Store: st, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	st.setFull(true)
	if _, err := b.Source(a).Token(context.Background()); err != nil {
		t.Fatalf("the refresh worked but the token was refused: %v", err)
	}
	s := b.Status()
	if len(s.Accounts) != 1 || !strings.Contains(s.Accounts[0].Token.NotSaved, "no space left") {
		t.Fatalf("status does not say the refresh token is not saved: %+v", s.Accounts)
	}
	st.setFull(false)
	b.Flush()
	e, err := fs.Get(email)
	if err != nil {
		t.Fatal(err)
	}
	if e.RefreshToken != idp.LatestRefresh(email) {
		t.Error("after Flush the store does not hold the newest refresh token")
	}
	if s := b.Status(); s.Accounts[0].Token.NotSaved != "" {
		t.Errorf("still not saved after Flush: %q", s.Accounts[0].Token.NotSaved)
	}
}
