package bridge

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/mailbridge/bridge/tokens"
)

// TestSetAccountsAppliesNewClientID: a config reload that gives an account
// another client_id (after `bridge login --client-id`) must refresh with
// the new one; refreshing a token issued to the new client as the old one
// gets invalid_grant and marks the fresh sign-in as needing another.
// An account whose settings did not change keeps its source.
func TestSetAccountsAppliesNewClientID(t *testing.T) {
	var mu sync.Mutex
	var clients []string
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		mu.Lock()
		clients = append(clients, r.PostForm.Get("client_id"))
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"access_token":"at","token_type":"Bearer","expires_in":3600}`)
	}))
	defer ts.Close()

	const email, other = "alice@example.com", "bob@example.com"
	st := &gatedStore{m: map[string]tokens.Entry{email: {RefreshToken: "rt-a"}, other: {RefreshToken: "rt-b"}}}
	acct := func(e, client string) *Account {
		return &Account{Email: e, Mailbox: e, ClientID: client,
			Provider: tokens.Provider{Name: "microsoft", TokenURL: ts.URL}}
	}
	b, err := New(Options{Accounts: []*Account{acct(email, "old-client"), acct(other, "same-client")}, Store: st, HTTPClient: ts.Client()})
	if err != nil {
		t.Fatal(err)
	}
	keptBefore := b.Source(b.Account(other))

	b.SetAccounts([]*Account{acct(email, "new-client"), acct(other, "same-client")})
	if b.Source(b.Account(other)) != keptBefore {
		t.Error("an unchanged account lost its token source on reload")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := b.Source(b.Account(email)).Token(ctx); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(clients) != 1 || clients[0] != "new-client" {
		t.Errorf("refreshed as %q after the reload, want new-client", clients)
	}
}
