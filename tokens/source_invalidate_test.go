package tokens_test

import (
	"context"
	"testing"

	"github.com/mailbridge/bridge/tokens/tokenstest"
)

// TestInvalidateForcesRefresh: a token the server refused is not handed
// out again; a token that is not the cached one changes nothing.
func TestInvalidateForcesRefresh(t *testing.T) {
	store := newMemStore()
	e := newEnv(t, tokenstest.Options{}, store)
	src := e.source(store)
	first, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if n := e.srv.RefreshRequests(); n != 1 {
		t.Fatalf("refreshes after the first Token: %d, want 1", n)
	}
	src.Invalidate("not-the-cached-token")
	src.Invalidate("")
	again, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if again.AccessToken != first.AccessToken || e.srv.RefreshRequests() != 1 {
		t.Fatalf("an unrelated Invalidate dropped the cached token (refreshes %d)", e.srv.RefreshRequests())
	}
	src.Invalidate(first.AccessToken)
	next, err := src.Token(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if next.AccessToken == first.AccessToken {
		t.Error("the invalidated access token was handed out again")
	}
	if n := e.srv.RefreshRequests(); n != 2 {
		t.Errorf("refreshes after Invalidate: %d, want 2", n)
	}
	e.noSecrets(t, "log", e.logs.String(), first.AccessToken, next.AccessToken)
}
